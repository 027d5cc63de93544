// The argument of Envoy's foreign function set_envoy_filter_state: the protobuf message
// envoy.source.extensions.common.wasm.SetEnvoyFilterStateArguments (path = 1, value = 2, span = 3).
// Public so a fuzzer and tests can reach the decoder the host uses.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace tcpsteer::host {

struct FilterStateArguments {
  std::string path;
  std::string value;
};

// Decodes as protobuf does: unknown fields skipped, the last occurrence of a field wins, strings
// must be UTF-8. nullopt for malformed bytes (Envoy answers BadArgument).
std::optional<FilterStateArguments> decodeFilterStateArguments(std::string_view bytes);

bool isValidUtf8(std::string_view text);

}  // namespace tcpsteer::host
