#!/usr/bin/env bash
# tcpsteer-proxy with the wasm filter and with the filter removed from the chain, same run: new
# connections/s (wrk, one request per connection, egress-server behind) and MB/s (100 MiB echoed through
# the proxy). The figure that matters is the ratio filter/no-filter (goal >= 0.8), with the module
# precompiled (the default) and interpreted. Also memory per VM.
set -euo pipefail
build=${1:-build/native}
module=${2:-build/wasm/filter/tcpsteer.wasm}
seconds=${BENCH_SECONDS:-5}
root=$(cd "$(dirname "$0")/.." && pwd)
# Scratch directory and background processes stopped on exit, as in the shell tests.
# shellcheck source-path=SCRIPTDIR source=../tests/lib/harness.sh
source "$root/tests/lib/harness.sh"
base=$((22000 + RANDOM % 900 * 10))  # below the ephemeral range (32768+), where wrk's sockets live
"$build/apps/egress-server" --name egress1 --listen "127.0.0.1:$((base + 3))" >/dev/null &
pids+=($!)
socat "TCP-LISTEN:$((base + 4)),bind=127.0.0.1,fork,reuseaddr" SYSTEM:"echo egress1; cat" &
pids+=($!)
sleep 0.3

config() {  # config FILE WITH_FILTER UPSTREAM_PORT
  local wasm=""
  if [ "$2" = yes ]; then
    wasm="            - name: envoy.filters.network.wasm
              typed_config:
                \"@type\": type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm
                config:
                  root_id: tcpsteer
                  configuration: {\"@type\": type.googleapis.com/google.protobuf.StringValue, value: '{\"targets\": [\"egress1\"]}'}
                  vm_config: {runtime: envoy.wasm.runtime.v8, code: {local: {filename: $module}}}"
  fi
  cat >"$1" <<YAML
admin: {address: {socket_address: {address: 127.0.0.1, port_value: $((base + 2))}}}
static_resources:
  listeners:
    - name: bench
      address: {socket_address: {address: 127.0.0.1, port_value: $((base + 1))}}
      filter_chains:
        - filters:
$wasm
            - name: envoy.filters.network.tcp_proxy
              typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy, stat_prefix: bench, cluster: egress1}
  clusters:
    - {name: egress1, connect_timeout: 1s, load_assignment: {endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: $3}}}}]}]}}
YAML
}

measure() {  # measure yes|no [ENGINE] -> "conn/s MB/s rss_kib"
  local engine=${2:-auto}
  config "$work/http.yaml" "$1" $((base + 3))
  "$build/host/tcpsteer-proxy" -c "$work/http.yaml" --concurrency 1 --engine "$engine" >/dev/null 2>&1 &
  local pid=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$((base + 2))/ready" >/dev/null 2>&1 && break; sleep 0.05; done
  local rps
  rps=$(wrk -t1 -c20 -d"${seconds}s" -H "Connection: close" "http://127.0.0.1:$((base + 1))/" | awk '/Requests\/sec/ {print $2}')
  local rss
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
  kill $pid; wait $pid 2>/dev/null || true
  config "$work/echo.yaml" "$1" $((base + 4))
  "$build/host/tcpsteer-proxy" -c "$work/echo.yaml" --concurrency 1 --engine "$engine" >/dev/null 2>&1 &
  pid=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$((base + 2))/ready" >/dev/null 2>&1 && break; sleep 0.05; done
  local start end
  start=$(date +%s.%N)
  python3 "$root/tests/e2e/echo_clients.py" large $((base + 1)) 127.0.0.1 100 >/dev/null
  end=$(date +%s.%N)
  kill $pid; wait $pid 2>/dev/null || true
  echo "$rps $(awk -v s="$start" -v e="$end" 'BEGIN {printf "%.1f", 2 * 104.8576 / (e - s)}') $rss"
}

# The machine's own speed moves between minutes (one run each measured ratios from 0.64 to 1.20 for
# the same code): each variant runs BENCH_ROUNDS (2) times in the order A B C C B A, and the
# figures are each variant's medians.
rounds=${BENCH_ROUNDS:-2}
declare -A cps mbs rss
variants=(precompiled interpreter none)
run_variant() {
  local figures
  if [ "$1" = none ]; then figures=$(measure no); else figures=$(measure yes "$1"); fi
  read -r c m r <<<"$figures"
  cps[$1]+="$c "
  mbs[$1]+="$m "
  rss[$1]+="$r "
}
for _ in $(seq "$rounds"); do
  for v in "${variants[@]}"; do run_variant "$v"; done
  for ((i = ${#variants[@]} - 1; i >= 0; i--)); do run_variant "${variants[$i]}"; done
done
median() {  # median "VALUES" [FORMAT]
  tr ' ' '\n' <<<"$1" | grep . | sort -g |
    awk -v f="${2:-%.1f}" '{v[NR] = $1} END {printf f, NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}
with_cps=$(median "${cps[precompiled]}"); with_mbs=$(median "${mbs[precompiled]}"); with_rss=$(median "${rss[precompiled]}" %d)
interp_cps=$(median "${cps[interpreter]}"); interp_mbs=$(median "${mbs[interpreter]}"); interp_rss=$(median "${rss[interpreter]}" %d)
without_cps=$(median "${cps[none]}"); without_mbs=$(median "${mbs[none]}"); without_rss=$(median "${rss[none]}" %d)
echo "tcpsteer-proxy (1 worker, ${seconds}s wrk runs, 100 MiB each way echoed; medians of $((2 * rounds)) runs each, A B C C B A)"
printf '%-36s %12s %12s %14s\n' "" "new conn/s" "MB/s" "RSS (KiB)"
printf '%-36s %12s %12s %14s\n' "with tcpsteer.wasm, precompiled" "$with_cps" "$with_mbs" "$with_rss"
printf '%-36s %12s %12s %14s\n' "with tcpsteer.wasm, interpreter" "$interp_cps" "$interp_mbs" "$interp_rss"
printf '%-36s %12s %12s %14s\n' "filter removed" "$without_cps" "$without_mbs" "$without_rss"
for v in "${variants[@]}"; do echo "    runs, $v: new conn/s ${cps[$v]}; MB/s ${mbs[$v]}"; done
awk -v a="$with_cps" -v b="$without_cps" -v c="$with_mbs" -v d="$without_mbs" -v i="$interp_cps" -v j="$interp_mbs" \
  'BEGIN {printf "ratio with/without: precompiled connections %.2f, throughput %.2f; interpreter connections %.2f, throughput %.2f (goal >= 0.8)\n", a / b, c / d, i / b, j / d}'
memory=$("$build/host/tcpsteer-host" replay "$module" --engine precompiled --config '{"targets": ["egress1"]}' \
  --conn 10.0.0.2:1,10.0.0.3:443 | python3 -c 'import json, sys
print(next(e["memory_bytes"] for e in map(json.loads, sys.stdin) if e["event"] == "vm_end") // 1024)')
echo "memory per worker VM: linear memory ${memory} KiB after one connection; RSS difference with/without the filter: $(awk -v a="$with_rss" -v b="$without_rss" 'BEGIN {printf "%d", a - b}') KiB"
