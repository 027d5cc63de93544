// Wire encoding of Envoy's SetEnvoyFilterStateArguments (envoy.source.extensions.common.wasm):
//   string path = 1; string value = 2; LifeSpan span = 3;
// Hand-encoded: linking protobuf into the wasm module would cost far more than these few bytes of
// code.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "filter/core/config.h"
#include "filter/core/text.h"

namespace tcpsteer {

inline constexpr std::string_view kSetEnvoyFilterState = "set_envoy_filter_state";
inline constexpr std::string_view kTcpProxyClusterKey = "envoy.tcp_proxy.cluster";

enum class LifeSpan : uint8_t {
  kFilterChain = 0,
  kDownstreamRequest = 1,
  kDownstreamConnection = 2
};

// The encoded arguments for one cluster name: path, value (a name of at most kMaxClusterName bytes
// takes a two-byte length) and a span field, in place.
using FilterStateArguments = FixedText<kTcpProxyClusterKey.size() + kMaxClusterName + 8>;

// proto3 omits span when it is FilterChain (0), exactly as protoc --encode does.
std::string encodeSetEnvoyFilterStateArguments(std::string_view path, std::string_view value,
                                               LifeSpan span = LifeSpan::kFilterChain);

// The per-connection form: envoy.tcp_proxy.cluster = cluster, span FilterChain, no heap.
void encodeTcpProxyCluster(std::string_view cluster, FilterStateArguments& out);

void appendVarint(std::string& out, uint64_t value);

}  // namespace tcpsteer
