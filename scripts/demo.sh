#!/usr/bin/env bash
# The local end-to-end run (make demo): egress1 and egress2 (egress-server), tcpsteer-proxy running the
# real tcpsteer.wasm from deploy/envoy/envoy.yaml, and demo-client from source addresses 127.0.0.10
# (even) and 127.0.0.11 (odd) over HTTP, HTTPS and raw TCP. Prints source -> cluster chosen -> egress
# that answered, and exits 0 only if every row follows the filter's rule. Stops everything it started,
# also on Ctrl-C. With --up it leaves the stack running and says how to try it by hand.
#
# Environment: BUILD_DIR (default build/native), PORT_BASE (default: the ports in envoy.yaml).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build/native}
mode=${1:-run}
work=$(mktemp -d)
pids=()
# shellcheck disable=SC2317  # reached through the traps below
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
if [ "$mode" != "--up" ]; then trap cleanup EXIT; else trap 'cleanup; exit 130' INT TERM; fi

for binary in egress-server demo-client; do
  [ -x "$build/apps/$binary" ] || { echo "demo: $build/apps/$binary is missing: run make native"; exit 1; }
done
[ -x "$build/host/tcpsteer-proxy" ] || { echo "demo: $build/host/tcpsteer-proxy is missing: run make native"; exit 1; }

# Ports: the ones in envoy.yaml, or shifted by PORT_BASE (tests run several demos side by side).
http=10080 https=10443 admin=9901 e1=18081 e2=18082
config=deploy/envoy/envoy.yaml
if [ -n "${PORT_BASE:-}" ]; then
  http=$PORT_BASE https=$((PORT_BASE + 1)) admin=$((PORT_BASE + 2)) e1=$((PORT_BASE + 3)) e2=$((PORT_BASE + 4))
  sed -e "s/port_value: 10080/port_value: $http/" -e "s/port_value: 10443/port_value: $https/" \
      -e "s/port_value: 9901/port_value: $admin/" -e "s/port_value: 18081/port_value: $e1/" \
      -e "s/port_value: 18082/port_value: $e2/" "$config" >"$work/envoy.yaml"
  config=$work/envoy.yaml
fi

echo "== certificates (one self-signed certificate for 127.0.0.1/localhost, trusted by the client)"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=localhost \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null

echo "== egress1 on 127.0.0.1:$e1, egress2 on 127.0.0.1:$e2"
for n in 1 2; do
  port=$([ $n = 1 ] && echo "$e1" || echo "$e2")
  "$build/apps/egress-server" --name "egress$n" --listen "127.0.0.1:$port" \
    --tls-cert "$work/cert.pem" --tls-key "$work/key.pem" >"$work/egress$n.log" 2>&1 &
  pids+=($!)
done

echo "== tcpsteer-proxy -c $config (listeners $http, $https; admin $admin)"
"$build/host/tcpsteer-proxy" -c "$config" >"$work/proxy.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$admin/ready" >/dev/null 2>&1 && break
  if ! kill -0 "${pids[-1]}" 2>/dev/null; then echo "demo: the proxy did not start:"; cat "$work/proxy.log"; exit 1; fi
  sleep 0.05
done
for port in "$e1" "$e2"; do
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
done

if [ "$mode" = "--up" ]; then
  cat <<MSG

The stack is running. Try it by hand (Ctrl-C here stops everything):
  curl --interface 127.0.0.10 http://127.0.0.1:$http/            # even source -> egress1
  curl --interface 127.0.0.11 http://127.0.0.1:$http/            # odd source  -> egress2
  curl --interface 127.0.0.11 --cacert $work/cert.pem https://127.0.0.1:$https/
  echo hi | socat - TCP:127.0.0.1:$http,bind=127.0.0.12          # raw TCP
  curl http://127.0.0.1:$admin/stats/prometheus                  # the filter's counters
Logs: $work/proxy.log $work/egress1.log $work/egress2.log
MSG
  wait
  exit 0
fi

echo
printf '%-12s %-6s %-10s %-10s %s\n' source scheme cluster answered verdict
status=0
for source in 127.0.0.10 127.0.0.11; do
  octet=${source##*.}
  expected=$([ $((octet % 2)) -eq 0 ] && echo egress1 || echo egress2)
  for scheme in http https raw; do
    before=$(grep -c "src=$source:" "$work/proxy.log" || true)
    # Whole output captured (a `| head -1` could SIGPIPE the client before its summary line); a failed
    # exchange is shown in the table, not a reason to stop.
    output=$("$build/apps/demo-client" --target 127.0.0.1 --http-port "$http" --https-port "$https" \
      --raw-port "$http" --bind "$source" --schemes "$scheme" --once --json --ca "$work/cert.pem" || true)
    line=${output%%$'\n'*}
    answered=$(jq -r 'if .ok then .egress else "error: " + .error end' <<<"$line")
    # The proxy writes the access log line once it has closed both sides: wait for it (2 s at most).
    for _ in $(seq 40); do [ "$(grep -c "src=$source:" "$work/proxy.log" || true)" -gt "$before" ] && break; sleep 0.05; done
    cluster=$(grep "src=$source:" "$work/proxy.log" | tail -1 | sed -n 's/.* cluster=\([^ ]*\) .*/\1/p')
    verdict=ok
    if [ "$answered" != "$expected" ] || [ "$cluster" != "$expected" ]; then verdict="MISMATCH (expected $expected)"; status=1; fi
    printf '%-12s %-6s %-10s %-10s %s\n' "$source" "$scheme" "${cluster:-?}" "$answered" "$verdict"
  done
done
echo
echo "filter decisions (proxy log):"
grep -m1 "engine=" "$work/proxy.log" | sed 's/^/  /' || true
grep "new connection" "$work/proxy.log" | sed -n '1,6s/^/  /p' || true
echo "counters (/stats/prometheus):"
curl -s "http://127.0.0.1:$admin/stats/prometheus" | grep -E "^tcpsteer_routed|^tcpsteer_errors|downstream_cx_total" | sed 's/^/  /' || true
[ "$status" -eq 0 ] && echo "demo: every connection went where the filter's rule says" || echo "demo: FAILED"
exit "$status"
