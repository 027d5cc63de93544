// libFuzzer target: address and CIDR parsing never crash, agree with inet_pton, and a parsed
// address always yields a decision.
#include <arpa/inet.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "filter/core/address.h"
#include "filter/core/decision.h"

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
  static const tcpsteer::Config config = tcpsteer::istioPreset();
  tcpsteer::Decision decision = tcpsteer::decide(config, text, "192.0.2.1:443");
  if (socket_address.has_value() != (decision.verdict == tcpsteer::Verdict::kRoute)) std::abort();
  return 0;
}
