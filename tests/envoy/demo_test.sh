#!/usr/bin/env bash
# make demo's own script on ports the OS gives (DEMO_PORTS): every row follows the rule, in real
# Envoy, and the gateway scenario's rows show each source leaving through its gateway's address
# and the name not on the allow-list refused by the gateway.
set -uo pipefail
build=$1  # build/native
root=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source-path=SCRIPTDIR source=../lib/harness.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"

# Twelve ports free now (bound to port 0 together, then released for the demo's processes).
ports=$(python3 -c '
import socket
held = [socket.socket() for _ in range(12)]
for s in held: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in held))')
DEMO_PORTS=$ports BUILD_DIR=$build bash "$root/scripts/demo.sh" >"$work/demo.out" 2>&1
code=$?
[ $code -eq 0 ] && grep -q "every connection went where the filter's rule says" "$work/demo.out"; check demo-exits-0 $?
grep -q "^== Envoy 1\.[0-9]*\.[0-9]* (" "$work/demo.out"; check demo-prints-envoy-version $?
rows=$(grep -cE '^127\.0\.0\.1[01] +(http|https|raw) +egress[12] +egress[12] +ok$' "$work/demo.out")
[ "$rows" -eq 6 ]; check demo-direct-six-rows $?
grep -Eq '^127\.0\.0\.10 +egress_gateway1 +1 +127\.0\.0\.21 +ok$' "$work/demo.out" &&
  grep -Eq '^127\.0\.0\.11 +egress_gateway2 +2 +127\.0\.0\.22 +ok$' "$work/demo.out"
check demo-gateways-leave-from-their-addresses $?
grep -q 'ok: other.tcpsteer.example refused (gateway flag NR' "$work/demo.out"; check demo-gateway-refuses-other-name $?
grep -q '^  tcpsteer_routed_egress1{} 3$' "$work/demo.out" && grep -q '^  tcpsteer_routed_egress2{} 3$' "$work/demo.out"
check demo-counters-from-envoy-stats $?
[ "$failures" -eq 0 ] || cat "$work/demo.out"

# DEMO_PORTS is checked before anything starts: a bad value is one line and exit 2.
for bad in "1 2 3" "$ports 9" "${ports% *} 70000" "${ports% *} 8x"; do
  out=$(DEMO_PORTS=$bad BUILD_DIR=$build bash "$root/scripts/demo.sh" 2>&1); code=$?
  [ $code -eq 2 ] && [ "$(wc -l <<<"$out")" -eq 2 ] && grep -q "^demo: DEMO_PORTS " <<<"$out"
  check "demo-ports-refused: ${bad##* }" $?
done
finish demo
