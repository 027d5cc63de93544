# shellcheck shell=bash
# Sourced by the shell tests: a scratch directory, background processes stopped on exit, one
# "ok NAME" / "FAIL NAME" line per check, and a summary that sets the exit status.
work=$(mktemp -d)
passed=0
failures=0
pids=()
harness_cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$work"
}
trap harness_cleanup EXIT

check() {  # check NAME CONDITION-EXIT-CODE
  if [ "$2" -eq 0 ]; then
    echo "ok   $1"
    passed=$((passed + 1))
  else
    echo "FAIL $1"
    failures=$((failures + 1))
  fi
}

finish() {  # finish [LABEL]: the summary line; exit status 0 only without failures
  echo "${1:+$1: }$passed passed, $failures failed"
  [ "$failures" -eq 0 ]
}

# start_egress_server SERVER NAME LOG: egress-server on two free loopback ports; sets port_http,
# port_tls and server_pid (retries on a port clash).
start_egress_server() {
  local server=$1 name=$2 log=$3 attempt
  for attempt in 1 2 3 4 5; do
    port_http=$((20000 + RANDOM % 12000))  # below the ephemeral range (32768+)
    port_tls=$((port_http + 1))
    "$server" --name "$name" --listen "127.0.0.1:$port_http" --listen "127.0.0.1:$port_tls" >"$log" 2>&1 &
    server_pid=$!
    for _ in $(seq 50); do grep -q "127.0.0.1:$port_tls" "$log" 2>/dev/null && break; sleep 0.05; done
    if kill -0 "$server_pid" 2>/dev/null && grep -q "127.0.0.1:$port_tls" "$log"; then
      pids+=("$server_pid")
      return 0
    fi
  done
  echo "could not start $server after $attempt attempts:"
  cat "$log"
  exit 1
}
