// libFuzzer target: the decoder of set_envoy_filter_state's protobuf argument never crashes, and
// what it accepts re-encodes to a message it decodes the same way.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "tcpsteer/host/filter_state_arguments.h"

namespace {
void appendVarint(std::string& out, uint64_t value) {
  while (value >= 0x80) {
    out.push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using tcpsteer::host::decodeFilterStateArguments;
  auto decoded = decodeFilterStateArguments({reinterpret_cast<const char*>(data), size});
  if (!decoded) return 0;
  if (!tcpsteer::host::isValidUtf8(decoded->path) || !tcpsteer::host::isValidUtf8(decoded->value))
    std::abort();  // accepted a string protobuf would refuse
  std::string again;
  for (const auto& [field, text] : {std::pair{1, &decoded->path}, std::pair{2, &decoded->value}}) {
    appendVarint(again, (static_cast<uint64_t>(field) << 3) | 2);
    appendVarint(again, text->size());
    again += *text;
  }
  auto round = decodeFilterStateArguments(again);
  if (!round || round->path != decoded->path || round->value != decoded->value) std::abort();
  return 0;
}
