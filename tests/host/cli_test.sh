#!/usr/bin/env bash
# tcpsteer-host CLI: exit codes and messages for good and bad input, and the replay demo.
set -uo pipefail
host=$1
module=$2
modules=$3
demo=$4
failures=0
expect() {  # expect NAME EXIT_CODE PATTERN -- command...
  local name=$1 want=$2 pattern=$3
  shift 4
  local out
  out=$("$@" 2>&1)
  local code=$?
  if [ "$code" -ne "$want" ] || ! grep -Eq -- "$pattern" <<<"$out"; then
    echo "FAIL $name: exit $code (want $want), output:"; echo "$out" | head -5
    failures=$((failures + 1))
  else
    echo "ok   $name"
  fi
}
expect check-filter 0 "Envoy would load this module" -- "$host" check "$module"
expect check-json 0 '"loads_in_envoy":true' -- "$host" check --json "$module"
expect check-refused 1 "missing import: env.getaddrinfo" -- "$host" check "$modules/missing_import.wasm"
expect check-missing-file 2 "cannot read /nonexistent.wasm" -- "$host" check /nonexistent.wasm
expect check-not-wasm 1 "not a valid wasm module" -- "$host" check "$0"
expect no-subcommand 2 "subcommand" -- "$host"
expect replay-needs-conn 2 "conn" -- "$host" replay "$module"
expect replay-bad-conn 2 "is not SRC,DST" -- "$host" replay "$module" --conn 10.0.0.1
expect replay-bad-level 2 "log-level" -- "$host" replay "$module" --conn a,b --log-level loud
expect replay-even 0 '"cluster":"outbound\|443\|\|egress1.default.svc.cluster.local"' -- \
  "$host" replay "$module" --root-id tcp_wasm_filter --conn 10.0.0.2:1,1.2.3.4:443
expect replay-odd 0 '"cluster":"egress2"' -- "$host" replay "$module" --config standalone --conn 10.0.0.3:1,1.2.3.4:443
expect replay-bad-config 1 '"status":"config_rejected"' -- "$host" replay "$module" --config '{"mode":"x"}' --conn a,b
expect replay-config-file-missing 2 "cannot read /nonexistent.json" -- "$host" replay "$module" --config @/nonexistent.json --conn a,b
expect replay-trap 1 '"event":"vm_failed"' -- "$host" replay "$modules/trap_on_connection.wasm" --conn a:1,b:2 --conn c:1,d:2
expect replay-budget 1 'budget' -- "$host" replay "$modules/infinite_loop.wasm" --budget 10000 --conn a:1,b:2
expect replay-precompiled 0 '"cluster":"egress2"' -- "$host" replay "$module" --engine precompiled --config standalone --conn 10.0.0.3:1,1.2.3.4:443
expect replay-precompiled-other-module 1 "not the one tcpsteer was built with" -- \
  "$host" replay "$modules/trap_on_connection.wasm" --engine precompiled --conn a:1,b:2
expect replay-bad-engine 2 "engine" -- "$host" replay "$module" --engine jit --conn a,b
expect demo 0 "10.244.0.11:40001 +outbound\|443\|\|egress2" -- bash "$demo" "$host" "$module"
echo "$((19 - failures)) passed, $failures failed"
[ "$failures" -eq 0 ]
