// Envoy's foreign functions as a network filter sees them. Only set_envoy_filter_state is
// registered here (the one tcp_proxy's cluster selection needs); every other name is NotFound, as
// in an Envoy without that extension.
#include "host/src/envoy_host.h"
#include "host/src/limits.h"
#include "tcpsteer/host/filter_state_arguments.h"

namespace tcpsteer::host {

using proxy_wasm::WasmResult;

bool isValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += n;
  }
  return true;
}

std::optional<FilterStateArguments> decodeFilterStateArguments(std::string_view bytes) {
  FilterStateArguments out;
  size_t pos = 0;
  auto varint = [&](uint64_t* value) {
    uint64_t result = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos >= bytes.size()) return false;
      auto b = static_cast<uint8_t>(bytes[pos++]);
      result |= static_cast<uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) {
        *value = result;
        return true;
      }
    }
    return false;
  };
  enum WireType : uint64_t { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };
  while (pos < bytes.size()) {
    uint64_t tag = 0;
    if (!varint(&tag) || (tag >> 3) == 0) return std::nullopt;
    uint64_t field = tag >> 3;
    switch (tag & 7) {
      case kVarint: {
        uint64_t ignored = 0;
        if (!varint(&ignored)) return std::nullopt;
        break;
      }
      case kLengthDelimited: {
        uint64_t length = 0;
        if (!varint(&length) || length > bytes.size() - pos) return std::nullopt;
        std::string_view data = bytes.substr(pos, length);
        pos += length;
        if (field == 1 || field == 2) {
          if (!isValidUtf8(data)) return std::nullopt;  // proto3 strings must be UTF-8
          (field == 1 ? out.path : out.value) = std::string(data);
        }
        break;
      }
      case kFixed64:
        if (bytes.size() - pos < 8) return std::nullopt;
        pos += 8;
        break;
      case kFixed32:
        if (bytes.size() - pos < 4) return std::nullopt;
        pos += 4;
        break;
      default:
        return std::nullopt;
    }
  }
  return out;
}

WasmResult EnvoyHost::callForeignFunction(std::string_view name, std::string_view arguments) {
  if (name != "set_envoy_filter_state") return WasmResult::kNotFound;
  if (arguments.size() > limits::kMaxFilterStateBytes) return limits::kHostLimitStatus;
  auto decoded = decodeFilterStateArguments(arguments);
  if (!decoded) return WasmResult::kBadArgument;
  Connection* connection = currentConnection();
  // No object factory for the key, or no stream info (a root context).
  if (options.filter_state_keys.count(decoded->path) == 0 || connection == nullptr)
    return WasmResult::kNotFound;
  connection->filter_state[decoded->path] = std::move(decoded->value);
  return WasmResult::kOk;
}

}  // namespace tcpsteer::host
