#!/usr/bin/env bash
# Which filters does a sidecar run for a port, and is the wasm filter before tcp_proxy? Or, with
# --gateway, what does an egress gateway let through?
#
#   scripts/inspect-chains.sh POD [PORT] [-n NAMESPACE]     reads istio-proxy's config dump with kubectl
#   scripts/inspect-chains.sh --file CONFIG_DUMP.json [PORT]  reads a saved dump (pilot-agent request GET config_dump)
#   scripts/inspect-chains.sh --gateway deploy/egress1 [-n tcpsteer-egress]   (or --gateway --file DUMP)
#
# Without PORT: every listener with its filter chains (warming and rejected ones marked). With PORT:
# the chains that serve that port, and a verdict. Exit status: 0 the wasm filter runs before tcp_proxy on PORT (or no PORT given); 1 it does not;
# 2 bad usage or unreadable dump. --gateway: each TLS passthrough chain (SNI allowed, cluster, how the
# cluster resolves); 0 at least one passthrough chain and none that terminates TLS, 1 otherwise.
set -euo pipefail

usage() { sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 2; }
die() { echo "inspect-chains: $*" >&2; exit 2; }

file='' pod='' port='' namespace='' gateway=0
while [ $# -gt 0 ]; do
  case $1 in
    --gateway) gateway=1 ;;
    --file) file=${2:-}; [ -n "$file" ] || die "--file needs a CONFIG_DUMP.json"; shift ;;
    -n|--namespace) namespace=${2:-}; [ -n "$namespace" ] || die "$1 needs a namespace"; shift ;;
    -h|--help) usage ;;
    -*) die "unknown option $1 (see --help)" ;;
    *)
      if [ -z "$file" ] && [ -z "$pod" ]; then pod=$1
      elif [ -z "$port" ]; then port=$1
      else die "unexpected argument $1 (see --help)"; fi ;;
  esac
  shift
done
[ -n "$file" ] || [ -n "$pod" ] || usage
if [ -z "$namespace" ]; then
  if ((gateway)); then namespace=tcpsteer-egress; else namespace=tcpsteer; fi
fi
[ -z "$port" ] || [[ $port =~ ^[0-9]+$ && $port -ge 1 && $port -le 65535 ]] || die "PORT must be a number 1-65535, not '$port'"
command -v jq >/dev/null || die "jq is not installed (apt-get install jq)"

if [ -n "$file" ]; then
  [ -r "$file" ] || die "cannot read $file"
  dump=$(cat "$file")
else
  command -v kubectl >/dev/null || die "kubectl is not installed; save a dump elsewhere and use --file"
  # pilot-agent is in every istio-proxy image (curl is not in the distroless ones).
  dump=$(kubectl -n "$namespace" exec "$pod" -c istio-proxy -- pilot-agent request GET config_dump) ||
    die "could not read the config dump of $namespace/$pod (is it a pod with an istio-proxy sidecar?)"
fi
jq -e '.configs' >/dev/null 2>&1 <<<"$dump" || die "not an Envoy config dump (no .configs array)"

# One JSON object per (listener, chain): name, port, chain label, filter names, kinds.
# A filter is "wasm" when it is envoy.filters.network.wasm inline or delivered by ECDS (WasmPlugin).
chains=$(jq -c '
  def wasm_type: "type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm";
  def kind:
    if .name == "envoy.filters.network.wasm" or (.typed_config["@type"]? == wasm_type)
       or ((.config_discovery.type_urls // []) | index(wasm_type)) then "wasm"
    elif .name == "envoy.filters.network.tcp_proxy" then "tcp_proxy"
    elif .name == "envoy.filters.network.http_connection_manager" then "hcm"
    else "other" end;
  .configs[] | select(.["@type"] | test("ListenersConfigDump"))
  # A listener is active (serving), warming (waiting for a dependency such as a WasmPlugin module
  # that cannot be fetched) or in error (Envoy rejected the update; the failed configuration is kept).
  | ((.dynamic_listeners // [])[]
       | (.active_state.listener | select(. != null) | {l: ., state: "active"}),
         (.warming_state.listener | select(. != null) | {l: ., state: "warming"}),
         (.error_state | select(. != null) | {l: .failed_configuration, state: "error", details: (.details // "")})),
    ((.static_listeners // [])[] | {l: .listener, state: "active"})
  | select(.l != null)
  | .l as $l | .state as $state | (.details // "") as $details
  | ($l.address.socket_address.port_value // 0) as $lport
  | ([($l.filter_chains // [])[] | {c: ., default: false}] + (if $l.default_filter_chain then [{c: $l.default_filter_chain, default: true}] else [] end))[]
  | {listener: $l.name, state: $state, details: $details,
     port: (.c.filter_chain_match.destination_port // $lport),
     chain: (if .default then "default chain" else (.c.name // "chain") end),
     match: ((.c.filter_chain_match // {}) | del(.destination_port) | tostring),
     filters: [(.c.filters // [])[] | if kind == "wasm" and .name != "envoy.filters.network.wasm"
                                        then "\(.name) (wasm, from ECDS)" else .name end],
     kinds: [(.c.filters // [])[] | kind],
     sni: (.c.filter_chain_match.server_names // []),
     terminates_tls: (.c.transport_socket != null),
     cluster: ([(.c.filters // [])[] | select(kind == "tcp_proxy") | .typed_config.cluster // empty] | first // "")}
' <<<"$dump")

# --gateway: the passthrough chains, and how each one's cluster finds the external host.
if ((gateway)); then
  clusters=$(jq -c '.configs[] | select(.["@type"] | test("ClustersConfigDump"))
    | ((.dynamic_active_clusters // []) + (.static_clusters // []))[] | .cluster
    | {name: .name, type: (.type // (if .cluster_type then "custom" else "EDS" end)),
       hosts: [(.load_assignment.endpoints // [])[].lb_endpoints[]?.endpoint.address.socket_address
                | "\(.address):\(.port_value)"],
       tls: (.transport_socket != null or .transport_socket_matches != null)}' <<<"$dump")
  passthrough=0 problems=0 seen=0
  while IFS= read -r chain; do
    [ -n "$chain" ] || continue
    jq -e '.kinds | index("tcp_proxy")' >/dev/null <<<"$chain" || continue
    seen=1
    jq -r '"\(.listener)  [\(.chain)] port=\(.port) sni=\(if .sni == [] then "(any)" else (.sni | join(",")) end)\n    \(.filters | join(" -> ")) => \(.cluster)"' <<<"$chain"
    name=$(jq -r .cluster <<<"$chain")
    cluster=$(jq -c --arg n "$name" 'select(.name == $n)' <<<"$clusters")
    if [ -n "$cluster" ]; then
      jq -r '"    cluster \(.name): \(.type)\(if .hosts != [] then " " + (.hosts | join(" ")) else "" end)\(if .tls then " (originates TLS!)" else "" end)"' <<<"$cluster"
    else
      echo "    cluster $name: not in the dump's clusters (Envoy closes such connections: flag NC)"
    fi
    if jq -e '.terminates_tls' >/dev/null <<<"$chain"; then
      echo "    => PROBLEM: this chain terminates TLS (a transport socket on the listener side): not passthrough"; problems=1
    elif jq -e '.sni == []' >/dev/null <<<"$chain"; then
      echo "    => PROBLEM: no SNI match: any name is let through (an open proxy)"; problems=1
    elif [ -n "$cluster" ] && jq -e '.tls' >/dev/null <<<"$cluster"; then
      echo "    => PROBLEM: the cluster wraps the client's TLS in TLS of its own (a DestinationRule with tls for the external host?)"; problems=1
    else
      echo "    => ok: TLS passthrough by SNI, nothing terminated on the way"; passthrough=1
    fi
  done <<<"$chains"
  if ((seen == 0)); then
    echo "no TLS passthrough chain: is the Gateway's VirtualService (tls route by sniHosts) bound to this gateway? A PASSTHROUGH server without a matching route has no chain and no listener (docs/istio.md#egress-gateways)"
  fi
  echo "(a ClientHello for a name not listed above matches no chain: the gateway closes it and logs NR)"
  ((passthrough == 1 && problems == 0)) && exit 0
  exit 1
fi

show_chains() {  # show_chains WITH_PORT < chains: "listener  [chain] (port=) (match=)" then its filters
  jq -r --argjson with_port "$1" '"\(.listener)  [\(.chain)]\(if $with_port then " port=\(.port)" else "" end)\(
    if .match != "{}" then " match=\(.match)" else "" end)\(
    if .state == "warming" then " (WARMING: not serving)" elif .state == "error" then " (REJECTED by Envoy)" else "" end
    )\n    \(.filters | join(" -> "))"'
}

if [ -z "$port" ]; then
  show_chains true <<<"$chains"
  exit 0
fi

selected=$(jq -c --argjson p "$port" 'select(.port == $p)' <<<"$chains")
if [ -z "$selected" ]; then
  echo "no listener or filter chain serves port $port (list them all: $0 ${file:+--file $file}${pod})"
  exit 1
fi
found=0
while IFS= read -r chain; do
  show_chains false <<<"$chain"
  verdict=$(jq -r '
    (.kinds | index("wasm")) as $w | (.kinds | index("tcp_proxy")) as $t | (.kinds | index("hcm")) as $h
    | if .state == "warming" then "PROBLEM: the listener is warming, not serving: a WasmPlugin whose module cannot be fetched or loaded (failStrategy FAIL_CLOSE) keeps it there; see istio-proxy'"'"'s log for \"wasm\" and docs/istio.md#troubleshooting"
      elif .state == "error" then "PROBLEM: Envoy rejected this listener update: \(.details)"
      elif $w != null and $t != null and $w < $t then "ok: the wasm filter runs before tcp_proxy"
      elif $w != null and $t != null then "PROBLEM: the wasm filter runs after tcp_proxy (too late: the upstream is already chosen)"
      elif $h != null then "no wasm filter: HTTP connection manager chain (L7); a network filter here could not choose the upstream (docs/istio.md#port-80)"
      elif $t != null then "no wasm filter before tcp_proxy on this chain"
      else "no tcp_proxy on this chain" end' <<<"$chain")
  echo "    => $verdict"
  [[ $verdict == ok:* ]] && found=1
done <<<"$selected"
if ((found)); then exit 0; fi
exit 1
