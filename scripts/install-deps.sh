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
  # host emulator, proxy and apps
  libboost1.81-dev libssl-dev libcli11-dev libyaml-cpp-dev nlohmann-json3-dev
  # end-to-end tools, lint, manifest checks
  curl openssl jq socat wrk iproute2 procps valgrind
  clang-format-19 clang-tidy-19 shellcheck yamllint python3 python3-jsonschema python3-yaml
)

missing=()
for pkg in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$pkg")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages already installed"
  exit 0
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
"${sudo_cmd[@]}" apt-get update -q
"${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "install-deps: done"
