#include "filter/core/text.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

namespace tcpsteer {
namespace {

std::string byByte(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = c > ' ' && c < 0x7f ? c : '?';
  return out;
}

// The word-at-a-time check must agree with a byte test for every byte value at every position of
// a word and of the tail after the last whole word.
TEST(ReplaceUnprintable, MatchesAByteTestForEveryByteAtEveryPosition) {
  for (size_t size : {1u, 7u, 8u, 9u, 17u, 23u}) {
    for (size_t position = 0; position < size; ++position) {
      for (int byte = 0; byte < 256; ++byte) {
        std::string text(size, 'a');
        text[position] = static_cast<char>(byte);
        std::string replaced = text;
        replaceUnprintable(replaced.data(), replaced.size());
        ASSERT_EQ(replaced, byByte(text))
            << "size " << size << " byte " << byte << " at " << position;
      }
    }
  }
}

TEST(FixedText, AppendPrintableCutsAtCapacityAndReplaces) {
  FixedText<12> line;
  line += "ab";
  line.appendPrintable(
      std::string_view("c\td\x7f"
                       "efghijklmn",
                       14));
  EXPECT_EQ(line.view(), "abc?d?efghij");
}

}  // namespace
}  // namespace tcpsteer
