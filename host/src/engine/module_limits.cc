#include "host/src/engine/module_limits.h"

#include <string>

#include "host/src/limits.h"

namespace tcpsteer::host {
namespace {

// A cursor over one stretch of the binary; every read is bounded by its end. The binary format
// (WebAssembly core spec, section 5) is walked only as far as the counts and limits need.
class Reader {
 public:
  Reader(const uint8_t* begin, const uint8_t* end) : pos_(begin), end_(end) {}

  bool atEnd() const { return pos_ == end_; }
  uint64_t remaining() const { return static_cast<uint64_t>(end_ - pos_); }

  bool byte(uint8_t* out) {
    if (pos_ == end_) return false;
    *out = *pos_++;
    return true;
  }
  bool u32(uint64_t* out) {
    uint64_t value = 0;
    for (int shift = 0; shift < 35; shift += 7) {
      uint8_t b = 0;
      if (!byte(&b)) return false;
      value |= static_cast<uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) {
        *out = value;
        return value <= UINT32_MAX;
      }
    }
    return false;
  }
  bool skip(uint64_t n) {
    if (n > remaining()) return false;
    pos_ += n;
    return true;
  }
  bool name() {
    uint64_t size = 0;
    return u32(&size) && skip(size);
  }
  Reader sub(uint64_t n) const { return {pos_, pos_ + n}; }

 private:
  const uint8_t* pos_;
  const uint8_t* end_;
};

Error tooMany(const std::string& what, uint64_t count, uint64_t limit) {
  return Error{"the module declares " + std::to_string(count) + " " + what +
               "; Envoy's engines allow at most " + std::to_string(limit)};
}

Error malformed(const std::string& where) {
  return Error{"not a valid wasm module: malformed " + where};
}

// limits ::= 0x00 min | 0x01 min max (0x02/0x03: shared, threads proposal)
Result<void> checkLimits(Reader& r, const std::string& what, uint64_t limit) {
  uint8_t flags = 0;
  uint64_t initial = 0;
  uint64_t maximum = 0;
  if (!r.byte(&flags) || flags > 3 || !r.u32(&initial)) return malformed(what + " limits");
  if ((flags & 1) != 0 && !r.u32(&maximum)) return malformed(what + " limits");
  if (initial > limit) return tooMany(what + " (initial size)", initial, limit);
  return {};
}

Result<void> checkTableType(Reader& r) {
  uint8_t element_type = 0;
  if (!r.byte(&element_type)) return malformed("table type");
  return checkLimits(r, "table elements", limits::kMaxTableElements);
}

Result<void> checkImports(Reader& r, uint64_t count) {
  for (uint64_t i = 0; i < count; ++i) {
    uint8_t kind = 0;
    uint64_t index = 0;
    if (!r.name() || !r.name() || !r.byte(&kind)) return malformed("import section");
    switch (kind) {
      case 0:  // function: type index
      case 4:  // tag: attribute + type index
        if ((kind == 4 && !r.skip(1)) || !r.u32(&index)) return malformed("import section");
        break;
      case 1:
        if (auto checked = checkTableType(r); !checked) return checked;
        break;
      case 2:
        if (auto checked = checkLimits(r, "memory pages", limits::kMaxMemoryPages); !checked)
          return checked;
        break;
      case 3:  // global: value type + mutability
        if (!r.skip(2)) return malformed("import section");
        break;
      default:
        return malformed("import section");
    }
  }
  return {};
}

Result<void> checkCode(Reader& r, uint64_t count) {
  for (uint64_t i = 0; i < count; ++i) {
    uint64_t body_size = 0;
    if (!r.u32(&body_size) || body_size > r.remaining()) return malformed("code section");
    if (body_size > limits::kMaxFunctionBodyBytes)
      return tooMany("bytes in one function body", body_size, limits::kMaxFunctionBodyBytes);
    Reader body = r.sub(body_size);
    r.skip(body_size);
    uint64_t groups = 0;
    if (!body.u32(&groups)) return malformed("function body");
    uint64_t locals = 0;
    for (uint64_t g = 0; g < groups; ++g) {
      uint64_t n = 0;
      if (!body.u32(&n) || !body.skip(1)) return malformed("function locals");
      locals += n;
      if (locals > limits::kMaxFunctionLocals)
        return tooMany("locals in function " + std::to_string(i), locals,
                       limits::kMaxFunctionLocals);
    }
  }
  return {};
}

struct SectionRule {
  uint8_t id;
  const char* what;
  uint64_t limit;
};

constexpr SectionRule kVectorSections[] = {
    {1, "types", limits::kMaxTypes},
    {2, "imports", limits::kMaxImports},
    {3, "functions", limits::kMaxFunctions},
    {4, "tables", limits::kMaxTables},
    {5, "memories", limits::kMaxMemories},
    {6, "globals", limits::kMaxGlobals},
    {7, "exports", limits::kMaxExports},
    {9, "element segments", limits::kMaxElementSegments},
    {10, "function bodies", limits::kMaxFunctions},
    {11, "data segments", limits::kMaxDataSegments},
};

}  // namespace

Result<void> checkModuleLimits(std::span<const uint8_t> module) {
  Reader r(module.data(), module.data() + module.size());
  if (!r.skip(8)) return Error{"not a valid wasm module: shorter than the 8-byte header"};
  while (!r.atEnd()) {
    uint8_t id = 0;
    uint64_t size = 0;
    if (!r.byte(&id) || !r.u32(&size) || size > r.remaining()) return malformed("section header");
    Reader section = r.sub(size);
    r.skip(size);
    if (id == 12) {  // data count: no entries, only the number of data segments
      uint64_t count = 0;
      if (!section.u32(&count)) return malformed("data count section");
      if (count > limits::kMaxDataSegments)
        return tooMany("data segments (data count section)", count, limits::kMaxDataSegments);
      continue;
    }
    for (const SectionRule& rule : kVectorSections) {
      if (rule.id != id) continue;
      uint64_t count = 0;
      if (!section.u32(&count)) return malformed(std::string(rule.what) + " section");
      if (count > rule.limit) return tooMany(rule.what, count, rule.limit);
      // Every entry takes at least one byte: a count beyond the section's size is a lie that an
      // engine would otherwise reserve memory for.
      if (count > section.remaining()) return malformed(std::string(rule.what) + " section");
      Result<void> checked;
      if (id == 2) checked = checkImports(section, count);
      if (id == 10) checked = checkCode(section, count);
      for (uint64_t i = 0; checked && i < count && (id == 4 || id == 5); ++i) {
        checked = id == 4 ? checkTableType(section)
                          : checkLimits(section, "memory pages", limits::kMaxMemoryPages);
      }
      if (!checked) return checked;
    }
  }
  return {};
}

}  // namespace tcpsteer::host
