// Small text helpers shared by the core and the plugin glue.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

namespace tcpsteer {

// Appends the decimal digits of value. Hand-written: std::to_chars brings a 200-byte digit table
// and kilobytes of code into the wasm module for what is a five-line loop.
inline void appendDecimal(std::string& out, uint64_t value) {
  char digits[20];
  size_t first = sizeof(digits);
  do {
    digits[--first] = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value != 0);
  out.append(digits + first, sizeof(digits) - first);
}

// One out-of-line concatenation instead of a chain of operator+ temporaries at every call site.
std::string concat(std::initializer_list<std::string_view> parts);

}  // namespace tcpsteer
