#!/usr/bin/env bash
# scripts/inspect-chains.sh on config dumps shaped like an Istio sidecar's: the filter inserted by the
# EnvoyFilter (inline) and by a WasmPlugin (ECDS) is found before tcp_proxy on 443; port 80 is the HTTP
# connection manager; a filter after tcp_proxy is called out; bad input exits 2 with a message.
set -uo pipefail
script=$1
fixtures=$2
# shellcheck source-path=SCRIPTDIR source=../lib/harness.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"
inspect() {  # inspect OUT EXIT ARGS...: runs the script, output to OUT; true if it exits with EXIT
  local out=$1 want=$2 rc=0
  shift 2
  bash "$script" "$@" >"$out" 2>&1 || rc=$?
  [ "$rc" -eq "$want" ]
}

inspect "$work/list" 0 --file "$fixtures/envoyfilter.json" &&
  grep -q "^0.0.0.0_443 " "$work/list" && grep -q "^0.0.0.0_80 " "$work/list" &&
  grep -q "^virtualOutbound " "$work/list" &&
  grep -A1 "^198.18.0.10_443 " "$work/list" | grep -q "istio.stats -> envoy.filters.network.wasm -> envoy.filters.network.tcp_proxy"
check lists-listeners-and-filters $?

inspect "$work/443" 0 --file "$fixtures/envoyfilter.json" 443 &&
  [ "$(grep -c "=> ok: the wasm filter runs before tcp_proxy" "$work/443")" -eq 2 ] &&
  grep -A2 "^10.96.0.1_443 " "$work/443" | grep -q "=> no wasm filter before tcp_proxy"
check port-443-envoyfilter-before-tcp-proxy $?

inspect "$work/80" 1 --file "$fixtures/envoyfilter.json" 80 &&
  grep -q "envoy.filters.network.http_connection_manager" "$work/80" &&
  grep -q "=> no wasm filter: HTTP connection manager chain" "$work/80"
check port-80-is-hcm-exit-1 $?

# A NETWORK WasmPlugin (UNSPECIFIED phase) goes before istio.stats, on every outbound 443 listener.
inspect "$work/ecds" 0 --file "$fixtures/wasmplugin.json" 443 &&
  [ "$(grep -c "tcpsteer.tcpsteer (wasm, from ECDS) -> istio.stats -> envoy.filters.network.tcp_proxy" "$work/ecds")" -eq 3 ] &&
  grep -A1 "^10.96.0.1_443 " "$work/ecds" | grep -q "tcpsteer.tcpsteer (wasm, from ECDS)"
check port-443-wasmplugin-ecds $?

# A listener left warming (module not fetched) or rejected is reported as such, not as missing.
inspect "$work/warm" 0 --file "$fixtures/wasmplugin-warming.json" 443 &&
  grep -q "^198.18.0.10_443  \[.*\] (WARMING: not serving)" "$work/warm" &&
  grep -q "=> PROBLEM: the listener is warming, not serving" "$work/warm"
check warming-listener-reported $?
inspect "$work/rej" 0 --file "$fixtures/wasmplugin-rejected.json" 443 &&
  grep -q "(REJECTED by Envoy)" "$work/rej" &&
  grep -q "=> PROBLEM: Envoy rejected this listener update: Error adding/updating listener(s) 198.18.0.10_443: Unable to create Wasm network filter" "$work/rej"
check rejected-listener-reported $?
# Only warming: no serving chain for 443 with the filter: exit 1.
jq '(.configs[] | select(.["@type"] | test("ListenersConfigDump")) | .dynamic_listeners) |=
      map(select(.name == "198.18.0.10_443"))' "$fixtures/wasmplugin-warming.json" >"$work/only-warming.json"
inspect "$work/warm1" 1 --file "$work/only-warming.json" 443 && grep -q "WARMING" "$work/warm1"
check only-warming-listener-exit-1 $?

inspect "$work/after" 1 --file "$fixtures/wasm-after-tcp-proxy.json" 443 &&
  grep -q "PROBLEM: the wasm filter runs after tcp_proxy" "$work/after"
check wasm-after-tcp-proxy-exit-1 $?

inspect "$work/none" 1 --file "$fixtures/envoyfilter.json" 9999 &&
  grep -q "no listener or filter chain serves port 9999" "$work/none"
check unknown-port-exit-1 $?

printf '{"not": "a dump"}' >"$work/bad.json"
inspect "$work/bad" 2 --file "$work/bad.json" &&
  grep -q "not an Envoy config dump" "$work/bad"
check not-a-dump-exit-2 $?
printf 'garbage{' >"$work/garbage.json"
inspect "$work/garbage" 2 --file "$work/garbage.json" 443 &&
  grep -q "not an Envoy config dump" "$work/garbage"
check garbage-exit-2 $?
inspect "$work/port" 2 --file "$fixtures/envoyfilter.json" 70000 &&
  grep -q "PORT must be a number 1-65535, not '70000'" "$work/port"
check bad-port-exit-2 $?
inspect "$work/missing" 2 --file "$work/absent.json" &&
  grep -q "cannot read $work/absent.json" "$work/missing"
check missing-file-exit-2 $?
inspect "$work/usage" 2 &&
  grep -q "inspect-chains.sh POD \[PORT\]" "$work/usage"
check no-arguments-prints-usage $?

# --gateway: an egress gateway's passthrough chain, its SNI allow-list and how the cluster resolves;
# a chain that terminates TLS and a gateway without a chain (no bound route) are problems.
inspect "$work/gw" 0 --gateway --file "$fixtures/gateway-passthrough.json" &&
  grep -q "^0.0.0.0_8443  \[chain\] port=8443 sni=api.tcpsteer.example$" "$work/gw" &&
  grep -q "cluster outbound|443||api.tcpsteer.example: STRICT_DNS standin.internet.svc.cluster.local:8443" "$work/gw" &&
  grep -q "=> ok: TLS passthrough by SNI" "$work/gw"
check gateway-passthrough $?
inspect "$work/gw-tls" 1 --gateway --file "$fixtures/gateway-terminating.json" &&
  grep -q "=> PROBLEM: this chain terminates TLS" "$work/gw-tls" && ! grep -q "no TLS passthrough chain" "$work/gw-tls"
check gateway-terminating-tls-exit-1 $?
inspect "$work/gw-none" 1 --gateway --file "$fixtures/gateway-no-route.json" &&
  grep -q "no TLS passthrough chain: is the Gateway's VirtualService" "$work/gw-none"
check gateway-without-route-exit-1 $?

finish inspect-chains.sh
