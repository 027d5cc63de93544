#include "filter/core/text.h"

namespace tcpsteer {

char* writeDecimalBackwards(char* end, uint32_t value) {
  do {
    *--end = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value != 0);
  return end;
}

void appendDecimal(std::string& out, uint32_t value) {
  char digits[10];
  char* end = digits + sizeof(digits);
  char* first = writeDecimalBackwards(end, value);
  out.append(first, static_cast<size_t>(end - first));
}

size_t appendText(char* data, size_t size, size_t capacity, std::string_view text) {
  size_t n = text.size() < capacity - size ? text.size() : capacity - size;
  __builtin_memcpy(data + size, text.data(), n);
  return size + n;
}

size_t appendDecimalText(char* data, size_t size, size_t capacity, uint32_t value) {
  char digits[10];
  char* end = digits + sizeof(digits);
  char* first = writeDecimalBackwards(end, value);
  return appendText(data, size, capacity, {first, static_cast<size_t>(end - first)});
}

namespace {

bool isPrintable(char c) {
  return static_cast<unsigned char>(c) - unsigned{'!'} <= unsigned{'~' - '!'};
}

// True if any byte of the word is below '!' or above '~' (the classic has-less / has-more bit
// tricks): one test per eight bytes, as a clean address is the usual text.
bool hasUnprintable(uint64_t word) {
  constexpr uint64_t kOnes = 0x0101010101010101;
  constexpr uint64_t kHighBits = 0x8080808080808080;
  uint64_t below = (word - kOnes * '!') & ~word;
  uint64_t above = (word + kOnes * (127 - '~')) | word;
  return ((below | above) & kHighBits) != 0;
}

}  // namespace

void replaceUnprintable(char* data, size_t size) {
  char* end = data + size;
  char* p = data;
  for (; end - p >= 8; p += 8) {
    uint64_t word = 0;
    __builtin_memcpy(&word, p, sizeof(word));
    if (!hasUnprintable(word)) continue;
    for (char* q = p; q < p + 8; ++q) *q = isPrintable(*q) ? *q : '?';
  }
  for (; p < end; ++p) *p = isPrintable(*p) ? *p : '?';
}

size_t appendPrintableText(char* data, size_t size, size_t capacity, std::string_view text) {
  size_t end = appendText(data, size, capacity, text);
  replaceUnprintable(data + size, end - size);
  return end;
}

}  // namespace tcpsteer
