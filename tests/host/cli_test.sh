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

# Hostile modules and inputs (issue #10): nothing crashes, hangs or reads without bound.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf '\0asm\1\0\0\0\x0c\x05\xff\xff\xff\xff\x0f' >"$work/datacount.wasm"
expect check-huge-datacount 1 "4294967295 data segments .*at most 100000" -- "$host" check "$work/datacount.wasm"
expect replay-start-loops-forever 1 "start function: instruction budget of 100000 exhausted" -- \
  timeout 20 "$host" replay "$modules/start_loops_forever.wasm" --budget 100000 --conn a:1,b:2
expect check-start-traps 1 "instantiation failed: start function" -- "$host" check "$modules/start_traps.wasm"
expect check-data-out-of-bounds 1 "instantiation failed" -- "$host" check --json "$modules/data_out_of_bounds.wasm"
expect check-says-instantiated 0 '"instantiated":true' -- "$host" check --json "$module"
expect replay-metric-not-utf8 0 $'"name":"bad\xef\xbf\xbd\xef\xbf\xbdname"' -- \
  "$host" replay "$modules/metric_name_not_utf8.wasm" --conn a:1,b:2
expect replay-root-id-not-utf8 0 $'"root_id":"\xef\xbf\xbd"' -- "$host" replay "$module" --root-id $'\xff' --conn 10.0.0.2:1,1.2.3.4:443
expect replay-budget-max 0 '"event":"connection"' -- "$host" replay "$module" --budget 18446744073709551615 --conn 10.0.0.2:1,1.2.3.4:443
expect replay-budget-negative 2 "not a whole number" -- "$host" replay "$module" --budget -1 --conn a,b
expect replay-budget-overflow 2 "not a whole number" -- "$host" replay "$module" --budget 18446744073709551616 --conn a,b
expect replay-budget-octal 2 "not a whole number" -- "$host" replay "$module" --budget 010 --conn a,b
expect check-directory 2 "cannot read /tmp: is a directory" -- "$host" check /tmp
expect check-device 2 "cannot read /dev/zero: not a regular file" -- "$host" check /dev/zero
truncate -s 65M "$work/huge.wasm"
expect check-too-large 2 "larger than the limit of 67108864 bytes" -- "$host" check "$work/huge.wasm"
expect replay-config-directory 2 "cannot read /tmp: is a directory" -- "$host" replay "$module" --config @/tmp --conn a,b
expect replay-ipv6-conn 0 '"destination":"\[::1\]".*"source":"\[fd00::3\]:1"' -- \
  "$host" replay "$module" --conn '[fd00::3]:1,[::1]'
# Everything printed before a failure is there, line by line (flushed as it happens).
out=$("$host" replay "$modules/trap_on_connection.wasm" --conn a:1,b:2 --conn c:1,d:2 | head -c 100000)
lines=$(grep -c '"event"' <<<"$out")
if [ "$lines" -ge 4 ]; then echo "ok   replay-output-flushed"; else echo "FAIL replay-output-flushed: $out"; failures=$((failures + 1)); fi
echo "$((40 - failures)) passed, $failures failed"
[ "$failures" -eq 0 ]
