// Socket address and CIDR parsing for the routing core.
// Pure functions over untrusted text: no allocation, no exceptions, every input is accepted or
// rejected.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace tcpsteer {

enum class IpFamily : uint8_t { kV4, kV6 };

struct IpAddress {
  IpFamily family = IpFamily::kV4;
  // Network byte order; an IPv4 address uses the first four bytes.
  std::array<uint8_t, 16> bytes{};

  size_t byteLength() const { return family == IpFamily::kV4 ? 4 : 16; }
  // "Last octet" of the routing rule: the last byte of the address (IPv4 d of a.b.c.d, IPv6 byte
  // 15).
  uint8_t lastOctet() const { return bytes[byteLength() - 1]; }
  bool operator==(const IpAddress&) const = default;
};

struct SocketAddress {
  IpAddress ip;
  std::optional<uint16_t> port;
};

// Longest text we accept: "[" + 45-char IPv6 (with embedded IPv4) + "%" + zone + "]:" + 5 digits.
inline constexpr size_t kMaxAddressText = 80;

// "a.b.c.d" or an IPv6 literal (with "::" compression and an optional trailing dotted IPv4).
// IPv4-mapped IPv6 (::ffff:a.b.c.d) is returned as the IPv4 address it carries, so IPv4 rules match
// it.
std::optional<IpAddress> parseIp(std::string_view text);

// The forms Envoy prints for source/destination.address: "a.b.c.d:port", "[v6]:port", and the same
// without a port ("a.b.c.d", "v6", "[v6]"). An IPv6 zone ("%eth0") is accepted and ignored.
std::optional<SocketAddress> parseSocketAddress(std::string_view text);

// parseSocketAddress with a memory of the last IPv4 address it read, so a repeat costs a comparison
// instead of a parse: a sidecar sees its own pod IP as the source of every connection, and mostly a
// few destinations. Only the "a.b.c.d[:port]" form is remembered; the port is always read afresh.
// Gives exactly parseSocketAddress's answers (tests/fuzz/fuzz_address.cc checks it).
class AddressMemo {
 public:
  // remember_whole: also remember the whole text with its port once the same address repeats (for
  // destinations, which repeat whole; sources change port every connection).
  explicit AddressMemo(bool remember_whole = false) : remember_whole_(remember_whole) {}
  std::optional<SocketAddress> parse(std::string_view text);
  // The last parse gave the address of the parse before it (its port may differ) / the same
  // whole text: what a caller needs to reuse a result that depends on the address only.
  bool repeatedAddress() const { return repeated_ != Repeat::kNo; }
  bool repeatedWhole() const { return repeated_ == Repeat::kWhole; }

 private:
  void remember(std::string_view text, uint16_t port);
  enum class Repeat : uint8_t { kNo, kAddress, kWhole };
  Repeat repeated_ = Repeat::kNo;

  // The remembered address text ("255.255.255.255" at most), zero-padded: compared as two 64-bit
  // words.
  alignas(8) unsigned char text_[16] = {};
  size_t size_ = 0;  // 0 = nothing remembered
  IpAddress ip_;
  // The last whole "a.b.c.d:port" text (21 bytes at most) and its port, zero-padded: a
  // destination repeats whole (a sidecar calls the same service), so its port is not read again.
  alignas(8) unsigned char whole_[24] = {};
  size_t whole_size_ = 0;  // 0 = nothing remembered
  uint16_t whole_port_ = 0;
  bool remember_whole_;
};

struct IpPrefix {
  IpAddress base;  // host bits are zero
  uint8_t length = 0;
  // The prefix's bits set, in the address's byte order: contains() compares two masked words per
  // connection instead of bytes (parsePrefix fills it).
  std::array<uint8_t, 16> mask{};

  // Inline: the rules scan calls it per rule per connection, and the call would cost as much as
  // the test.
  [[gnu::always_inline]] bool contains(const IpAddress& address) const {
    if (address.family != base.family) return false;
    uint64_t a[2];
    uint64_t b[2];
    uint64_t m[2];
    __builtin_memcpy(a, address.bytes.data(), sizeof(a));
    __builtin_memcpy(b, base.bytes.data(), sizeof(b));
    __builtin_memcpy(m, mask.data(), sizeof(m));
    return ((((a[0] ^ b[0]) & m[0]) | ((a[1] ^ b[1]) & m[1]))) == 0;
  }
};

// "10.0.0.0/8", "fd00::/8", or a bare address (a /32 or /128). Host bits set below the prefix are
// an error, as they usually mean a typo ("10.1.2.3/8").
std::optional<IpPrefix> parsePrefix(std::string_view text);

// Decimal port 0..65535, digits only.
std::optional<uint16_t> parsePort(std::string_view text);

// The module's port reader (the wasm build reads ports this way; natively a digit loop is faster):
// 1 to 5 digits in the low `length` bytes of a little-endian word, higher bytes ignored. Exposed so
// the native tests and fuzzer check it against the digit loop.
std::optional<uint16_t> parsePortWord(uint64_t word, size_t length);

}  // namespace tcpsteer
