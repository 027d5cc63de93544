# syntax=docker/dockerfile:1
# tcpsteer.wasm as an OCI image for Istio's WasmPlugin (url: oci://REGISTRY/tcpsteer/plugin:TAG).
# Istio's "compat" image layout: one layer holding /plugin.wasm, nothing else.
# Build from the repository root, as one manifest (no attestations, so no image index) whose digest
# only depends on the module:
#   docker build --provenance=false --sbom=false --build-arg SOURCE_DATE_EPOCH=$(git log -1 --format=%ct) \
#     -f deploy/docker/plugin.Dockerfile -t tcpsteer/plugin:0.1.0 .
# The module alone, for hosts that cannot build it natively (writes build/wasm/filter/tcpsteer.wasm):
#   docker build -f deploy/docker/plugin.Dockerfile --target module --output build/wasm/filter .
ARG DEBIAN_RELEASE=12.11

FROM debian:${DEBIAN_RELEASE} AS build
# The file's timestamp goes into the layer: a fixed one (BuildKit also uses this argument for the
# image's own timestamps) keeps the digest, which WasmPlugin pins in sha256, the same per module.
ARG SOURCE_DATE_EPOCH=0
WORKDIR /src
COPY scripts/install-deps.sh scripts/install-deps.sh
RUN bash scripts/install-deps.sh && rm -rf /var/lib/apt/lists/*
COPY . .
RUN cmake -S . -B /build -G Ninja -DCMAKE_TOOLCHAIN_FILE=cmake/wasm32-wasi-clang19.cmake -DCMAKE_BUILD_TYPE=Release \
 && cmake --build /build \
 && cp /build/filter/tcpsteer.wasm /plugin.wasm \
 && chmod 0444 /plugin.wasm \
 && touch -d "@${SOURCE_DATE_EPOCH}" /plugin.wasm

FROM scratch AS module
COPY --from=build /plugin.wasm /tcpsteer.wasm

FROM scratch
COPY --from=build /plugin.wasm /plugin.wasm
