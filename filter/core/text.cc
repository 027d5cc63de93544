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

}  // namespace tcpsteer
