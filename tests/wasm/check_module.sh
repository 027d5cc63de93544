#!/usr/bin/env bash
# The built module as Envoy would load it, through `tcpsteer-host check` (whose import table is tested
# against Envoy's list in HostLoad.ImportTableMatchesEnvoyList): wasm-validate accepts it, Envoy would
# load it, it imports no WASI function (the project's aim: it loads on every Envoy >= 1.28 without
# start-up allow-lists), and its stripped size is within the budget.
# usage: check_module.sh TCPSTEER_HOST MODULE MAX_BYTES
set -uo pipefail
host=$1
module=$2
max_bytes=$3
# shellcheck source-path=SCRIPTDIR source=../lib/harness.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"

wasm-validate "$module"; check wasm-validate $?
report=$("$host" check "$module" --json); code=$?
[ $code -eq 0 ] && jq -e '.loads_in_envoy and (.problems | length == 0) and .abi_version == "0_2_1"' <<<"$report" >/dev/null
check loads-in-envoy $?
jq -r '.problems[] | "  Envoy: " + .' <<<"$report"
wasi=$(jq -r '.imports[] | select(startswith("wasi"))' <<<"$report")
[ -z "$wasi" ]; check no-wasi-imports $?
[ -n "$wasi" ] && echo "  WASI imports: $wasi"
jq -e '[.exports[] | split(" ")[0]] | (index("malloc") and index("_initialize") and index("memory"))' <<<"$report" >/dev/null
check exports-malloc-initialize-memory $?
cp "$module" "$work/stripped.wasm" && wasm-strip "$work/stripped.wasm"
size=$(stat -c %s "$work/stripped.wasm")
echo "  stripped size: $size bytes (budget $max_bytes)"
[ "$size" -le "$max_bytes" ]; check size-within-budget $?

finish check_module
