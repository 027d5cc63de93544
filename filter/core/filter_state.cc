#include "filter/core/filter_state.h"

namespace tcpsteer {
namespace {

template <typename Out>
void putVarint(Out& out, uint64_t value) {
  while (value >= 0x80) {
    out.push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
}

template <typename Out>
void putBytesField(Out& out, uint8_t tag, std::string_view bytes) {
  if (bytes.empty()) return;  // proto3 default
  out.push_back(static_cast<char>(tag));
  putVarint(out, bytes.size());
  out.append(bytes);
}

constexpr uint8_t kPathTag = 0x0A;   // field 1, wire type 2
constexpr uint8_t kValueTag = 0x12;  // field 2, wire type 2
constexpr uint8_t kSpanTag = 0x18;   // field 3, wire type 0

// The path field of every tcp_proxy cluster argument, encoded once at compile time.
constexpr auto kClusterPathField = [] {
  struct {
    char bytes[2 + kTcpProxyClusterKey.size()];
  } field{};
  field.bytes[0] = static_cast<char>(kPathTag);
  field.bytes[1] = static_cast<char>(kTcpProxyClusterKey.size());
  for (size_t i = 0; i < kTcpProxyClusterKey.size(); ++i)
    field.bytes[2 + i] = kTcpProxyClusterKey[i];
  return field;
}();
static_assert(kTcpProxyClusterKey.size() < 0x80, "a one-byte length");

}  // namespace

void appendVarint(std::string& out, uint64_t value) {
  putVarint(out, value);
}

std::string encodeSetEnvoyFilterStateArguments(std::string_view path, std::string_view value,
                                               LifeSpan span) {
  std::string out;
  out.reserve(path.size() + value.size() + 8);
  putBytesField(out, kPathTag, path);
  putBytesField(out, kValueTag, value);
  if (span != LifeSpan::kFilterChain) {
    out.push_back(static_cast<char>(kSpanTag));
    putVarint(out, static_cast<uint64_t>(span));
  }
  return out;
}

void encodeTcpProxyCluster(std::string_view cluster, FilterStateArguments& out) {
  out.append({kClusterPathField.bytes, sizeof(kClusterPathField.bytes)});
  putBytesField(out, kValueTag, cluster);
}

}  // namespace tcpsteer
