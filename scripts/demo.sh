#!/usr/bin/env bash
# The local end-to-end run (make demo), two scenarios, each run by the real tcpsteer.wasm in
# tcpsteer-proxy, with demo-client calling from 127.0.0.10 (even last octet) and 127.0.0.11 (odd):
#  1. direct (the seed's): deploy/envoy/envoy.yaml sends HTTP, HTTPS and raw TCP to egress1 or egress2
#     (egress-server), which answer with their names.
#  2. gateways: deploy/envoy/envoy-gateways.yaml sends the client's TLS for api.tcpsteer.example to
#     egress gateway 1 or 2 (nginx, deploy/nginx/egress-gateways.conf: SNI passthrough, allow-list,
#     leaving from 127.0.0.21 / .22), which carry it on to the external server (egress-server with its
#     own certificate for the name, verified by the client). The external server reports the address
#     it saw; a name not on the allow-list is refused.
# Prints one row per exchange and exits 0 only if every row follows the filter's rule. Stops
# everything it started, also on Ctrl-C. With --up it leaves the stacks running and says how to try
# them by hand.
#
# Environment: BUILD_DIR (default build/native), PORT_BASE (default: the ports in the config files;
# the demo uses PORT_BASE .. PORT_BASE+9).
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
nginx_module=/usr/lib/nginx/modules/ngx_stream_module.so
if ! command -v nginx >/dev/null || [ ! -f "$nginx_module" ]; then
  echo "demo: nginx with its stream module is missing: run scripts/install-deps.sh (nginx libnginx-mod-stream)"; exit 1
fi

# Waits until something accepts on 127.0.0.1:PORT (5 s at most); PID is the process that should.
wait_port() {
  local port=$1 pid=$2 log=$3
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    if ! kill -0 "$pid" 2>/dev/null; then echo "demo: the process for port $port exited:"; cat "$log"; exit 1; fi
    sleep 0.05
  done
  echo "demo: nothing listens on 127.0.0.1:$port after 5 s:"; cat "$log"; exit 1
}

# Ports: the ones in the config files, or shifted by PORT_BASE (tests run several demos side by side).
http=10080 https=10443 admin=9901 e1=18081 e2=18082
gw_listener=10444 gw_admin=9902 gw1=18443 gw2=18444 external=19443
config=deploy/envoy/envoy.yaml
gw_config=deploy/envoy/envoy-gateways.yaml
if [ -n "${PORT_BASE:-}" ]; then
  http=$PORT_BASE https=$((PORT_BASE + 1)) admin=$((PORT_BASE + 2)) e1=$((PORT_BASE + 3)) e2=$((PORT_BASE + 4))
  gw_listener=$((PORT_BASE + 5)) gw_admin=$((PORT_BASE + 6)) gw1=$((PORT_BASE + 7)) gw2=$((PORT_BASE + 8))
  external=$((PORT_BASE + 9))
  sed -e "s/port_value: 10080/port_value: $http/" -e "s/port_value: 10443/port_value: $https/" \
      -e "s/port_value: 9901/port_value: $admin/" -e "s/port_value: 18081/port_value: $e1/" \
      -e "s/port_value: 18082/port_value: $e2/" "$config" >"$work/envoy.yaml"
  config=$work/envoy.yaml
  sed -e "s/port_value: 10444/port_value: $gw_listener/" -e "s/port_value: 9902/port_value: $gw_admin/" \
      -e "s/port_value: 18443/port_value: $gw1/" -e "s/port_value: 18444/port_value: $gw2/" \
      "$gw_config" >"$work/envoy-gateways.yaml"
  gw_config=$work/envoy-gateways.yaml
fi
# The external host of the gateway scenario: a name only the client's --connect-to and the gateways'
# allow-list know; its server listens on an address of its own.
external_name=api.tcpsteer.example external_address=127.0.0.30

echo "== certificates (self-signed, trusted by the client: localhost for egress1/egress2, $external_name for the external server)"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=localhost \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj "/CN=$external_name" \
  -addext "subjectAltName=DNS:$external_name" -keyout "$work/external-key.pem" -out "$work/external-cert.pem" 2>/dev/null

echo "== egress1 on 127.0.0.1:$e1, egress2 on 127.0.0.1:$e2"
for n in 1 2; do
  port=$([ $n = 1 ] && echo "$e1" || echo "$e2")
  "$build/apps/egress-server" --name "egress$n" --listen "127.0.0.1:$port" \
    --tls-cert "$work/cert.pem" --tls-key "$work/key.pem" >"$work/egress$n.log" 2>&1 &
  pids+=($!)
done

echo "== external server $external_name on $external_address:$external"
"$build/apps/egress-server" --name external --listen "$external_address:$external" \
  --tls-cert "$work/external-cert.pem" --tls-key "$work/external-key.pem" >"$work/external.log" 2>&1 &
pids+=($!)
external_pid=$!

echo "== egress gateways (nginx): 1 on 127.0.0.1:$gw1 leaving from 127.0.0.21, 2 on 127.0.0.1:$gw2 from 127.0.0.22"
sed -e "s|@WORK@|$work|g" -e "s|@GATEWAY1_PORT@|$gw1|" -e "s|@GATEWAY2_PORT@|$gw2|" \
    -e "s|@EXTERNAL_NAME@|$external_name|" -e "s|@EXTERNAL_ADDRESS@|$external_address:$external|" \
    deploy/nginx/egress-gateways.conf >"$work/nginx.conf"
nginx -p "$work" -e "$work/nginx-error.log" -c "$work/nginx.conf" >"$work/nginx.out" 2>&1 &
pids+=($!)
nginx_pid=$!

echo "== tcpsteer-proxy -c $config (listeners $http, $https; admin $admin)"
"$build/host/tcpsteer-proxy" -c "$config" >"$work/proxy.log" 2>&1 &
pids+=($!)
proxy_pid=$!
echo "== tcpsteer-proxy -c $gw_config (listener $gw_listener to the gateways; admin $gw_admin)"
"$build/host/tcpsteer-proxy" -c "$gw_config" >"$work/gw-proxy.log" 2>&1 &
pids+=($!)
gw_proxy_pid=$!
for pid_admin in "$proxy_pid:$admin:proxy.log" "$gw_proxy_pid:$gw_admin:gw-proxy.log"; do
  IFS=: read -r pid port log <<<"$pid_admin"
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$port/ready" >/dev/null 2>&1 && break
    if ! kill -0 "$pid" 2>/dev/null; then echo "demo: the proxy did not start:"; cat "$work/$log"; exit 1; fi
    sleep 0.05
  done
done
wait_port "$e1" "${pids[0]}" "$work/egress1.log"
wait_port "$e2" "${pids[1]}" "$work/egress2.log"
wait_port "$gw1" "$nginx_pid" "$work/nginx-error.log"
wait_port "$gw2" "$nginx_pid" "$work/nginx-error.log"
for _ in $(seq 100); do (exec 3<>"/dev/tcp/$external_address/$external") 2>/dev/null && break; sleep 0.05; done
kill -0 "$external_pid" 2>/dev/null || { echo "demo: the external server exited:"; cat "$work/external.log"; exit 1; }

if [ "$mode" = "--up" ]; then
  cat <<MSG

The stack is running. Try it by hand (Ctrl-C here stops everything):
  curl --interface 127.0.0.10 http://127.0.0.1:$http/            # even source -> egress1
  curl --interface 127.0.0.11 http://127.0.0.1:$http/            # odd source  -> egress2
  curl --interface 127.0.0.11 --cacert $work/cert.pem https://127.0.0.1:$https/
  echo hi | socat - TCP:127.0.0.1:$http,bind=127.0.0.12          # raw TCP
  curl http://127.0.0.1:$admin/stats/prometheus                  # the filter's counters
Through the egress gateways (the external server answers with the address it saw):
  curl --interface 127.0.0.10 --cacert $work/external-cert.pem \
       --connect-to $external_name:443:127.0.0.1:$gw_listener https://$external_name/   # seen as 127.0.0.21
  curl --interface 127.0.0.11 --cacert $work/external-cert.pem \
       --connect-to $external_name:443:127.0.0.1:$gw_listener https://$external_name/   # seen as 127.0.0.22
Logs: $work/proxy.log $work/egress1.log $work/egress2.log $work/gw-proxy.log $work/gateway1.log
      $work/gateway2.log $work/external.log $work/nginx-error.log
MSG
  wait
  exit 0
fi

echo
echo "== scenario 1: direct (egress1 and egress2 answer with their names)"
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
echo "== scenario 2: through the egress gateways to https://$external_name (certificate verified by the client)"
# A gateway's access lines for the external name (0 before its first); the readiness probes above
# left lines without SNI there.
lines() { local n; n=$(grep -cF "sni=\"$external_name\"" "$1" 2>/dev/null); echo "${n:-0}"; }
printf '%-12s %-15s %-9s %-16s %s\n' source cluster gateway "external saw" verdict
for source in 127.0.0.10 127.0.0.11; do
  octet=${source##*.}
  if [ $((octet % 2)) -eq 0 ]; then want_cluster=egress_gateway1 want_gateway=1 want_seen=127.0.0.21
  else want_cluster=egress_gateway2 want_gateway=2 want_seen=127.0.0.22; fi
  before=$(grep -c "src=$source:" "$work/gw-proxy.log" || true)
  g1=$(lines "$work/gateway1.log") g2=$(lines "$work/gateway2.log")
  output=$("$build/apps/demo-client" --target "$external_name" --connect-to 127.0.0.1 --https-port "$gw_listener" \
    --bind "$source" --schemes https --once --json --ca "$work/external-cert.pem" || true)
  line=${output%%$'\n'*}
  seen=$(jq -r 'if .ok then (.seen_as | sub(":[0-9]+$"; "")) else "error: " + .error end' <<<"$line")
  answered=$(jq -r '.egress' <<<"$line")
  for _ in $(seq 40); do [ "$(grep -c "src=$source:" "$work/gw-proxy.log" || true)" -gt "$before" ] && break; sleep 0.05; done
  cluster=$(grep "src=$source:" "$work/gw-proxy.log" | tail -1 | sed -n 's/.* cluster=\([^ ]*\) .*/\1/p')
  # nginx writes its access line when the session ends: wait for it too.
  gateway='?'
  for _ in $(seq 40); do
    if [ "$(lines "$work/gateway1.log")" -gt "$g1" ]; then gateway=1; break; fi
    if [ "$(lines "$work/gateway2.log")" -gt "$g2" ]; then gateway=2; break; fi
    sleep 0.05
  done
  verdict=ok
  if [ "$cluster" != "$want_cluster" ] || [ "$gateway" != "$want_gateway" ] || [ "$seen" != "$want_seen" ] ||
     [ "$answered" != external ]; then
    verdict="MISMATCH (expected $want_cluster, gateway $want_gateway, seen as $want_seen)"; status=1
  fi
  printf '%-12s %-15s %-9s %-16s %s\n' "$source" "${cluster:-?}" "$gateway" "$seen" "$verdict"
done
# A name the gateways do not allow: the gateway closes the connection, nothing reaches a server.
requests_before=$(grep -c '"event":"request"' "$work/external.log" || true)
output=$("$build/apps/demo-client" --target other.tcpsteer.example --connect-to 127.0.0.1 --https-port "$gw_listener" \
  --bind 127.0.0.10 --schemes https --once --json --insecure --timeout-ms 3000 || true)
line=${output%%$'\n'*}
refused_status=""
for _ in $(seq 40); do
  refused_status=$(grep -F 'sni="other.tcpsteer.example"' "$work/gateway1.log" 2>/dev/null | tail -1 | sed -n 's/.* status=\([0-9]*\) .*/\1/p')
  [ -n "$refused_status" ] && break
  sleep 0.05
done
requests_after=$(grep -c '"event":"request"' "$work/external.log" || true)
if [ "$(jq -r .ok <<<"$line")" = false ] && [ -n "$refused_status" ] && [ "$refused_status" != 200 ] &&
   [ "$requests_after" -eq "$requests_before" ]; then
  printf '%-12s %-15s %-9s %-16s %s\n' 127.0.0.10 egress_gateway1 1 "(nothing)" "ok: other.tcpsteer.example refused (gateway status $refused_status)"
else
  printf '%-12s %-15s %-9s %-16s %s\n' 127.0.0.10 egress_gateway1 1 "?" "MISMATCH: other.tcpsteer.example was not refused: $line"
  status=1
fi

echo
echo "filter decisions (proxy log):"
grep -m1 "engine=" "$work/proxy.log" | sed 's/^/  /' || true
grep "new connection" "$work/proxy.log" | sed -n '1,6s/^/  /p' || true
echo "counters (/stats/prometheus):"
curl -s "http://127.0.0.1:$admin/stats/prometheus" | grep -E "^tcpsteer_routed|^tcpsteer_errors|downstream_cx_total" | sed 's/^/  /' || true
echo "gateway access lines (nginx):"
cat "$work/gateway1.log" "$work/gateway2.log" 2>/dev/null | sed 's/^/  /' || true
[ "$status" -eq 0 ] && echo "demo: every connection went where the filter's rule says" || echo "demo: FAILED"
exit "$status"
