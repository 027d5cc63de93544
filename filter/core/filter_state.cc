#include "filter/core/filter_state.h"

namespace tcpsteer {

void appendVarint(std::string& out, uint64_t value) {
  while (value >= 0x80) {
    out.push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
}

std::string encodeSetEnvoyFilterStateArguments(std::string_view path, std::string_view value,
                                               LifeSpan span) {
  std::string out;
  out.reserve(path.size() + value.size() + 8);
  auto append_bytes_field = [&out](uint8_t tag, std::string_view bytes) {
    if (bytes.empty()) return;  // proto3 default
    out.push_back(static_cast<char>(tag));
    appendVarint(out, bytes.size());
    out.append(bytes);
  };
  append_bytes_field(0x0A, path);   // field 1, wire type 2
  append_bytes_field(0x12, value);  // field 2, wire type 2
  if (span != LifeSpan::kFilterChain) {
    out.push_back(0x18);  // field 3, wire type 0
    appendVarint(out, static_cast<uint64_t>(span));
  }
  return out;
}

}  // namespace tcpsteer
