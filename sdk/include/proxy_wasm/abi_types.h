// The enums of proxy-wasm ABI 0.2.1, shared by the guest SDK (sdk/) and the host emulator (host/):
// one definition of every status, level and type that crosses the ABI, so neither side writes bare
// numbers. Header-only and free of imports, so native code can include it.
#pragma once

#include <cstdint>

namespace proxy_wasm {

enum class WasmResult : uint32_t {
  kOk = 0,
  kNotFound = 1,
  kBadArgument = 2,
  kSerializationFailure = 3,
  kParseFailure = 4,
  kBadExpression = 5,
  kInvalidMemoryAccess = 6,
  kEmpty = 7,
  kCasMismatch = 8,
  kResultMismatch = 9,
  kInternalFailure = 10,
  kBrokenConnection = 11,
  kUnimplemented = 12,
};

enum class LogLevel : uint32_t {
  kTrace = 0,
  kDebug = 1,
  kInfo = 2,
  kWarn = 3,
  kError = 4,
  kCritical = 5
};

enum class BufferType : uint32_t {
  kHttpRequestBody = 0,
  kHttpResponseBody = 1,
  kNetworkDownstreamData = 2,
  kNetworkUpstreamData = 3,
  kHttpCallResponseBody = 4,
  kGrpcReceiveBuffer = 5,
  kVmConfiguration = 6,
  kPluginConfiguration = 7,
  kCallData = 8,
};

enum class StreamType : uint32_t { kRequest = 0, kResponse = 1, kDownstream = 2, kUpstream = 3 };
enum class MetricType : uint32_t { kCounter = 0, kGauge = 1, kHistogram = 2 };
enum class PeerType : uint32_t { kUnknown = 0, kLocal = 1, kRemote = 2 };
// L4 callbacks: 0 = Continue, anything else = StopIteration (Pause).
enum class FilterStatus : uint32_t { kContinue = 0, kStopIteration = 1 };

// Highest valid value of each enum, for range checks on raw ABI words.
inline constexpr uint32_t kMaxLogLevel = static_cast<uint32_t>(LogLevel::kCritical);
inline constexpr uint32_t kMaxBufferType = static_cast<uint32_t>(BufferType::kCallData);
inline constexpr uint32_t kMaxStreamType = static_cast<uint32_t>(StreamType::kUpstream);
inline constexpr uint32_t kMaxMetricType = static_cast<uint32_t>(MetricType::kHistogram);
inline constexpr uint32_t kMaxHeaderMapType =
    7;  // request/response headers/trailers, gRPC, HTTP call

}  // namespace proxy_wasm
