#!/usr/bin/env bash
# egress-server under wrk on loopback: keep-alive req/s and p99, new connections/s, TLS handshakes/s,
# idle and loaded RSS. Figures are printed, not asserted. Goals on 2 cores: >= 50k req/s keep-alive,
# >= 10k new connections/s, p99 <= 5 ms at 100 connections, idle RSS <= 8 MiB.
set -euo pipefail
server=${1:-build/native/apps/egress-server}
seconds=${BENCH_SECONDS:-5}
command -v wrk >/dev/null || { echo "apps_bench: wrk is missing (make deps installs it)"; exit 1; }
port=$((20000 + RANDOM % 12000))  # below the ephemeral range (32768+)
log=$(mktemp)
"$server" --name egress1 --listen "127.0.0.1:$port" --listen "127.0.0.1:$((port + 1))" >"$log" 2>&1 &
pid=$!
# The trap runs under set -e: a server already stopped (the callgrind part stops it) must not fail it.
trap 'kill "$pid" 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 100); do grep -q ":$((port + 1))" "$log" && break; sleep 0.05; done
# RSS counts the shared libraries' pages the process touched (libcrypto alone is ~4 MiB of it);
# Private_Dirty is the server's own memory.
rss() {
  awk '/VmRSS/ {printf "%.1f MiB", $2 / 1024}' "/proc/$pid/status"
  awk '/^Private_Dirty/ {printf " (private dirty %.1f MiB)", $2 / 1024}' "/proc/$pid/smaps_rollup"
}
echo "egress-server bench (${seconds}s per run, wrk -t2, server: one thread)"
echo "idle RSS: $(rss)"
run() {  # run LABEL WRK-ARGS...
  local label=$1; shift
  local out
  out=$(wrk -t2 -d"${seconds}s" --latency "$@" 2>&1)
  printf '%-34s %12s req/s   p99 %s\n' "$label" "$(awk '/Requests\/sec/ {print $2}' <<<"$out")" \
    "$(awk '$1 == "99%" {print $2}' <<<"$out")"
}
run "keep-alive, 100 connections" -c100 "http://127.0.0.1:$port/"
echo "loaded RSS: $(rss)"
run "new connection per request, 50 conns" -c50 -H "Connection: close" "http://127.0.0.1:$port/"
run "TLS handshake per request, 20 conns" -c20 -H "Connection: close" "https://127.0.0.1:$((port + 1))/"
echo "RSS after the runs: $(rss)"

# Wall-clock figures move with whatever else the 2 cores do; instructions per request (callgrind)
# do not: the server run once with 1 request and once with 2001, same certificate.
if command -v valgrind >/dev/null; then
  kill "$pid" 2>/dev/null || true
  openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=bench -keyout "$log.key" -out "$log.crt" 2>/dev/null
  instructions() {  # instructions N: total instructions of a server run that answers N keep-alive requests
    local out="$log.cg" total
    valgrind --tool=callgrind --callgrind-out-file="$out" "$server" --name egress1 --listen "127.0.0.1:$port" \
      --listen "127.0.0.1:$((port + 1))" --tls-cert "$log.crt" --tls-key "$log.key" >"$log" 2>/dev/null &
    local cg=$!
    for _ in $(seq 200); do grep -q ":$((port + 1))" "$log" 2>/dev/null && break; sleep 0.05; done
    python3 - "$port" "$1" <<'PY'
import http.client, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]))
for _ in range(int(sys.argv[2])):
    c.request("GET", "/", headers={"Host": "bench"})
    c.getresponse().read()
PY
    kill -INT "$cg"; wait "$cg" 2>/dev/null || true
    total=$(callgrind_annotate "$out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
    rm -f "$out"
    echo "$total"
  }
  one=$(instructions 1)
  many=$(instructions 2001)
  echo "instructions per keep-alive request (callgrind): $(( (many - one) / 2000 ))"
  rm -f "$log.key" "$log.crt"
fi
