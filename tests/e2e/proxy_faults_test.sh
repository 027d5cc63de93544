#!/usr/bin/env bash
# tcpsteer-proxy under faults and bad configurations (issue #10, items 11-17), on loopback with
# real sockets: bounded loops, no sleeps longer than a timeout under test.
set -uo pipefail
build=$1    # build/native
module=$2   # tcpsteer.wasm
modules=$3  # WAT test modules
here=$(cd "$(dirname "$0")" && pwd)
proxy=$build/host/tcpsteer-proxy
clients=$here/fault_clients.py
# shellcheck source-path=SCRIPTDIR source=../lib/harness.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"
base=$((24000 + (RANDOM % 300) * 20))
port() { echo $((base + $1)); }
stat_of() { curl -s "http://127.0.0.1:$(port 2)/stats/prometheus" | awk -v n="$1" '$1 == n {print $2}'; }
# is STAT VALUE / echoes SOURCE NAME: for wait_until, which re-runs its command (a "$(...)" in its
# arguments would be expanded once, before the first try).
is() { test "$(stat_of "$1")" = "$2"; }
echoes() { test "$(echo_from "$1")" = "$2"; }
wait_until() {  # wait_until SECONDS COMMAND...: poll every 0.1 s
  local tries=$(($1 * 10)); shift
  for _ in $(seq "$tries"); do "$@" && return 0; sleep 0.1; done
  return 1
}

python3 "$clients" echo-server "$(port 11)" &
pids+=($!)
python3 "$clients" silent-server "$(port 12)" &
pids+=($!)

config() {  # config FILE [WASM] [IDLE_TIMEOUT] [LISTENER_ADDRESS] [ENDPOINT] [CONNECT_TIMEOUT] [EXTRA_LISTENER]
  local wasm=${2:-$module} idle=${3:-3600s} address=${4:-127.0.0.1} endpoint=${5:-127.0.0.1} timeout=${6:-5s}
  cat >"$1" <<YAML
admin: {address: {socket_address: {address: 127.0.0.1, port_value: $(port 2)}}}
static_resources:
  listeners:
    - name: main
      address: {socket_address: {address: $address, port_value: $(port 1)}}
      filter_chains:
        - filters:
            - name: envoy.filters.network.wasm
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm
                config:
                  root_id: tcp_wasm_filter
                  configuration: {"@type": type.googleapis.com/google.protobuf.StringValue, value: '{"targets": ["egress1", "silent"]}'}
                  vm_config: {runtime: envoy.wasm.runtime.v8, code: {local: {filename: $wasm}}}
            - name: envoy.filters.network.tcp_proxy
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
                stat_prefix: main
                cluster: egress1
                idle_timeout: $idle
${7:-}
  clusters:
    - {name: egress1, connect_timeout: $timeout, load_assignment: {endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: $endpoint, port_value: $(port 11)}}}}]}]}}
    - {name: silent, connect_timeout: 5s, load_assignment: {endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: $(port 12)}}}}]}]}}
YAML
}

start_proxy() {  # start_proxy CONFIG LOG [PREFIX COMMAND...]: the proxy, ready
  "${@:3}" "$proxy" -c "$1" --concurrency 2 >"$2" 2>&1 &
  proxy_pid=$!
  pids+=("$proxy_pid")
  # Ready means this proxy answers: another process on the admin port would answer too.
  wait_until 5 curl -sf "http://127.0.0.1:$(port 2)/ready" -o /dev/null && kill -0 "$proxy_pid" 2>/dev/null && return 0
  echo "proxy did not start:"; cat "$2"; return 1
}
# A proxy found by pgrep (step 12) is not this shell's child, so wait returns at once: poll until it
# is gone, or the next proxy finds its port still bound.
stop_proxy() {
  kill "$proxy_pid" 2>/dev/null
  wait "$proxy_pid" 2>/dev/null
  for _ in $(seq 100); do kill -0 "$proxy_pid" 2>/dev/null || return 0; sleep 0.05; done
}
refused() {  # refused NAME PATTERN CONFIG: the proxy exits 1 at start with PATTERN in one line
  local out code
  out=$(timeout 10 "$proxy" -c "$3" 2>&1); code=$?
  [ "$code" -eq 1 ] && [ "$(wc -l <<<"$out")" -eq 1 ] && grep -q -- "$2" <<<"$out"
  check "$1" $?
  [ "$code" -eq 1 ] || echo "     exit $code: $out"
}
echo_from() {  # echo_from SOURCE: the first line an echo connection from SOURCE gets back
  printf '' | timeout 5 socat - "TCP:127.0.0.1:$(port 1),bind=$1" 2>/dev/null | head -1
}

# 15. Configurations Envoy refuses are refused at start, one line, exit 1.
config "$work/c.yaml" "$module" 3600s localhost
refused config-listener-not-ip "'localhost' is not an IP address" "$work/c.yaml"
config "$work/c.yaml" "$module" 3600s 127.0.0.1 localhost
refused config-endpoint-not-ip "'localhost' is not an IP address" "$work/c.yaml"
refused config-is-directory "is a directory" /tmp
for t in -1s 0s 1e30s nans 99999999999999999999999s; do
  config "$work/c.yaml" "$module" 3600s 127.0.0.1 127.0.0.1 "$t"
  refused "config-connect-timeout-$t" "connect_timeout: must be a duration" "$work/c.yaml"
done
dup="    - {name: main, address: {socket_address: {address: 127.0.0.1, port_value: $(port 3)}}, filter_chains: [{filters: [{name: envoy.filters.network.tcp_proxy, typed_config: {'@type': type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy, stat_prefix: x, cluster: egress1}}]}]}"
config "$work/c.yaml" "$module" 3600s 127.0.0.1 127.0.0.1 5s "$dup"
refused config-duplicate-listener-name "duplicate listener name 'main'" "$work/c.yaml"
same="${dup/name: main/name: second}"
same="${same/port_value: $(port 3)/port_value: $(port 1)}"
config "$work/c.yaml" "$module" 3600s 127.0.0.1 127.0.0.1 5s "$same"
refused config-two-listeners-one-address "same address as listener 'main'" "$work/c.yaml"
config "$work/c.yaml"
sed 's/name: silent,/name: egress1,/' "$work/c.yaml" >"$work/d.yaml"
refused config-duplicate-cluster-name "duplicate cluster name 'egress1'" "$work/d.yaml"
out=$("$proxy" -c "$work/c.yaml" --concurrency -1 2>&1); code=$?
[ $code -eq 2 ] && grep -q "not a whole number" <<<"$out"; check concurrency-negative $?

# 15. A second proxy on the same ports is refused instead of splitting the traffic.
config "$work/a.yaml"
start_proxy "$work/a.yaml" "$work/a.log"
refused second-proxy-same-address "Address already in use" "$work/a.yaml"

# 13. Bytes held while the filter pauses go upstream as soon as it continues; a half-close
# during the pause reaches the filter once and is passed on.
stop_proxy
config "$work/p.yaml" "$modules/pause_until_two_bytes.wasm"
start_proxy "$work/p.yaml" "$work/p.log"
out=$(python3 "$clients" halfclose "$(port 1)")
[ "$out" = "b'egress1\\na'" ]; check half-close-during-pause-passed-on $?
wait_until 2 is eos_seen 1 && sleep 0.3 && [ "$(stat_of eos_seen)" = 1 ]
check half-close-delivered-once $?
out=$(python3 "$clients" pause "$(port 1)")
[ "$out" = "b'egress1\\nab'" ]; check paused-bytes-released-on-continue $?
stop_proxy

# 12. SIGHUP is ignored; a closed stdout does not kill the proxy (SIGPIPE) when it logs.
config "$work/a.yaml"
start_proxy "$work/a.yaml" /dev/null bash -c 'exec "$@" | true' _
sleep 0.2
proxy_pid=$(pgrep -f "^$proxy -c $work/a.yaml" | head -1)
pids+=("$proxy_pid")
kill -HUP "$proxy_pid"
for _ in 1 2 3; do echo_from 127.0.0.10 >/dev/null; done
sleep 0.2
kill -0 "$proxy_pid" && [ "$(echo_from 127.0.0.10)" = "egress1" ]; check sighup-and-closed-stdout-survived $?
[ "$(stat_of envoy_tcpsteer_proxy_output_lines_dropped)" -ge 1 ]; check closed-stdout-lines-counted $?
stop_proxy

# 11. A burst that exhausts file descriptors: the proxy backs off, counts, and keeps accepting.
config "$work/a.yaml"
start_proxy "$work/a.yaml" "$work/f.log" prlimit --nofile=64:64
held=$(python3 "$clients" hold "$(port 1)" 200 2)
[ "$held" -gt 60 ] && [ "$(stat_of envoy_tcpsteer_proxy_downstream_cx_overflow)" -ge 1 ]
check fd-exhaustion-counted $?
wait_until 5 echoes 127.0.0.10 egress1; check accepts-after-fd-exhaustion $?
grep -q "accept failed (Too many open files) [0-9]* time(s); retrying" "$work/f.log"; check fd-exhaustion-logged $?
lines=$(grep -c 'accept failed' "$work/f.log")
deferred=$(stat_of envoy_tcpsteer_proxy_downstream_cx_overflow)
[ "$lines" -le 10 ] && [ "$deferred" -lt 1000 ]; check fd-exhaustion-not-a-busy-loop $?
echo "     fd exhaustion: $held connections held, $(stat_of envoy_tcpsteer_proxy_downstream_cx_overflow) accepts deferred, $lines log lines"
stop_proxy

# 14. A client reset while the upstream does not read: idle_timeout frees both sides.
config "$work/i.yaml" "$module" 1s
start_proxy "$work/i.yaml" "$work/i.log"
python3 "$clients" reset "$(port 1)" 8 >/dev/null  # from .11 -> the second target, silent
released_at=$(date +%s.%N)
wait_until 5 is envoy_tcpsteer_proxy_downstream_cx_active 0; code=$?
echo "     reset while the upstream does not read: released $(awk -v s="$released_at" -v e="$(date +%s.%N)" 'BEGIN {printf "%.1f", e - s}') s after the client's reset"
check reset-connection-released $code
[ $code -eq 0 ] || { echo "     active: $(stat_of envoy_tcpsteer_proxy_downstream_cx_active)"; grep -F '[access]' "$work/i.log" | tail -3; }
[ "$(stat_of envoy_tcpsteer_proxy_idle_timeout)" -ge 1 ] || grep -q "reset" "$work/i.log"; check reset-or-idle-noticed $?

# 16. The admin endpoint closes a client that never finishes its request, and keeps serving.
python3 "$clients" slow-admin "$(port 2)" >/dev/null &
sleep 0.2
curl -sf "http://127.0.0.1:$(port 2)/ready" >/dev/null; check admin-serves-during-slow-client $?
took=$(python3 "$clients" slow-admin "$(port 2)")
awk -v t="$took" 'BEGIN {exit !(t >= 4 && t <= 8)}'; check admin-read-timeout $?
stop_proxy

# 17. A burst of 2,000 connections leaves no per-connection memory behind.
config "$work/a.yaml"
start_proxy "$work/a.yaml" "$work/m.log"
# Idle connections cost no CPU: 20 established connections held for 2 s (the relay's waiters once
# woke each other forever).
cpu() { awk '{print $14 + $15}' "/proc/$proxy_pid/stat"; }  # utime + stime, clock ticks
cpu_before=$(cpu)
python3 "$clients" hold "$(port 1)" 20 2 >/dev/null
cpu_used=$(($(cpu) - cpu_before))
echo "     20 idle connections for 2 s: $cpu_used clock ticks of proxy CPU"
[ "$cpu_used" -lt 50 ]; check idle-connections-cost-no-cpu $?
wait_until 5 is envoy_tcpsteer_proxy_downstream_cx_active 0
rss_before=$(awk '/VmRSS/ {print $2}' "/proc/$proxy_pid/status")
ok=$(python3 "$clients" burst "$(port 1)" 2000)
wait_until 5 is envoy_tcpsteer_proxy_downstream_cx_active 0
rss_after=$(awk '/VmRSS/ {print $2}' "/proc/$proxy_pid/status")
echo "     2,000-connection burst: $ok intact; proxy RSS $((rss_before / 1024)) -> $((rss_after / 1024)) MiB"
# The memory bound holds in the plain build; sanitizers multiply RSS (TCPSTEER_SANITIZED=1).
[ "$ok" -eq 2000 ] && { [ "${TCPSTEER_SANITIZED:-0}" = 1 ] || [ $((rss_after - rss_before)) -lt $((48 * 1024)) ]; }
check burst-memory-returned $?
stop_proxy

grep "^\[access\]" "$work/m.log" | grep -v "bytes_up=4096 bytes_down=4104" | sed "s/src=[^ ]*//" | sort | uniq -c | head -5
finish proxy-faults
