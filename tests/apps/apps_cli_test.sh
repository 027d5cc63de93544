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
# Out-of-range and non-decimal numbers are refused at once with exit 2 (CLI11 alone wraps -1 to
# 2^64-1 and reads 010 as octal).
for args in "--header-timeout-ms -1" "--body-timeout-ms 0" "--idle-timeout-ms 18446744073709551616" \
            "--max-connections 18446744073709551616" "--max-connections 0" "--max-header-bytes 010" \
            "--drain-timeout-ms 1e3"; do
  # shellcheck disable=SC2086 # the option and its value are two words
  out=$("$server" --name x $args 2>&1); code=$?
  [ $code -eq 2 ] && grep -q "is not a whole number" <<<"$out"; check "server-refuses ${args// /=}" $?
done
for args in "--count -1" "--count 0" "--timeout-ms 18446744073709551615" "--http-port 65536" \
            "--interval-ms -5" "--raw-port 0"; do
  # shellcheck disable=SC2086
  out=$("$client" --target 127.0.0.1 $args 2>&1); code=$?
  [ $code -eq 2 ] && grep -q "is not a whole number" <<<"$out"; check "client-refuses ${args// /=}" $?
done
# Nothing an option carries may add a line to the request: control characters are refused.
out=$("$client" --once --target 127.0.0.1 --path $'/a\r\nX-Injected: yes' 2>&1); code=$?
[ $code -eq 2 ] && grep -q "control characters" <<<"$out"; check client-refuses-crlf-path $?
out=$("$client" --once --target $'127.0.0.1\r\nX: y' 2>&1); code=$?
[ $code -eq 2 ]; check client-refuses-crlf-target $?
"$client" --once --path nowhere >/dev/null 2>&1; [ $? -eq 2 ]; check client-path-must-start-with-slash $?
# --connect-to dials another address while Host and SNI stay the target (a name no DNS knows here),
# and every line says which address the server saw (--bind's).
out=$("$client" --target api.tcpsteer.example --connect-to 127.0.0.1 --http-port "$port_http" --https-port "$port_tls" \
  --bind 127.0.0.45 --insecure --once --json)
[ "$(jq -rs '[.[] | select(.scheme) | .ok, (.seen_as | startswith("127.0.0.45:"))] | all' <<<"$out")" = true ] &&
  grep -q '"host":"api.tcpsteer.example"' "$work/server1.log" && grep -q '"sni":"api.tcpsteer.example"' "$work/server1.log"
check client-connect-to-keeps-host-and-sni $?
"$client" --once --bind not-an-address >"$work/bind.out" 2>&1
[ $? -eq 2 ] && grep -q -- "--bind" "$work/bind.out"; check client-refuses-bad-bind-address $?
"$client" --once --connect-to $'127.0.0.1\r\nX: y' >/dev/null 2>&1; [ $? -eq 2 ]; check client-refuses-crlf-connect-to $?
# The README's command line: --schemes takes the comma form too.
"$client" --target 127.0.0.1 --http-port "$port_http" --raw-port "$port_http" --schemes http,raw --once \
  --expect egress1 >"$work/comma.out"
check client-schemes-comma-form $?
[ "$(grep -c egress1 "$work/comma.out")" -ge 2 ]; check client-schemes-comma-both-ran $?
# A closed stdout and SIGHUP do not kill the server.
start_egress_server "$server" egress1 "$work/server2.log"
kill -HUP "$server_pid"; sleep 0.2
kill -0 "$server_pid"; check server-survives-sighup $?
port_pipe=$((port_http + 2))
{ "$server" --name piped --listen "127.0.0.1:$port_pipe" | head -c 1 >/dev/null; } &
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$port_pipe/" && break; sleep 0.05; done
piped_pid=$(pgrep -f -- "--name piped --listen 127.0.0.1:$port_pipe")
pids+=("$piped_pid")
for _ in 1 2 3; do curl -s -o /dev/null "http://127.0.0.1:$port_pipe/"; done  # its log lines hit EPIPE
out=$(curl -s "http://127.0.0.1:$port_pipe/"); grep -q "Hello from piped" <<<"$out"
check server-survives-closed-stdout $?
# Out of file descriptors (defect 3): with 40 descriptors and 60 clients holding their connections,
# accept fails with EMFILE; the server pauses instead of spinning (CPU time stays low, a few log lines)
# and serves again once the clients let go.
port_fd=$((port_http + 3))
(ulimit -n 40 && exec "$server" --name fds --threads 1 --listen "127.0.0.1:$port_fd") >"$work/fds.log" 2>&1 &
fd_pid=$!
pids+=("$fd_pid")
for _ in $(seq 50); do grep -q "127.0.0.1:$port_fd" "$work/fds.log" && break; sleep 0.05; done
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
before=$(cpu_ticks "$fd_pid")
python3 - "$port_fd" <<'PY' &
import socket, sys, time
held = []
for _ in range(60):
    held.append(socket.create_connection(("127.0.0.1", int(sys.argv[1]))))
time.sleep(2.0)
PY
holder=$!
sleep 2.2
after=$(cpu_ticks "$fd_pid")
wait "$holder"
errors=$(grep -c '"event":"accept_error"' "$work/fds.log")
out=""
for _ in $(seq 40); do out=$(curl -s --max-time 2 "http://127.0.0.1:$port_fd/") && [ -n "$out" ] && break; sleep 0.1; done
echo "  (EMFILE: $errors accept_error lines, $((after - before)) CPU ticks in 2.2 s)"
# 100 ticks = 1 s of CPU: a spinning loop would use about 220.
[ "$errors" -ge 1 ] && [ "$errors" -le 20 ] && [ $((after - before)) -le 40 ] && grep -q "Hello from fds" <<<"$out" &&
  grep -q '"pausing_ms":' "$work/fds.log"
check server-backs-off-when-out-of-descriptors $?
# SIGTERM closes a connection that has not sent a byte at once (defect 4): no wait for the drain
# timeout (10 s by default) or the header timeout.
port_term=$((port_http + 4))
"$server" --name term --listen "127.0.0.1:$port_term" --header-timeout-ms 30000 >"$work/term.log" 2>&1 &
term_pid=$!
pids+=("$term_pid")
for _ in $(seq 50); do grep -q "127.0.0.1:$port_term" "$work/term.log" && break; sleep 0.05; done
exec 7<>"/dev/tcp/127.0.0.1/$port_term"
sleep 0.2
started=$(date +%s%N)
kill -TERM "$term_pid"
for _ in $(seq 100); do kill -0 "$term_pid" 2>/dev/null || break; sleep 0.02; done
elapsed_ms=$(( ($(date +%s%N) - started) / 1000000 ))
exec 7<&-
echo "  (SIGTERM with a silent connection: exited after $elapsed_ms ms)"
! kill -0 "$term_pid" 2>/dev/null && [ "$elapsed_ms" -lt 1500 ] && grep -q '"closed":"draining"' "$work/term.log"
check server-sigterm-closes-silent-connections $?
"$server" --threads 257 --name x >/dev/null 2>&1; [ $? -eq 2 ]; check server-refuses-too-many-threads $?
"$server" --help | grep -q -- "--tls-cert"; check server-help $?
"$client" --help | grep -q -- "--bind"; check client-help $?

finish apps_cli
