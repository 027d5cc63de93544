#include "apps/egress-server/json_text.h"

#include <array>
#include <charconv>
#include <cstdint>
#include <cstring>

namespace tcpsteer::apps {
namespace {

constexpr uint64_t kOnes = 0x0101010101010101ULL;
constexpr uint64_t kHighBits = 0x8080808080808080ULL;

// Whether any of the word's eight bytes needs an escape: below 0x20, 0x80 or above, '"' or '\'.
// Each test is exact about whether some byte matches (it may mark wrong bytes above a match,
// which does not matter here: a marked word is then walked byte by byte).
bool wordNeedsEscape(uint64_t word) {
  auto has_zero = [](uint64_t v) { return (v - kOnes) & ~v & kHighBits; };
  uint64_t below_space = (word - kOnes * 0x20) & ~word & kHighBits;
  uint64_t high = word & kHighBits;
  return (below_space | high | has_zero(word ^ (kOnes * '"')) | has_zero(word ^ (kOnes * '\\'))) !=
         0;
}

bool byteNeedsEscape(unsigned char byte) {
  return byte < 0x20 || byte >= 0x80 || byte == '"' || byte == '\\';
}

}  // namespace

void appendJsonString(std::string& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  size_t plain = 0;  // start of the run of bytes that need no escape
  size_t i = 0;
  while (i < text.size()) {
    // Eight plain bytes at a time: most of what is logged (addresses, methods, paths) has no byte
    // to escape.
    if (text.size() - i >= 8) {
      uint64_t word = 0;
      std::memcpy(&word, text.data() + i, sizeof(word));
      if (!wordNeedsEscape(word)) {
        i += 8;
        continue;
      }
    }
    auto byte = static_cast<unsigned char>(text[i]);
    if (!byteNeedsEscape(byte)) {
      ++i;
      continue;
    }
    out.append(text.data() + plain, i - plain);  // runs are appended whole, not byte by byte
    plain = i + 1;
    if (byte == '"' || byte == '\\') {
      const char escaped[2] = {'\\', static_cast<char>(byte)};
      out.append(escaped, sizeof(escaped));
    } else {
      const char escaped[6] = {'\\', 'u', '0', '0', kHex[byte >> 4], kHex[byte & 0xf]};
      out.append(escaped, sizeof(escaped));
    }
    ++i;
  }
  out.append(text.data() + plain, text.size() - plain);
  out += '"';
}

void appendDecimal(std::string& out, uint64_t value) {
  std::array<char, 20> digits{};  // 2^64 - 1 has 20
  auto end = std::to_chars(digits.data(), digits.data() + digits.size(), value).ptr;
  out.append(digits.data(), end);
}

}  // namespace tcpsteer::apps
