#!/usr/bin/env bash
# egress-server and demo-client as processes: curl and openssl s_client against the server, SIGTERM
# drain, and the CLIs' exit codes and messages.
set -uo pipefail
server=$1
client=$2
# shellcheck source-path=SCRIPTDIR source=../lib/harness.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"

start_egress_server "$server" egress2 "$work/server.log"
out=$(curl -s -i "http://127.0.0.1:$port_http/")
grep -q "x-egress: egress2" <<<"$out" && grep -q "Hello from egress2 on port $port_http" <<<"$out"; check curl-http $?
out=$(curl -sk -H 'Accept: application/json' "https://localhost:$port_tls/")
grep -q '"egress":"egress2"' <<<"$out" && grep -q '"sni":"localhost"' <<<"$out" && grep -q '"tls":true' <<<"$out"; check curl-https-json $?
out=$(curl -s "http://127.0.0.1:$port_http/healthz"); [ "$out" = "ok" ]; check healthz $?
out=$(printf 'GET / HTTP/1.1\r\nHost: s\r\nConnection: close\r\n\r\n' |
      timeout 5 openssl s_client -connect "127.0.0.1:$port_tls" -servername egress2.example -quiet 2>/dev/null)
grep -q "x-egress: egress2" <<<"$out" && grep -q "sni: egress2.example" <<<"$out"; check openssl-s_client $?
grep -q "generated an ephemeral self-signed certificate" "$work/server.log"; check self-signed-log-line $?
grep -q '"event":"request"' "$work/server.log"; check request-log-lines $?

"$client" --target 127.0.0.1 --http-port "$port_http" --https-port "$port_tls" --insecure --once --expect egress2 >/dev/null
check client-expect-match $?
"$client" --target 127.0.0.1 --http-port "$port_http" --https-port "$port_tls" --insecure --once --expect egress1 >"$work/c.out"
[ $? -eq 3 ] && grep -q "expected every answer from egress1" "$work/c.out"; check client-expect-mismatch-exit-3 $?
"$client" --target 127.0.0.1 --http-port "$port_http" --https-port "$port_tls" --insecure --count 2 --interval-ms 10 \
  --alive-file "$work/alive" >/dev/null
grep -q "^round=2 errors=0 unix_time=" "$work/alive"; check client-alive-file $?
"$client" --target 127.0.0.1 --http-port "$port_http" --insecure --once --schemes http --alive-file /proc/none/alive \
  >/dev/null 2>"$work/alive.err" && grep -q "cannot write --alive-file /proc/none/alive" "$work/alive.err"
check client-alive-file-unwritable $?
"$client" --target 127.0.0.1 --raw --raw-port "$port_http" --count 2 --interval-ms 10 --json >"$work/c.json"
[ "$(grep -c '"egress":"egress2"' "$work/c.json")" -eq 2 ] && grep -q '"summary":true' "$work/c.json"; check client-raw-json $?

# SIGTERM with a request in flight (headers still arriving): it is answered, then the server exits 0.
exec 3<>"/dev/tcp/127.0.0.1/$port_http"
printf 'GET / HTTP/1.1\r\nHost: s\r\n' >&3
sleep 0.2
kill -TERM "$server_pid"
sleep 0.2
printf '\r\n' >&3
answer=$(timeout 5 cat <&3)
exec 3>&-
wait "$server_pid"; code=$?
[ "$code" -eq 0 ] && grep -q '"event":"draining"' "$work/server.log" && grep -q "^HTTP/1.1 200" <<<"$answer" &&
  grep -qi "^connection: close" <<<"$answer"
check sigterm-drain-finishes-request-exit-0 $?

# Client on SIGTERM: prints its summary and stops.
start_egress_server "$server" egress1 "$work/server1.log"
"$client" --target 127.0.0.1 --http-port "$port_http" --schemes http --interval-ms 100 >"$work/loop.out" &
cpid=$!
sleep 0.5; kill -TERM "$cpid"; wait "$cpid"
grep -q "^summary: egress1=" "$work/loop.out"; check client-sigterm-summary $?

# Usage errors say what is wrong.
out=$(env -u SERVER_NAME "$server" 2>&1); code=$?
[ $code -eq 2 ] && grep -q "no name" <<<"$out"; check server-needs-name $?
out=$("$server" --name x --listen nowhere 2>&1); code=$?
[ $code -eq 1 ] && grep -q "is not ADDRESS:PORT" <<<"$out"; check server-bad-listen $?
out=$("$server" --name x --listen "127.0.0.1:$port_http" 2>&1); code=$?
[ $code -eq 1 ] && grep -q "cannot listen on 127.0.0.1:$port_http" <<<"$out"; check server-port-in-use $?
out=$("$client" --once --target 127.0.0.1 --http-port 1 --schemes http 2>&1); code=$?
[ $code -eq 1 ] && grep -q "connection refused" <<<"$out"; check client-refused $?
"$client" --expect egress3 >/dev/null 2>&1; [ $? -eq 2 ]; check client-bad-expect $?
"$server" --help | grep -q -- "--tls-cert"; check server-help $?
"$client" --help | grep -q -- "--bind"; check client-help $?

finish apps_cli
