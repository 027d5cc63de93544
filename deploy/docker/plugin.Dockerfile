# syntax=docker/dockerfile:1
# tcpsteer.wasm as an OCI image for Istio's WasmPlugin (url: oci://REGISTRY/tcpsteer/plugin:TAG).
# Istio's "compat" image layout: one layer holding /plugin.wasm, nothing else.
# Build from the repository root:  docker build -f deploy/docker/plugin.Dockerfile -t tcpsteer/plugin:0.1.0 .
ARG DEBIAN_RELEASE=12.11

FROM debian:${DEBIAN_RELEASE} AS build
WORKDIR /src
COPY scripts/install-deps.sh scripts/install-deps.sh
RUN bash scripts/install-deps.sh && rm -rf /var/lib/apt/lists/*
COPY . .
RUN cmake -S . -B /build -G Ninja -DCMAKE_TOOLCHAIN_FILE=cmake/wasm32-wasi-clang19.cmake -DCMAKE_BUILD_TYPE=Release \
 && cmake --build /build \
 && cp /build/filter/tcpsteer.wasm /plugin.wasm

FROM scratch
COPY --from=build /plugin.wasm /plugin.wasm
