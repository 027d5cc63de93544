#!/usr/bin/env bash
# scripts/envoy.sh: the pinned Envoy is found and described; ENVOY overrides it; a missing file, a
# binary that is not Envoy, and one without the V8 runtime are each one line naming the fix, exit 1.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
locator=$root/scripts/envoy.sh
# shellcheck source-path=SCRIPTDIR source=../lib/harness.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"

pinned=$(bash "$locator"); code=$?
[ $code -eq 0 ] && [ -x "$pinned" ]; check pinned-envoy-found $?
described=$(bash "$locator" --describe)
grep -Eq "^Envoy $(cat "$root/scripts/envoy-version") \([0-9a-f]{12}\) at $pinned$" <<<"$described"
check describe-names-version-and-commit $?
[ "$(ENVOY=$pinned bash "$locator")" = "$pinned" ]; check envoy-variable-overrides $?

refused() {  # refused NAME ENVOY_VALUE EXPECTED_FRAGMENT
  local out code
  out=$(ENVOY=$2 bash "$locator" 2>&1 >/dev/null); code=$?
  [ $code -eq 1 ] && [ "$(wc -l <<<"$out")" -eq 1 ] && grep -qF "$3" <<<"$out"
  check "$1" $?
  [ $code -eq 1 ] || echo "     got ($code): $out"
}
refused missing-binary "$work/nowhere/envoy" "is not an executable file"
refused not-envoy /bin/true "is not Envoy"
# An "Envoy" whose version line is right but that carries no V8 runtime.
printf '#!/bin/sh\necho "envoy  version: %s/1.40.0/Clean/RELEASE/BoringSSL"\n' \
  "0123456789abcdef0123456789abcdef01234567" >"$work/envoy-without-v8"
chmod +x "$work/envoy-without-v8"
refused no-v8-runtime "$work/envoy-without-v8" "has no V8 wasm runtime"
# A checkout where make deps has not run: no .venv/envoy.
mkdir -p "$work/checkout/scripts"
cp "$locator" "$root/scripts/envoy-version" "$work/checkout/scripts/"
out=$(env -u ENVOY bash "$work/checkout/scripts/envoy.sh" 2>&1 >/dev/null); code=$?
[ $code -eq 1 ] && grep -qF "Envoy is not installed: run 'make deps'" <<<"$out"; check not-installed-names-make-deps $?
finish envoy_locator
