# syntax=docker/dockerfile:1
# egress-server: one image, run as egress1 and egress2 (--name).
# Build from the repository root:  docker build -f deploy/docker/egress-server.Dockerfile -t tcpsteer/egress-server:0.1.0 .
# The base image is pinned to a Debian point release (the one the project is tested on); pin it to a
# digest in your own registry for byte-for-byte reproducible builds.
ARG DEBIAN_RELEASE=12.11

FROM debian:${DEBIAN_RELEASE} AS build
WORKDIR /src
# The same package list as a developer machine and CI; a layer of its own, so code edits keep it cached.
COPY scripts/install-deps.sh scripts/install-deps.sh
RUN bash scripts/install-deps.sh && rm -rf /var/lib/apt/lists/*
COPY . .
RUN cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_C_COMPILER=clang-19 -DCMAKE_CXX_COMPILER=clang++-19 -DTCPSTEER_FUZZ=OFF \
 && cmake --build /build --target egress-server \
 && install -D -m 0755 /build/apps/egress-server /out/usr/local/bin/egress-server

FROM debian:${DEBIAN_RELEASE}-slim
# Runtime libraries only: OpenSSL (TLS) and the C++ runtime; ca-certificates for real HTTPS targets.
RUN apt-get update -q \
 && apt-get install -y -q --no-install-recommends libssl3 libstdc++6 ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/ /
# A numeric non-root user, so Kubernetes' runAsNonRoot can verify it without /etc/passwd.
USER 65532:65532
EXPOSE 8080 8443
ENTRYPOINT ["/usr/local/bin/egress-server"]
