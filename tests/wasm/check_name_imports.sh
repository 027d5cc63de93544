#!/usr/bin/env bash
# name_imports.py renames imported functions "module.field" in the name section and leaves the
# module's own function names and code alone (the module still validates and its code is unchanged).
set -euo pipefail
wat2wasm=$1
script=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat >"$work/m.wat" <<'WAT'
(module
  (import "env" "proxy_log" (func $proxy_log (param i32 i32 i32) (result i32)))
  (import "env" "proxy_get_log_level" (func $level (param i32) (result i32)))
  (memory 1)
  (func $own_function (export "f") (result i32) (call $level (i32.const 0))))
WAT
"$wat2wasm" --debug-names "$work/m.wat" -o "$work/m.wasm"
cp "$work/m.wasm" "$work/before.wasm"
python3 "$script" "$work/m.wasm"
wasm-validate "$work/m.wasm"
names=$(wasm-objdump -x "$work/m.wasm")
grep -q '<env.proxy_log> <- env.proxy_log' <<<"$names" || { echo "proxy_log not renamed"; echo "$names"; exit 1; }
grep -q '<env.proxy_get_log_level> <- env.proxy_get_log_level' <<<"$names" || { echo "level not renamed"; exit 1; }
grep -q '<own_function>' <<<"$names" || { echo "own function's name lost"; echo "$names"; exit 1; }
cmp <(wasm-objdump -d "$work/before.wasm" | sed 1,3d | sed 's/<[^>]*>//g') \
    <(wasm-objdump -d "$work/m.wasm" | sed 1,3d | sed 's/<[^>]*>//g') || { echo "code changed"; exit 1; }
# A truncated module or a directory: one line, a non-zero exit, and the file left as it was.
head -c 40 "$work/before.wasm" >"$work/cut.wasm"
cp "$work/cut.wasm" "$work/cut-before.wasm"
for bad in "$work/cut.wasm" "$work"; do
  if python3 "$script" "$bad" 2>"$work/err"; then echo "accepted $bad"; exit 1; fi
  [ "$(wc -l <"$work/err")" -eq 1 ] || { echo "not one line for $bad:"; cat "$work/err"; exit 1; }
done
cmp "$work/cut.wasm" "$work/cut-before.wasm" || { echo "truncated module rewritten"; exit 1; }
echo "name_imports: imports renamed, own names and code kept, bad input refused"
