// libFuzzer target: address and CIDR parsing never crash, agree with inet_pton, ports agree with
// strtoul (the native reader and the module's word-at-a-time one), a parsed address always yields a
// decision, and the memo (AddressMemo) answers exactly as parseSocketAddress for each line of the
// input read in order, so repeats and near-repeats of an address are covered.
#include <arpa/inet.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include "filter/core/address.h"
#include "filter/core/decision.h"

namespace {

// A port by the C library: 1 to 5 decimal digits (strtoul alone would take signs and spaces), at
// most 65535.
std::optional<uint16_t> portByStrtoul(std::string_view text) {
  if (text.empty() || text.size() > 5 || text.find_first_not_of("0123456789") != std::string::npos)
    return std::nullopt;
  unsigned long value = std::strtoul(std::string(text).c_str(), nullptr, 10);
  if (value > 65535) return std::nullopt;
  return static_cast<uint16_t>(value);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto socket_address = tcpsteer::parseSocketAddress(text);
  tcpsteer::parsePrefix(text);
  auto ip = tcpsteer::parseIp(text);
  if (text.find('\0') == std::string::npos && text.size() <= tcpsteer::kMaxAddressText) {
    unsigned char buffer[16];
    bool libc = inet_pton(AF_INET, text.c_str(), buffer) == 1 ||
                inet_pton(AF_INET6, text.c_str(), buffer) == 1;
    if (libc != ip.has_value()) std::abort();
  }
  if (tcpsteer::parsePort(text) != portByStrtoul(text)) std::abort();
  if (size >= 8) {  // the module's reader: the first 8 bytes as a word, any length of digits
    uint64_t word = 0;
    std::memcpy(&word, data, sizeof(word));
    size_t length = data[0] % 8;
    if (tcpsteer::parsePortWord(word, length) !=
        portByStrtoul(std::string_view(text).substr(0, length)))
      std::abort();
  }
  // "a.b.c.d:port": an address exactly when inet_pton takes the quad and the digit loop the port.
  size_t colon = text.find(':');
  if (colon != std::string::npos && text.find(':', colon + 1) == std::string::npos &&
      text.find('\0') == std::string::npos && text.find('.') < colon) {
    unsigned char quad[4];
    bool v4 = inet_pton(AF_INET, text.substr(0, colon).c_str(), quad) == 1;
    auto port = portByStrtoul(std::string_view(text).substr(colon + 1));
    if ((v4 && port.has_value()) != socket_address.has_value()) std::abort();
    if (socket_address && socket_address->port != port) std::abort();
  }
  // Both memos: the source kind and the destination kind, which also remembers whole texts.
  tcpsteer::AddressMemo memo;
  tcpsteer::AddressMemo whole_memo(/*remember_whole=*/true);
  std::string_view rest(text);
  for (int line = 0; line < 64 && !rest.empty(); ++line) {
    std::string_view item = rest.substr(0, rest.find('\n'));
    rest.remove_prefix(std::min(rest.size(), item.size() + 1));
    auto expected = tcpsteer::parseSocketAddress(item);
    for (tcpsteer::AddressMemo* m : {&memo, &whole_memo}) {
      auto remembered = m->parse(item);
      if (expected.has_value() != remembered.has_value()) std::abort();
      if (expected && (expected->ip != remembered->ip || expected->port != remembered->port))
        std::abort();
    }
  }
  static const tcpsteer::Config config = tcpsteer::istioPreset();
  tcpsteer::Decision decision = tcpsteer::decide(config, text, "192.0.2.1:443");
  if (socket_address.has_value() != (decision.verdict == tcpsteer::Verdict::kRoute)) std::abort();
  return 0;
}
