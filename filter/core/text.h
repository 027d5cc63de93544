// Small text helpers shared by the core and the plugin glue.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

namespace tcpsteer {

// Writes the decimal digits of value ending just before `end`; returns where they start.
// Hand-written: std::to_chars brings a 200-byte digit table and kilobytes of code into the wasm
// module for what is a five-line loop. 32-bit: the interpreter divides i32 faster than i64.
char* writeDecimalBackwards(char* end, uint32_t value);

void appendDecimal(std::string& out, uint32_t value);

// The out-of-line steps of FixedText, one copy in the module whatever the buffer sizes: each
// writes into data[size, capacity) and returns the new size, cutting what does not fit.
size_t appendText(char* data, size_t size, size_t capacity, std::string_view text);
size_t appendDecimalText(char* data, size_t size, size_t capacity, uint32_t value);
// appendText, then every appended byte outside '!'..'~' becomes '?' (log lines carry untrusted
// text).
size_t appendPrintableText(char* data, size_t size, size_t capacity, std::string_view text);
// The same replacement in place.
void replaceUnprintable(char* data, size_t size);

// Text of at most N bytes in place: the per-connection path builds its cluster name, filter-state
// arguments and log line here instead of on the heap. Appends past N are cut (callers size N for
// their worst case; a cut log line is still a log line).
template <size_t N>
class FixedText {  // NOLINT(cppcoreguidelines-pro-type-member-init): data_ is read up to size_ only
 public:
  void append(std::string_view text) { size_ = appendText(data_, size_, N, text); }
  void push_back(char c) {
    if (size_ < N) data_[size_++] = c;
  }
  void appendDecimal(uint32_t value) { size_ = appendDecimalText(data_, size_, N, value); }
  void appendPrintable(std::string_view text) {
    size_ = appendPrintableText(data_, size_, N, text);
  }
  FixedText& operator+=(std::string_view text) {
    append(text);
    return *this;
  }
  FixedText& operator+=(char c) {
    push_back(c);
    return *this;
  }

  std::string_view view() const { return {data_, size_}; }
  size_t size() const { return size_; }
  static constexpr size_t capacity() { return N; }

 private:
  char data_[N];
  size_t size_ = 0;
};

// a and b, n bytes each, are equal: eight bytes at a time (the module's memcmp is wasi-libc's
// byte loop, about 20 wasm instructions a byte).
inline bool equalBytes(const char* a, const char* b, size_t n) {
  while (n >= 8) {
    uint64_t x = 0;
    uint64_t y = 0;
    __builtin_memcpy(&x, a, 8);
    __builtin_memcpy(&y, b, 8);
    if (x != y) return false;
    a += 8;
    b += 8;
    n -= 8;
  }
  uint64_t x = 0;
  uint64_t y = 0;
  __builtin_memcpy(&x, a, n);
  __builtin_memcpy(&y, b, n);
  return x == y;
}

// One out-of-line concatenation instead of a chain of operator+ temporaries at every call site.
std::string concat(std::initializer_list<std::string_view> parts);

}  // namespace tcpsteer
