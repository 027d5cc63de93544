#!/usr/bin/env bash
# The egress path of make demo's gateway scenario under load, with and without the gateway hop, same
# run: client -> tcpsteer-proxy (the filter, precompiled) -> nginx egress gateway (SNI passthrough,
# deploy/nginx/egress-gateways.conf) -> the external HTTPS server, against client -> tcpsteer-proxy ->
# the external server. New TLS connections/s (2 client processes, one GET each, certificate
# verified) and MB/s (one 64 MiB download). The gateway's cost is the difference. The external server
# is nginx (HTTPS, a static file) so both paths end at the same real server.
set -euo pipefail
build=${1:-build/native}
module=${2:-build/wasm/filter/tcpsteer.wasm}
seconds=${BENCH_SECONDS:-5}
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source-path=SCRIPTDIR source=../tests/lib/harness.sh
source "$root/tests/lib/harness.sh"
command -v nginx >/dev/null || { echo "egress_path_bench: nginx is missing (make deps installs it)"; exit 1; }
base=$((23000 + RANDOM % 900 * 10))
listener=$base admin=$((base + 1)) gw1=$((base + 2)) gw2=$((base + 3)) external=$((base + 4))
direct_listener=$((base + 5)) direct_admin=$((base + 6))
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
sed -e "s|@WORK@|$work|g" -e "s|@GATEWAY1_PORT@|$gw1|" -e "s|@GATEWAY2_PORT@|$gw2|" \
    -e "s|@EXTERNAL_NAME@|$name|" -e "s|@EXTERNAL_ADDRESS@|$address:$external|" \
    "$root/deploy/nginx/egress-gateways.conf" >"$work/gateways.conf"
nginx -p "$work" -e "$work/nginx-error.log" -c "$work/gateways.conf" &
pids+=($!)
# The gateway scenario's proxy config, and the same with both clusters pointing at the external server.
sed -e "s/port_value: 10444/port_value: $listener/" -e "s/port_value: 9902/port_value: $admin/" \
    -e "s/port_value: 18443/port_value: $gw1/" -e "s/port_value: 18444/port_value: $gw2/" \
    -e "s|filename: build/wasm/filter/tcpsteer.wasm|filename: $module|" \
    "$root/deploy/envoy/envoy-gateways.yaml" >"$work/via-gateway.yaml"
sed -e "s/port_value: $listener/port_value: $direct_listener/" -e "s/port_value: $admin/port_value: $direct_admin/" \
    -e "s/address: 127.0.0.1, port_value: $gw1/address: $address, port_value: $external/" \
    -e "s/address: 127.0.0.1, port_value: $gw2/address: $address, port_value: $external/" \
    "$work/via-gateway.yaml" >"$work/direct.yaml"
"$build/host/tcpsteer-proxy" -c "$work/via-gateway.yaml" --concurrency 1 >"$work/proxy1.log" 2>&1 &
pids+=($!)
"$build/host/tcpsteer-proxy" -c "$work/direct.yaml" --concurrency 1 >"$work/proxy2.log" 2>&1 &
pids+=($!)
for port in "$admin" "$direct_admin"; do
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/ready" >/dev/null 2>&1 && break; sleep 0.05; done
done
for _ in $(seq 100); do (exec 3<>"/dev/tcp/$address/$external") 2>/dev/null && break; sleep 0.05; done
for port in "$gw1" "$gw2"; do
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
done
load=$root/bench/tls_load.py
# One exchange each way first: both paths work, and the external server's certificate verifies.
python3 "$load" connections "$name" 127.0.0.1 "$listener" "$work/cert.pem" 0.2 1 >/dev/null
python3 "$load" connections "$name" 127.0.0.1 "$direct_listener" "$work/cert.pem" 0.2 1 >/dev/null

echo "egress path (${seconds}s per run; tcpsteer-proxy: 1 worker, filter precompiled; gateway: nginx stream, 1 worker; external: nginx HTTPS)"
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
routed=$(grep -c "^\[access\] .* cluster=egress_gateway" "$work/proxy1.log" || true)
echo "connections routed by the filter to a gateway: $routed (gateway access lines: $(cat "$work"/gateway*.log 2>/dev/null | wc -l))"
