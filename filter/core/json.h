// A strict, bounded JSON reader for the plugin configuration.
//
// Hand-written on purpose: it is compiled into the wasm module, which must stay small, import no
// WASI function and never trap. Debian's RapidJSON 1.1 does not compile with clang-19,
// nlohmann-json needs exceptions (without them a parse error aborts = traps the VM) and is large,
// and jsmn accepts malformed documents ({"a" "b"}, [1 2], trailing commas) that would let typos
// through. Tests cross-check this reader against nlohmann-json on every fuzz input.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tcpsteer::json {

struct Member;

struct Value {
  enum class Type : uint8_t { kNull, kBool, kNumber, kString, kArray, kObject };

  Value();
  ~Value();  // out of line: a recursive destructor inlined at every parser exit costs kilobytes
  Value(Value&&) noexcept;
  Value& operator=(Value&&) noexcept;
  Value(const Value&) = delete;
  Value& operator=(const Value&) = delete;

  Type type = Type::kNull;
  bool boolean = false;
  std::string text;             // decoded string, or the number as written
  std::vector<Value> items;     // kArray
  std::vector<Member> members;  // kObject, in document order

  // Integral numbers only ("8080", "-1"); fractions, exponents and out-of-range values give
  // nullopt.
  std::optional<int64_t> asInteger() const;
  const Value* find(std::string_view key) const;
};

struct Member {
  std::string key;
  Value value;
};

struct ParseError {
  size_t offset = 0;
  std::string message;
  bool limit = false;  // the text may be valid JSON, but it is beyond one of the limits below
};

inline constexpr size_t kMaxDepth = 32;  // the messages in json.cc name both limits
// Bounds the duplicate-key check (quadratic) so a hostile document cannot stall a worker.
inline constexpr size_t kMaxMembers = 1024;

// Parses exactly one JSON value (RFC 8259) surrounded by optional whitespace. Rejects invalid
// UTF-8, lone surrogates, control characters in strings, duplicate object keys and nesting deeper
// than kMaxDepth.
std::optional<Value> parse(std::string_view text, ParseError* error);

const char* typeName(Value::Type type);

}  // namespace tcpsteer::json
