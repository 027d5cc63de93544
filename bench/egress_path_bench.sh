#!/usr/bin/env bash
# The egress path of make demo's gateway scenario under load, with and without the gateway hop, same
# run: client -> Envoy with tcpsteer.wasm (deploy/envoy/envoy-gateways.yaml) -> an Envoy egress gateway
# configured as Istio's PASSTHROUGH gateway (deploy/envoy/egress-gateway.yaml) -> the external HTTPS
# server, against client -> Envoy with tcpsteer.wasm -> the external server. New TLS connections/s (2 client processes, one GET each, certificate
# verified) and MB/s (one 64 MiB download). The gateway's cost is the difference. The external server
# is nginx (HTTPS, a static file) so both paths end at the same real server.
set -euo pipefail
module=${1:-build/wasm/filter/tcpsteer.wasm}
seconds=${BENCH_SECONDS:-5}
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source-path=SCRIPTDIR source=../tests/lib/harness.sh
source "$root/tests/lib/harness.sh"
command -v nginx >/dev/null || { echo "egress_path_bench: nginx is missing (make deps installs it)"; exit 1; }
envoy=$(bash "$root/scripts/envoy.sh") || exit 1
base=$((23000 + RANDOM % 900 * 10))
listener=$base admin=$((base + 1)) gw1=$((base + 2)) gw2=$((base + 3)) external=$((base + 4))
direct_listener=$((base + 5)) direct_admin=$((base + 6)) gw1_admin=$((base + 7)) gw2_admin=$((base + 8))
name=api.tcpsteer.example address=127.0.0.30

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj "/CN=$name" \
  -addext "subjectAltName=DNS:$name" -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
mkdir -p "$work/www" "$work/ext"
head -c $((64 * 1024 * 1024)) /dev/zero >"$work/www/big"
echo ok >"$work/www/index.html"
# nginx's workers run as nobody when started as root: they must be able to read the files.
chmod o+x "$work"
chmod -R o+rX "$work/www"
cat >"$work/external.conf" <<NGINX
worker_processes 1;
daemon off;
pid $work/ext/nginx.pid;
error_log $work/ext/error.log;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $work/ext; proxy_temp_path $work/ext; fastcgi_temp_path $work/ext;
    uwsgi_temp_path $work/ext; scgi_temp_path $work/ext;
    server {
        listen $address:$external ssl;
        server_name $name;
        ssl_certificate $work/cert.pem;
        ssl_certificate_key $work/key.pem;
        root $work/www;
    }
}
NGINX
nginx -p "$work/ext" -e "$work/ext/error.log" -c "$work/external.conf" &
pids+=($!)
run_envoy() {  # run_envoy CONFIG LOG: one worker, hot restart off
  "$envoy" -c "$1" --disable-hot-restart --concurrency 1 --file-flush-interval-msec 100 -l warning >"$2" 2>&1 &
  pids+=($!)
}
for n in 1 2; do
  if [ $n = 1 ]; then port=$gw1 source=127.0.0.21 gw_admin=$gw1_admin; else port=$gw2 source=127.0.0.22 gw_admin=$gw2_admin; fi
  sed -e "s|@NAME@|$n|g" -e "s|@ADMIN_PORT@|$gw_admin|" -e "s|@GATEWAY_PORT@|$port|" \
      -e "s|@ACCESS_LOG@|$work/gateway$n.log|g" -e "s|@EXTERNAL_NAME@|$name|g" \
      -e "s|@SOURCE_ADDRESS@|$source|" -e "s|@EXTERNAL_ADDRESS@|$address|" \
      -e "s|@EXTERNAL_PORT@|$external|" "$root/deploy/envoy/egress-gateway.yaml" >"$work/gateway$n.yaml"
  run_envoy "$work/gateway$n.yaml" "$work/gateway$n-envoy.log"
done
# The gateway scenario's Envoy config, and the same with both clusters pointing at the external server.
sed -e "s/port_value: 10444/port_value: $listener/" -e "s/port_value: 9902/port_value: $admin/" \
    -e "s/port_value: 18443/port_value: $gw1/" -e "s/port_value: 18444/port_value: $gw2/" \
    -e "s|filename: build/wasm/filter/tcpsteer.wasm|filename: $module|" \
    "$root/deploy/envoy/envoy-gateways.yaml" >"$work/via-gateway.yaml"
sed -e "s/port_value: $listener/port_value: $direct_listener/" -e "s/port_value: $admin/port_value: $direct_admin/" \
    -e "s/address: 127.0.0.1, port_value: $gw1/address: $address, port_value: $external/" \
    -e "s/address: 127.0.0.1, port_value: $gw2/address: $address, port_value: $external/" \
    "$work/via-gateway.yaml" >"$work/direct.yaml"
run_envoy "$work/via-gateway.yaml" "$work/envoy1.log"
run_envoy "$work/direct.yaml" "$work/envoy2.log"
for port in "$admin" "$direct_admin" "$gw1_admin" "$gw2_admin"; do
  for _ in $(seq 200); do [ "$(curl -s "http://127.0.0.1:$port/ready" 2>/dev/null)" = LIVE ] && break; sleep 0.05; done
done
for _ in $(seq 100); do (exec 3<>"/dev/tcp/$address/$external") 2>/dev/null && break; sleep 0.05; done
for port in "$gw1" "$gw2"; do
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
done
load=$root/bench/tls_load.py
# One exchange each way first: both paths work, and the external server's certificate verifies.
python3 "$load" connections "$name" 127.0.0.1 "$listener" "$work/cert.pem" 0.2 1 >/dev/null
python3 "$load" connections "$name" 127.0.0.1 "$direct_listener" "$work/cert.pem" 0.2 1 >/dev/null

echo "egress path (${seconds}s per run; $(bash "$root/scripts/envoy.sh" --describe | sed 's/ at .*//'), 1 worker each: the filter's, and each gateway; external: nginx HTTPS)"
printf '%-40s %16s %16s %8s\n' "" "via gateway" "direct" "ratio"
via=$(python3 "$load" connections "$name" 127.0.0.1 "$listener" "$work/cert.pem" "$seconds" 2)
direct=$(python3 "$load" connections "$name" 127.0.0.1 "$direct_listener" "$work/cert.pem" "$seconds" 2)
printf '%-40s %14s/s %14s/s %7.2fx\n' "new TLS connections (2 clients)" "$via" "$direct" \
  "$(awk -v a="$via" -v b="$direct" 'BEGIN {print (b > 0 ? a / b : 0)}')"
read -r via_mb via_bytes < <(python3 "$load" bytes "$name" 127.0.0.1 "$listener" "$work/cert.pem" /big)
read -r direct_mb direct_bytes < <(python3 "$load" bytes "$name" 127.0.0.1 "$direct_listener" "$work/cert.pem" /big)
if [ "$via_bytes" -lt $((64 * 1024 * 1024)) ] || [ "$direct_bytes" -lt $((64 * 1024 * 1024)) ]; then
  echo "egress_path_bench: a download came back short ($via_bytes, $direct_bytes bytes)"; exit 1
fi
printf '%-40s %12s MB/s %12s MB/s %7.2fx\n' "64 MiB download over TLS" "$via_mb" "$direct_mb" \
  "$(awk -v a="$via_mb" -v b="$direct_mb" 'BEGIN {print (b > 0 ? a / b : 0)}')"
routed=$(curl -s "http://127.0.0.1:$admin/stats?filter=^wasmcustom.tcpsteer.routed" | awk '{sum += $2} END {print sum + 0}')
echo "connections routed by the filter to a gateway: $routed (gateway access lines: $(cat "$work"/gateway?.log 2>/dev/null | wc -l))"
