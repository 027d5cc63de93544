// Strict numbers for CLI11 options. CLI11 converts integers with strtoull/strtoll base 0, so on its
// own "-1" wraps to 2^64-1 for an unsigned option, an overflow saturates, and "010" is octal. This
// validator runs on the text first and accepts only plain decimal within [min, max].
#pragma once

#include <CLI/CLI.hpp>
#include <charconv>
#include <cstdint>
#include <string>

namespace tcpsteer::cli {

inline CLI::Validator decimalRange(uint64_t min, uint64_t max) {
  std::string description = "decimal in [" + std::to_string(min) + ", " + std::to_string(max) + "]";
  return CLI::Validator(
      [min, max](std::string& text) -> std::string {
        uint64_t value = 0;
        const char* end = text.data() + text.size();
        auto [ptr, ec] = std::from_chars(text.data(), end, value);
        bool plain = !text.empty() && (text.size() == 1 || text[0] != '0');
        if (!plain || ec != std::errc() || ptr != end || value < min || value > max) {
          return "'" + text + "' is not a whole number from " + std::to_string(min) + " to " +
                 std::to_string(max);
        }
        return {};
      },
      description);
}

}  // namespace tcpsteer::cli
