#include "filter/core/json.h"

namespace tcpsteer::json {
namespace {

class Parser {
 public:
  Parser(std::string_view text, ParseError* error) : text_(text), error_(error) {}

  std::optional<Value> parseDocument() {
    Value value;
    skipWhitespace();
    if (!parseValue(value, 0)) return std::nullopt;
    skipWhitespace();
    if (pos_ != text_.size()) return fail("unexpected text after the JSON value");
    return value;
  }

 private:
  std::nullopt_t fail(const char* message) {
    if (error_ != nullptr && !failed_) {
      error_->offset = pos_;
      error_->message = message;
    }
    failed_ = true;
    return std::nullopt;
  }

  bool failBool(const char* message) {
    fail(message);
    return false;
  }

  // Valid JSON beyond one of the reader's limits (kMaxDepth, kMaxMembers): said as such.
  bool failLimit(const char* message) {
    if (error_ != nullptr && !failed_) error_->limit = true;
    return failBool(message);
  }

  void skipWhitespace() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' ||
                                   text_[pos_] == '\n' || text_[pos_] == '\r')) {
      ++pos_;
    }
  }

  bool consume(char c) {
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }

  bool consumeWord(std::string_view word) {
    if (text_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }

  bool parseValue(Value& out, size_t depth) {
    if (depth >= kMaxDepth) return failLimit("nesting deeper than 32 levels");
    if (pos_ >= text_.size()) return failBool("unexpected end of input, expected a value");
    char c = text_[pos_];
    switch (c) {
      case '{':
        return parseObject(out, depth);
      case '[':
        return parseArray(out, depth);
      case '"':
        out.type = Value::Type::kString;
        return parseString(out.text);
      case 't':
      case 'f':
        out.type = Value::Type::kBool;
        out.boolean = c == 't';
        if (consumeWord(c == 't' ? "true" : "false")) return true;
        return failBool("invalid literal");
      case 'n':
        out.type = Value::Type::kNull;
        if (consumeWord("null")) return true;
        return failBool("invalid literal");
      default:
        if (c == '-' || (c >= '0' && c <= '9')) return parseNumber(out);
        return failBool("unexpected character, expected a value");
    }
  }

  bool parseObject(Value& out, size_t depth) {
    out.type = Value::Type::kObject;
    ++pos_;  // '{'
    skipWhitespace();
    if (consume('}')) return true;
    while (true) {
      skipWhitespace();
      if (pos_ >= text_.size() || text_[pos_] != '"') return failBool("expected a string key");
      Member member;
      if (!parseString(member.key)) return false;
      if (out.members.size() >= kMaxMembers)
        return failLimit("more than 1024 members in one object");
      if (out.find(member.key) != nullptr) return failBool("duplicate key");
      skipWhitespace();
      if (!consume(':')) return failBool("expected ':' after key");
      skipWhitespace();
      if (!parseValue(member.value, depth + 1)) return false;
      out.members.push_back(std::move(member));
      skipWhitespace();
      if (consume('}')) return true;
      if (!consume(',')) return failBool("expected ',' or '}' in object");
    }
  }

  bool parseArray(Value& out, size_t depth) {
    out.type = Value::Type::kArray;
    ++pos_;  // '['
    skipWhitespace();
    if (consume(']')) return true;
    while (true) {
      skipWhitespace();
      Value item;
      if (!parseValue(item, depth + 1)) return false;
      out.items.push_back(std::move(item));
      skipWhitespace();
      if (consume(']')) return true;
      if (!consume(',')) return failBool("expected ',' or ']' in array");
    }
  }

  bool parseNumber(Value& out) {
    out.type = Value::Type::kNumber;
    size_t start = pos_;
    consume('-');
    if (consume('0')) {
      // no leading zeros
    } else if (!consumeDigits()) {
      return failBool("invalid number");
    }
    if (consume('.') && !consumeDigits()) return failBool("invalid number");
    if (pos_ < text_.size() && (text_[pos_] == 'e' || text_[pos_] == 'E')) {
      ++pos_;
      if (!consume('+')) consume('-');
      if (!consumeDigits()) return failBool("invalid number");
    }
    out.text.assign(text_.substr(start, pos_ - start));
    return true;
  }

  bool consumeDigits() {
    size_t start = pos_;
    while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') ++pos_;
    return pos_ > start;
  }

  std::optional<unsigned> parseHex4() {
    if (text_.size() - pos_ < 4) return std::nullopt;
    unsigned value = 0;
    for (size_t i = 0; i < 4; ++i) {
      char c = text_[pos_ + i];
      unsigned digit = 0;
      if (c >= '0' && c <= '9') {
        digit = static_cast<unsigned>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        digit = static_cast<unsigned>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        digit = static_cast<unsigned>(c - 'A' + 10);
      } else {
        return std::nullopt;
      }
      value = value << 4 | digit;
    }
    pos_ += 4;
    return value;
  }

  // One append per code point: a byte per push_back would be ten growth checks in the module.
  static void appendUtf8(std::string& out, unsigned cp) {
    size_t length = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    static constexpr unsigned char kLead[] = {0, 0x00, 0xC0, 0xE0, 0xF0};
    char bytes[4];
    for (size_t i = length - 1; i > 0; --i, cp >>= 6)
      bytes[i] = static_cast<char>(0x80 | (cp & 0x3F));
    bytes[0] = static_cast<char>(kLead[length] | cp);
    out.append(bytes, length);
  }

  // Length of the valid UTF-8 sequence at pos_ (1..4), or 0 if invalid (overlong, surrogate, >
  // U+10FFFF).
  size_t utf8SequenceLength() const {
    auto byte = [&](size_t i) { return static_cast<unsigned char>(text_[pos_ + i]); };
    unsigned char b0 = byte(0);
    size_t remaining = text_.size() - pos_;
    auto cont = [&](size_t i) { return i < remaining && (byte(i) & 0xC0) == 0x80; };
    if (b0 < 0x80) return 1;
    if (b0 >= 0xC2 && b0 <= 0xDF) return cont(1) ? 2 : 0;
    if (b0 >= 0xE0 && b0 <= 0xEF) {
      if (!cont(1) || !cont(2)) return 0;
      if (b0 == 0xE0 && byte(1) < 0xA0) return 0;   // overlong
      if (b0 == 0xED && byte(1) >= 0xA0) return 0;  // surrogates
      return 3;
    }
    if (b0 >= 0xF0 && b0 <= 0xF4) {
      if (!cont(1) || !cont(2) || !cont(3)) return 0;
      if (b0 == 0xF0 && byte(1) < 0x90) return 0;   // overlong
      if (b0 == 0xF4 && byte(1) >= 0x90) return 0;  // > U+10FFFF
      return 4;
    }
    return 0;
  }

  bool parseString(std::string& out) {
    ++pos_;  // opening quote
    while (true) {
      if (pos_ >= text_.size()) return failBool("unterminated string");
      auto c = static_cast<unsigned char>(text_[pos_]);
      if (c == '"') {
        ++pos_;
        return true;
      }
      if (c < 0x20) return failBool("control character in string");
      if (c == '\\') {
        ++pos_;
        if (pos_ >= text_.size()) return failBool("unterminated string");
        char e = text_[pos_++];
        if (e == 'u') {
          auto cp = parseHex4();
          if (!cp) return failBool("invalid \\u escape");
          if (*cp >= 0xDC00 && *cp <= 0xDFFF) return failBool("lone low surrogate");
          if (*cp >= 0xD800 && *cp <= 0xDBFF) {
            if (!consumeWord("\\u")) return failBool("lone high surrogate");
            auto low = parseHex4();
            if (!low || *low < 0xDC00 || *low > 0xDFFF) return failBool("lone high surrogate");
            *cp = 0x10000 + ((*cp - 0xD800) << 10) + (*low - 0xDC00);
          }
          appendUtf8(out, *cp);
          continue;
        }
        // The one-character escapes as pairs (escape, meaning): a table, not a switch of appends.
        static constexpr std::string_view kEscapes = "\"\"\\\\//b\bf\fn\nr\rt\t";
        size_t pair = 0;
        while (pair < kEscapes.size() && kEscapes[pair] != e) pair += 2;
        if (pair == kEscapes.size()) return failBool("invalid escape");
        out.push_back(kEscapes[pair + 1]);
        continue;
      }
      size_t length = utf8SequenceLength();
      if (length == 0) return failBool("invalid UTF-8");
      out.append(text_.substr(pos_, length));
      pos_ += length;
    }
  }

  std::string_view text_;
  ParseError* error_;
  size_t pos_ = 0;
  bool failed_ = false;
};

}  // namespace

Value::Value() = default;
Value::~Value() = default;
Value::Value(Value&&) noexcept = default;
Value& Value::operator=(Value&&) noexcept = default;

std::optional<int64_t> Value::asInteger() const {
  // The parser already checked the number grammar: only sign and digits remain to read.
  if (type != Type::kNumber || text.size() > 18)
    return std::nullopt;  // |value| < 10^18: no overflow
  bool negative = !text.empty() && text[0] == '-';
  int64_t value = 0;
  for (size_t i = negative ? 1 : 0; i < text.size(); ++i) {
    if (text[i] < '0' || text[i] > '9') return std::nullopt;  // fraction or exponent
    value = value * 10 + (text[i] - '0');
  }
  return negative ? -value : value;
}

const Value* Value::find(std::string_view key) const {
  for (const Member& member : members) {
    if (member.key == key) return &member.value;
  }
  return nullptr;
}

std::optional<Value> parse(std::string_view text, ParseError* error) {
  return Parser(text, error).parseDocument();
}

const char* typeName(Value::Type type) {
  switch (type) {
    case Value::Type::kNull:
      return "null";
    case Value::Type::kBool:
      return "a boolean";
    case Value::Type::kNumber:
      return "a number";
    case Value::Type::kString:
      return "a string";
    case Value::Type::kArray:
      return "an array";
    case Value::Type::kObject:
      return "an object";
  }
  return "a value";
}

}  // namespace tcpsteer::json
