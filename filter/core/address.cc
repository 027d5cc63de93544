#include "filter/core/address.h"

#include "filter/core/text.h"

#include <algorithm>
#include <bit>
#include <memory>

namespace tcpsteer {
namespace {

// The port reader loads digits as a little-endian word (wasm32 and every native target we build).
static_assert(std::endian::native == std::endian::little);

bool isDigit(char c) {
  return c >= '0' && c <= '9';
}

int hexValue(char c) {
  if (isDigit(c)) return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// One decimal octet at p (1-3 digits, no leading zero, <= 255); advances p past it.
[[gnu::always_inline]] inline bool readOctet(const unsigned char*& p, unsigned& out) {
  unsigned value = p[0] - unsigned{'0'};
  if (value > 9) return false;
  unsigned digit = p[1] - unsigned{'0'};
  if (digit > 9) {
    p += 1;
  } else {
    if (value == 0) return false;  // a leading zero would read as octal elsewhere
    value = value * 10 + digit;
    digit = p[2] - unsigned{'0'};
    if (digit > 9) {
      p += 2;
    } else {
      value = value * 10 + digit;
      if (value > 255) return false;
      p += 3;
    }
  }
  out = value;
  return true;
}

// Where the ports are read: in the module as one word (an interpreter pays per instruction, and a
// digit loop costs it ~25 per byte); natively by a digit loop, which a CPU predicts and which does
// not wait on a word load over the bytes just copied (store forwarding): 25 % faster decisions.
#if defined(__wasm__)
constexpr bool kPortsAsWords = true;
#else
constexpr bool kPortsAsWords = false;
#endif

// A port of 1 to 5 decimal digits held in the low `length` bytes of a little-endian word (the
// first digit in the lowest byte; higher bytes are ignored). No loop: the digits are checked as one
// word and combined in three multiplications.
[[gnu::always_inline]] inline bool portFromWord(uint64_t word, size_t length, unsigned& port) {
  if (length - 1 > 4) return false;  // 1..5 digits
  constexpr uint64_t kZeros = 0x3030303030303030;
  constexpr uint64_t kLowNibbles = 0x0f0f0f0f0f0f0f0f;
  // The digits to the top of the word (the last digit in the highest byte), '0's below them.
  word = (word << (64 - 8 * length)) | (kZeros >> (8 * length));
  // Every byte '0'..'9': high nibble 3 and low nibble below 10.
  if ((((word & ~kLowNibbles) ^ kZeros) |
       (((word & kLowNibbles) + 0x0606060606060606) & ~kLowNibbles)) != 0)
    return false;
  uint64_t value = ((word & kLowNibbles) * (10 * 256 + 1)) >> 8;     // pairs of digits
  value = ((value & 0x00ff00ff00ff00ff) * (100 * 65536 + 1)) >> 16;  // groups of four
  value = ((value & 0x0000ffff0000ffff) * (10000 * (uint64_t{1} << 32) + 1)) >> 32;
  if (value > 65535) return false;
  port = static_cast<unsigned>(value);
  return true;
}

// The same answers as portFromWord, by a digit loop over text.
[[maybe_unused, gnu::always_inline]] inline bool portFromDigits(const unsigned char* text,
                                                                size_t length, unsigned& port) {
  if (length - 1 > 4) return false;
  unsigned value = 0;
  for (size_t i = 0; i < length; ++i) {
    unsigned digit = text[i] - unsigned{'0'};
    if (digit > 9) return false;
    value = value * 10 + digit;
  }
  if (value > 65535) return false;
  port = value;
  return true;
}

// kPadded: eight bytes from text are readable (the fast path's zero-padded copy), so the word is
// one load.
template <bool kPadded>
[[gnu::always_inline]] inline bool readPort(const unsigned char* text, size_t length,
                                            unsigned& port) {
  if constexpr (kPortsAsWords) {
    uint64_t word = 0;
    __builtin_memcpy(&word, text, kPadded ? sizeof(word) : (length < 8 ? length : 8));
    return portFromWord(word, length, port);
  } else {
    return portFromDigits(text, length, port);
  }
}

[[gnu::always_inline]] inline bool readDot(const unsigned char*& p) {
  if (*p != '.') return false;
  ++p;
  return true;
}

// The common "a.b.c.d" / "a.b.c.d:port" with the same rules as the general path, in one pass over
// a NUL-terminated copy: the NUL stops every digit run, so no step checks for the end. False means
// "not this form" (the general path then decides). *ip_size is the length of "a.b.c.d". It keeps
// the per-connection cost low in an interpreted module, where each byte costs every instruction
// spent on it.
bool parseIpv4Fast(std::string_view text, SocketAddress* out, size_t* ip_size) {
  // Zeroed past the text: the NUL ends every digit run, and the port's 8-byte read stays inside.
  alignas(8) unsigned char copy[kMaxAddressText + 16] = {};
  __builtin_memcpy(copy, text.data(), text.size());  // callers checked size <= kMaxAddressText
  const unsigned char* p = copy;
  unsigned a = 0;
  unsigned b = 0;
  unsigned c = 0;
  unsigned d = 0;
  // Unrolled by hand: -Oz keeps loops, and a loop counter costs as much as the work here.
  if (!readOctet(p, a) || !readDot(p) || !readOctet(p, b) || !readDot(p) || !readOctet(p, c) ||
      !readDot(p) || !readOctet(p, d)) {
    return false;
  }
  out->ip.bytes[0] = static_cast<uint8_t>(a);
  out->ip.bytes[1] = static_cast<uint8_t>(b);
  out->ip.bytes[2] = static_cast<uint8_t>(c);
  out->ip.bytes[3] = static_cast<uint8_t>(d);
  out->ip.family = IpFamily::kV4;
  *ip_size = static_cast<size_t>(p - copy);
  const unsigned char* end = copy + text.size();
  if (p == end) return true;
  if (*p != ':') return false;
  ++p;
  unsigned port = 0;
  if (!readPort<true>(p, static_cast<size_t>(end - p), port)) return false;
  out->port = static_cast<uint16_t>(port);
  return true;
}

// Strict dotted quad alone (no port), through the same one-pass reader.
std::optional<std::array<uint8_t, 4>> parseDottedQuad(std::string_view text) {
  SocketAddress address;
  size_t ip_size = 0;
  if (text.size() > kMaxAddressText || !parseIpv4Fast(text, &address, &ip_size) || address.port) {
    return std::nullopt;
  }
  return std::array<uint8_t, 4>{address.ip.bytes[0], address.ip.bytes[1], address.ip.bytes[2],
                                address.ip.bytes[3]};
}

bool isV4Mapped(const std::array<uint8_t, 16>& b) {
  return std::all_of(b.begin(), b.begin() + 10, [](uint8_t x) { return x == 0; }) &&
         b[10] == 0xff && b[11] == 0xff;
}

std::optional<std::array<uint8_t, 16>> parseV6(std::string_view text) {
  if (text.size() < 2 || text.size() > 45) return std::nullopt;
  std::array<uint16_t, 8> head{};
  std::array<uint16_t, 8> tail{};
  size_t head_count = 0;
  size_t tail_count = 0;
  bool compressed = false;
  bool embedded_v4 = false;
  std::array<uint8_t, 4> v4{};

  size_t i = 0;
  if (text.starts_with("::")) {
    compressed = true;
    i = 2;
  } else if (text[0] == ':') {
    return std::nullopt;
  }
  while (i < text.size()) {
    size_t end = text.find(':', i);
    std::string_view group = text.substr(i, end == std::string_view::npos ? end : end - i);
    if (group.empty()) return std::nullopt;
    size_t& count = compressed ? tail_count : head_count;
    auto& groups = compressed ? tail : head;
    if (group.find('.') != std::string_view::npos) {
      // A trailing dotted IPv4 counts as two groups and must end the text.
      if (end != std::string_view::npos) return std::nullopt;
      auto quad = parseDottedQuad(group);
      if (!quad || head_count + tail_count + 2 > 8) return std::nullopt;
      v4 = *quad;
      embedded_v4 = true;
      break;
    }
    if (group.size() > 4 || head_count + tail_count >= 8) return std::nullopt;
    unsigned value = 0;
    for (char c : group) {
      int h = hexValue(c);
      if (h < 0) return std::nullopt;
      value = (value << 4) | static_cast<unsigned>(h);
    }
    groups[count++] = static_cast<uint16_t>(value);
    if (end == std::string_view::npos) break;
    i = end + 1;
    if (i < text.size() && text[i] == ':') {
      if (compressed) return std::nullopt;  // a second "::"
      compressed = true;
      ++i;
    } else if (i == text.size()) {
      return std::nullopt;  // trailing single ':'
    }
  }
  size_t groups_used = head_count + tail_count + (embedded_v4 ? 2 : 0);
  if (compressed ? groups_used > 7 : groups_used != 8) return std::nullopt;

  std::array<uint8_t, 16> out{};
  for (size_t g = 0; g < head_count; ++g) {
    out[2 * g] = static_cast<uint8_t>(head[g] >> 8);
    out[2 * g + 1] = static_cast<uint8_t>(head[g] & 0xff);
  }
  size_t tail_bytes = 2 * tail_count + (embedded_v4 ? 4 : 0);
  size_t pos = 16 - tail_bytes;
  for (size_t g = 0; g < tail_count; ++g) {
    out[pos++] = static_cast<uint8_t>(tail[g] >> 8);
    out[pos++] = static_cast<uint8_t>(tail[g] & 0xff);
  }
  if (embedded_v4) std::copy(v4.begin(), v4.end(), out.begin() + 12);
  return out;
}

// Strips an IPv6 zone ("%eth0"): letters, digits and "._-", at most 16 characters.
std::optional<std::string_view> stripZone(std::string_view text) {
  size_t percent = text.find('%');
  if (percent == std::string_view::npos) return text;
  std::string_view zone = text.substr(percent + 1);
  if (zone.empty() || zone.size() > 16) return std::nullopt;
  for (char c : zone) {
    bool ok = isDigit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '.' ||
              c == '_' || c == '-';
    if (!ok) return std::nullopt;
  }
  return text.substr(0, percent);
}

}  // namespace

std::optional<uint16_t> parsePort(std::string_view text) {
  if (text.empty() || text.size() > 5) return std::nullopt;
  unsigned value = 0;
  if (!readPort<false>(reinterpret_cast<const unsigned char*>(text.data()), text.size(), value))
    return std::nullopt;
  return static_cast<uint16_t>(value);
}

std::optional<uint16_t> parsePortWord(uint64_t word, size_t length) {
  unsigned value = 0;
  if (!portFromWord(word, length, value)) return std::nullopt;
  return static_cast<uint16_t>(value);
}

std::optional<IpAddress> parseIp(std::string_view text) {
  if (text.empty() || text.size() > kMaxAddressText) return std::nullopt;
  IpAddress address;
  if (text.find(':') == std::string_view::npos) {
    auto quad = parseDottedQuad(text);
    if (!quad) return std::nullopt;
    std::copy(quad->begin(), quad->end(), address.bytes.begin());
    return address;
  }
  auto bytes = parseV6(text);
  if (!bytes) return std::nullopt;
  if (isV4Mapped(*bytes)) {
    std::copy(bytes->begin() + 12, bytes->end(), address.bytes.begin());
    return address;
  }
  address.family = IpFamily::kV6;
  address.bytes = *bytes;
  return address;
}

namespace {

// Every form but the plain dotted quad (which parseIpv4Fast has refused); text is 1 to
// kMaxAddressText bytes.
std::optional<SocketAddress> parseSocketAddressGeneral(std::string_view text) {
  // Every remaining form starts with '[', ':' ("::1") or a hex digit: anything else ("unix:/...",
  // a pipe name) is refused before any search.
  char first = text.front();
  if (first != '[' && first != ':' && hexValue(first) < 0) return std::nullopt;
  SocketAddress result;
  std::string_view host = text;
  if (text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    host = text.substr(1, close - 1);
    std::string_view rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return std::nullopt;
      result.port = parsePort(rest.substr(1));
      if (!result.port) return std::nullopt;
    }
    if (host.find(':') == std::string_view::npos) return std::nullopt;  // "[1.2.3.4]" is not v6
  } else {
    size_t colons = static_cast<size_t>(std::count(text.begin(), text.end(), ':'));
    if (colons == 1) {
      size_t colon = text.find(':');
      host = text.substr(0, colon);
      result.port = parsePort(text.substr(colon + 1));
      if (!result.port) return std::nullopt;
    }
    // colons == 0: bare IPv4; colons > 1: bare IPv6 without a port.
  }
  auto unzoned = stripZone(host);
  if (!unzoned) return std::nullopt;
  if (unzoned->size() != host.size() && host.find(':') == std::string_view::npos) {
    return std::nullopt;  // zones only exist on IPv6
  }
  auto ip = parseIp(*unzoned);
  if (!ip) return std::nullopt;
  result.ip = *ip;
  return result;
}

}  // namespace

std::optional<SocketAddress> parseSocketAddress(std::string_view text) {
  if (text.empty() || text.size() > kMaxAddressText) return std::nullopt;
  SocketAddress result;
  size_t ip_size = 0;
  if (parseIpv4Fast(text, &result, &ip_size)) return result;
  return parseSocketAddressGeneral(text);
}

namespace {

// text (at most N bytes) equals a remembered text zero-padded to N bytes: compared as N / 8 words,
// one pass instead of a byte loop.
template <size_t N>
[[gnu::always_inline]] inline bool equalsPadded(std::string_view text,
                                                const unsigned char (&remembered)[N]) {
  static_assert(N % 8 == 0);
  alignas(8) unsigned char padded[N] = {};
  __builtin_memcpy(padded, text.data(), text.size());
  uint64_t differ = 0;
  for (size_t i = 0; i < N; i += 8) {
    uint64_t a = 0;
    uint64_t b = 0;
    __builtin_memcpy(&a, padded + i, sizeof(a));
    __builtin_memcpy(&b, remembered + i, sizeof(b));
    differ |= a ^ b;
  }
  return differ == 0;
}

}  // namespace

std::optional<SocketAddress> AddressMemo::parse(std::string_view text) {
  if (whole_size_ != 0 && text.size() == whole_size_ &&
      equalBytes(text.data(), reinterpret_cast<const char*>(whole_),  // NOLINT: sizes equal
                 whole_size_)) {
    repeated_ = Repeat::kWhole;
    SocketAddress address;
    address.ip = ip_;
    address.port = whole_port_;
    return address;
  }
  if (size_ != 0 && text.size() >= size_ && text.size() <= size_ + 6 &&
      equalsPadded(text.substr(0, size_), text_)) {
    SocketAddress address;
    address.ip = ip_;
    repeated_ = Repeat::kAddress;
    if (text.size() == size_) return address;
    if (text[size_] == ':') {
      address.port = parsePort(text.substr(size_ + 1));
      if (address.port) {
        if (remember_whole_) remember(text, *address.port);
        return address;
      }
    }
    // Same address, then something that is not ":port": the general parser decides.
  }
  repeated_ = Repeat::kNo;
  SocketAddress fast;
  size_t ip_size = 0;
  if (text.empty() || text.size() > kMaxAddressText) return std::nullopt;
  if (!parseIpv4Fast(text, &fast, &ip_size)) return parseSocketAddressGeneral(text);
  // The plain dotted quad the memo can compare: remember its address part.
  __builtin_memset(text_, 0, sizeof(text_));
  __builtin_memcpy(text_, text.data(), ip_size);
  size_ = ip_size;
  ip_ = fast.ip;
  whole_size_ = 0;  // remembered whole only when it repeats: new addresses pay no copy
  return fast;
}

// The whole text of the remembered address with a port (the IP part is text_, already set).
void AddressMemo::remember(std::string_view text, uint16_t port) {
  __builtin_memset(whole_, 0, sizeof(whole_));
  __builtin_memcpy(whole_, text.data(), text.size());  // a.b.c.d:port is at most 21 bytes
  whole_size_ = text.size();
  whole_port_ = port;
}

std::optional<IpPrefix> parsePrefix(std::string_view text) {
  size_t slash = text.find('/');
  auto ip = parseIp(text.substr(0, slash));
  if (!ip) return std::nullopt;
  // A v4-mapped v6 prefix would be ambiguous after normalisation; ask for the IPv4 form instead.
  if (ip->family == IpFamily::kV4 && text.substr(0, slash).find(':') != std::string_view::npos) {
    return std::nullopt;
  }
  unsigned max_length = static_cast<unsigned>(ip->byteLength() * 8);
  unsigned length = max_length;  // a bare address
  if (slash != std::string_view::npos) {
    std::string_view length_text = text.substr(slash + 1);
    if (length_text.empty() || length_text.size() > 3) return std::nullopt;
    length = 0;
    for (char c : length_text) {
      if (!isDigit(c)) return std::nullopt;
      length = length * 10 + static_cast<unsigned>(c - '0');
    }
    if (length > max_length || (length_text.size() > 1 && length_text[0] == '0'))
      return std::nullopt;
  }
  IpPrefix prefix;
  prefix.base = *ip;
  prefix.length = static_cast<uint8_t>(length);
  for (size_t bit = 0; bit < max_length; ++bit) {
    auto flag = static_cast<uint8_t>(0x80 >> (bit % 8));
    if (bit < length) {
      prefix.mask[bit / 8] |= flag;
    } else if (ip->bytes[bit / 8] & flag) {
      return std::nullopt;  // host bits set: "10.1.2.3/8" is almost always a mistake
    }
  }
  return prefix;
}

}  // namespace tcpsteer
