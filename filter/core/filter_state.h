// Wire encoding of Envoy's SetEnvoyFilterStateArguments (envoy.source.extensions.common.wasm):
//   string path = 1; string value = 2; LifeSpan span = 3;
// Hand-encoded: linking protobuf into the wasm module would cost far more than these few bytes of
// code.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace tcpsteer {

inline constexpr std::string_view kSetEnvoyFilterState = "set_envoy_filter_state";
inline constexpr std::string_view kTcpProxyClusterKey = "envoy.tcp_proxy.cluster";

enum class LifeSpan : uint8_t {
  kFilterChain = 0,
  kDownstreamRequest = 1,
  kDownstreamConnection = 2
};

// proto3 omits span when it is FilterChain (0), exactly as protoc --encode does.
std::string encodeSetEnvoyFilterStateArguments(std::string_view path, std::string_view value,
                                               LifeSpan span = LifeSpan::kFilterChain);

void appendVarint(std::string& out, uint64_t value);

}  // namespace tcpsteer
