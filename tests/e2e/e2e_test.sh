#!/usr/bin/env bash
# End-to-end through tcpsteer-proxy with the real tcpsteer.wasm, over real sockets on loopback.
set -uo pipefail
build=$1        # build/native
module=$2       # tcpsteer.wasm
modules=$3      # WAT test modules (trap_on_connection.wasm)
here=$(cd "$(dirname "$0")" && pwd)
proxy=$build/host/tcpsteer-proxy
# shellcheck source-path=SCRIPTDIR source=../lib/harness.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"
# The proxy writes a connection's access-log line after closing its sockets: poll for it (3 s at most).
wait_for_log() { for _ in $(seq 60); do grep -q "$2" "$1" && return 0; sleep 0.05; done; return 1; }
base=$((21000 + (RANDOM % 400) * 20))
port() { echo $((base + $1)); }

# Echo upstreams that first say who they are: "egressN\n" then the bytes they receive.
for n in 1 2 3; do
  # backlog: 200 connections arrive at once; socat's default (5) overflows while it forks, and on a busy
  # machine the proxy's connect timeout then fires (seen in CI as resets of the clients' connections).
  socat "TCP-LISTEN:$(port $((10 + n))),bind=127.0.0.1,fork,reuseaddr,backlog=512" SYSTEM:"echo egress$n; cat" &
  pids+=($!)
done

config() {  # config FILE FILTER_CONFIG [FAIL_OPEN] [MODULE] [EXTRA_CLUSTER_PORT]
  local file=$1 filter=$2 fail_open=${3:-false} wasm=${4:-$module} c3=${5:-$(port 13)}
  cat >"$file" <<YAML
admin: {address: {socket_address: {address: 127.0.0.1, port_value: $(port 2)}}}
static_resources:
  listeners:
    - name: main
      address: {socket_address: {address: 127.0.0.1, port_value: $(port 1)}}
      filter_chains:
        - filters:
            - name: envoy.filters.network.wasm
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm
                config:
                  root_id: tcp_wasm_filter
                  fail_open: $fail_open
                  configuration: {"@type": type.googleapis.com/google.protobuf.StringValue, value: '$filter'}
                  vm_config: {runtime: envoy.wasm.runtime.v8, code: {local: {filename: $wasm}}}
            - name: envoy.filters.network.tcp_proxy
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
                stat_prefix: main
                cluster: egress1
  clusters:
    - {name: egress1, connect_timeout: 5s, load_assignment: {endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: $(port 11)}}}}]}]}}
    - {name: egress2, connect_timeout: 5s, load_assignment: {endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: $(port 12)}}}}]}]}}
    - {name: egress3, connect_timeout: 5s, load_assignment: {endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: $c3}}}}]}]}}
YAML
}

start_proxy() {  # start_proxy CONFIG LOG [PROXY-OPTIONS...]
  "$proxy" -c "$1" --concurrency "${CONCURRENCY:-2}" "${@:3}" >"$2" 2>&1 &
  proxy_pid=$!
  pids+=("$proxy_pid")
  # Ready means this proxy answers: another process on the admin port would answer too.
  for _ in $(seq 100); do
    kill -0 "$proxy_pid" 2>/dev/null || break
    curl -sf "http://127.0.0.1:$(port 2)/ready" >/dev/null 2>&1 && kill -0 "$proxy_pid" 2>/dev/null && return 0
    sleep 0.05
  done
  echo "proxy did not start:"; cat "$2"; return 1
}
stop_proxy() { kill "$proxy_pid" 2>/dev/null; wait "$proxy_pid" 2>/dev/null; }

# 1. 200 parallel connections from 4 sources land on the right egress with their bytes intact.
config "$work/a.yaml" standalone
start_proxy "$work/a.yaml" "$work/a.log"
python3 "$here/echo_clients.py" parallel "$(port 1)" 200 127.0.0.20 127.0.0.21 127.0.0.22 127.0.0.23 >"$work/par.out"
code=$?
wrong=$(awk '($1 ~ /\.(20|22)$/ && $2 != "egress1") || ($1 ~ /\.(21|23)$/ && $2 != "egress2") || $3 != "intact"' "$work/par.out" | wc -l)
[ $code -eq 0 ] && [ "$(wc -l <"$work/par.out")" -eq 200 ] && [ "$wrong" -eq 0 ]; check parallel-200-four-sources $?
if [ "$wrong" -ne 0 ]; then  # say why: the clients' view and the proxy's response flags
  awk '$3 != "intact"' "$work/par.out" | sort | uniq -c | head -5
  grep -F '[access]' "$work/a.log" | grep -v ' bytes_up=65536 bytes_down=65544$' | head -5
fi

# 2. curl --interface through the proxy (upstream: echo; curl sees our HTTP request echoed after the name).
out=$(curl -s --max-time 5 --interface 127.0.0.31 --http0.9 "http://127.0.0.1:$(port 1)/" 2>&1 | head -1)
[ "$out" = "egress2" ]; check curl-interface-odd $?

# 3. >= 100 MB each way through the proxy, intact, with bounded proxy memory.
python3 "$here/echo_clients.py" large "$(port 1)" 127.0.0.40 100 >"$work/large.out" &
client=$!
peak=0
while kill -0 $client 2>/dev/null; do
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$proxy_pid/status" 2>/dev/null || echo 0)
  [ "${rss:-0}" -gt "$peak" ] && peak=$rss
  sleep 0.1
done
wait $client; code=$?
echo "     100 MiB each way: $(cat "$work/large.out"); proxy peak RSS $((peak / 1024)) MiB"
# The memory bound holds in the plain build; sanitizers multiply RSS (TCPSTEER_SANITIZED=1).
[ $code -eq 0 ] && grep -q "egress1 intact 104857600" "$work/large.out" &&
  { [ "${TCPSTEER_SANITIZED:-0}" = 1 ] || [ "$peak" -lt $((128 * 1024)) ]; }
check large-transfer-bounded-memory $?

# 4. Prometheus stats carry the filter's counters under Envoy's names.
stats=$(curl -s "http://127.0.0.1:$(port 2)/stats/prometheus")
grep -q "^tcpsteer_routed_egress1 " <<<"$stats" && grep -q "^tcpsteer_routed_egress2 " <<<"$stats"; check prometheus-stats $?
wait_for_log "$work/a.log" "\[access\] listener=main cluster=egress1 src=127.0.0.20:"; check access-log $?
stop_proxy

# 5. An egress that is down: the client is closed, the proxy logs the upstream failure.
config "$work/b.yaml" '{"targets": ["egress1", "egress2", "egress3"]}' false "$module" "$(port 19)"
start_proxy "$work/b.yaml" "$work/b.log"
out=$(printf 'x' | timeout 5 socat - "TCP:127.0.0.1:$(port 1),bind=127.0.0.5" 2>&1)  # 5 % 3 = 2 -> egress3, down
[ -z "$out" ] && wait_for_log "$work/b.log" "upstream connect to 127.0.0.1:$(port 19) failed"; check egress-down $?
# 6. N=3 targets: last octet mod 3.
out=$(printf '' | timeout 5 socat - "TCP:127.0.0.1:$(port 1),bind=127.0.0.6" | head -1)  # 6 % 3 = 0
[ "$out" = "egress1" ]; check three-targets-modulo $?
stop_proxy

# 7. A CIDR rule sends 127.0.0.64/26 to egress2 whatever the octet.
config "$work/c.yaml" '{"preset": "standalone", "rules": [{"source_cidr": "127.0.0.64/26", "target": "egress2"}]}'
start_proxy "$work/c.yaml" "$work/c.log"
out=$(printf '' | timeout 5 socat - "TCP:127.0.0.1:$(port 1),bind=127.0.0.66" | head -1)
[ "$out" = "egress2" ]; check cidr-rule $?
stop_proxy

# 8. An invalid filter configuration: the proxy refuses to start with the filter's own error line.
config "$work/d.yaml" '{"mode": "block"}'
out=$("$proxy" -c "$work/d.yaml" 2>&1); code=$?
[ $code -eq 1 ] && grep -q "invalid configuration at 'mode'" <<<"$out" && grep -q "rejected its configuration" <<<"$out"
check invalid-filter-config-refused $?
# 9. A config outside the supported subset names the field.
sed 's/stat_prefix: main/stat_prefix: main\n                max_connect_attempts: 2/' "$work/a.yaml" | sed 's/\\n/\n/' >"$work/e.yaml"
out=$("$proxy" -c "$work/e.yaml" 2>&1); code=$?
[ $code -eq 1 ] && grep -q "typed_config.max_connect_attempts: not supported" <<<"$out"; check unsupported-field-named $?

# 10. A trapping filter: fail-closed closes connections after the trap, fail-open lets them through.
CONCURRENCY=1
config "$work/f.yaml" "" false "$modules/trap_on_connection.wasm"
start_proxy "$work/f.yaml" "$work/f.log"
first=$(printf '' | timeout 5 socat - "TCP:127.0.0.1:$(port 1)" | head -1)
second=$(printf '' | timeout 5 socat - "TCP:127.0.0.1:$(port 1)" | head -1)   # traps
third=$(printf '' | timeout 5 socat - "TCP:127.0.0.1:$(port 1)" | head -1)
[ "$first" = "egress1" ] && [ -z "$second" ] && [ -z "$third" ] && wait_for_log "$work/f.log" "closed by the filter"
check trap-fail-closed $?
stop_proxy
config "$work/g.yaml" "" true "$modules/trap_on_connection.wasm"
start_proxy "$work/g.yaml" "$work/g.log"
first=$(printf '' | timeout 5 socat - "TCP:127.0.0.1:$(port 1)" | head -1)
second=$(printf '' | timeout 5 socat - "TCP:127.0.0.1:$(port 1)" | head -1)
third=$(printf '' | timeout 5 socat - "TCP:127.0.0.1:$(port 1)" | head -1)
[ "$first" = "egress1" ] && [ "$second" = "egress1" ] && [ "$third" = "egress1" ]; check trap-fail-open $?
# 11. SIGTERM drains and exits 0.
kill -TERM "$proxy_pid"; wait "$proxy_pid"; check sigterm-exit-0 $?

# 12. Engines: the built module runs precompiled (auto), any other module in the interpreter, and
# --engine precompiled refuses a module it was not built from.
grep -q "listener=main engine=precompiled" "$work/a.log" && grep -q "listener=main engine=interpreter" "$work/f.log"
check engine-auto-precompiled-for-built-module $?
out=$("$proxy" -c "$work/f.yaml" --engine precompiled 2>&1); code=$?
[ $code -eq 1 ] && grep -q "not the one tcpsteer was built with" <<<"$out"; check engine-precompiled-refuses-other-module $?
CONCURRENCY=2
config "$work/h.yaml" standalone
start_proxy "$work/h.yaml" "$work/h.log" --engine interpreter
out=$(printf '' | timeout 5 socat - "TCP:127.0.0.1:$(port 1),bind=127.0.0.33" | head -1)
[ "$out" = "egress2" ] && grep -q "engine=interpreter" "$work/h.log"; check engine-interpreter-on-request $?
stop_proxy

finish e2e
