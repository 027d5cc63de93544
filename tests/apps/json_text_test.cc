// appendJsonString: every byte value at every position of strings long enough for its eight-byte
// steps and their tails, against the JSON reading (nlohmann-json) and the escape rule.
// appendDecimal: against std::to_string at every power of ten and its neighbours.
#include "apps/egress-server/json_text.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace tcpsteer::apps {
namespace {

// The text each byte stands for: itself below 0x80, its Latin-1 code point in UTF-8 above.
std::string latin1ToUtf8(const std::string& bytes) {
  std::string out;
  for (char c : bytes) {
    auto byte = static_cast<unsigned char>(c);
    if (byte < 0x80) {
      out += c;
    } else {
      out += static_cast<char>(0xc0 | (byte >> 6));
      out += static_cast<char>(0x80 | (byte & 0x3f));
    }
  }
  return out;
}

size_t escapedSize(unsigned char byte) {
  if (byte == '"' || byte == '\\') return 2;
  if (byte < 0x20 || byte >= 0x80) return 6;
  return 1;
}

TEST(AppendJsonString, EveryByteAtEveryPosition) {
  for (size_t size = 1; size <= 19; ++size) {
    for (size_t position = 0; position < size; ++position) {
      for (int value = 0; value < 256; ++value) {
        std::string text(size, 'a');
        text[position] = static_cast<char>(value);
        std::string out = "prefix";
        appendJsonString(out, text);
        ASSERT_EQ(out.substr(0, 6), "prefix");
        std::string literal = out.substr(6);
        auto parsed = nlohmann::json::parse(literal);
        ASSERT_EQ(parsed.get<std::string>(), latin1ToUtf8(text))
            << "byte " << value << " at " << position << " of " << size;
        // Plain bytes are copied, not escaped: only the one byte may grow.
        ASSERT_EQ(literal.size(), size + 1 + escapedSize(static_cast<unsigned char>(value)))
            << literal;
      }
    }
  }
}

TEST(AppendJsonString, RunsOfBytesToEscapeAndEmptyText) {
  std::string out;
  appendJsonString(out, "");
  EXPECT_EQ(out, "\"\"");
  out.clear();
  appendJsonString(out, std::string("\"\\\x01\x7f\x80\xff\"\"12345678\t", 17));
  EXPECT_EQ(out, R"("\"\\\u0001)"
                 "\x7f"
                 R"(\u0080\u00ff\"\"12345678\u0009")");
}

TEST(AppendDecimal, MatchesToStringAtEveryLength) {
  std::vector<uint64_t> values = {0, UINT64_MAX, UINT64_MAX - 1};
  for (uint64_t power = 1; power <= UINT64_MAX / 10; power *= 10) {
    values.insert(values.end(), {power - 1, power, power + 1, power * 10 - 1});
  }
  for (uint64_t value : values) {
    std::string out = "x";
    appendDecimal(out, value);
    EXPECT_EQ(out, "x" + std::to_string(value));
  }
}

}  // namespace
}  // namespace tcpsteer::apps
