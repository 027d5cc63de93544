// endpointText (apps/common/net.h): the hand-written IPv4 form against asio's own text, for every
// octet value at every position and the ports' extremes; IPv6 in brackets.
#include "apps/common/net.h"

#include <gtest/gtest.h>

#include <string>

namespace tcpsteer::apps::net {
namespace {

TEST(EndpointText, Ipv4MatchesAsioForEveryOctetAtEveryPosition) {
  for (int position = 0; position < 4; ++position) {
    for (unsigned value = 0; value < 256; ++value) {
      asio::ip::address_v4::bytes_type bytes = {10, 200, 3, 45};
      bytes[static_cast<size_t>(position)] = static_cast<unsigned char>(value);
      asio::ip::address_v4 address(bytes);
      for (uint16_t port : {0, 7, 80, 9999, 10000, 65535}) {
        EXPECT_EQ(endpointText(tcp::endpoint(address, port)),
                  address.to_string() + ":" + std::to_string(port));
      }
    }
  }
  EXPECT_EQ(endpointText(tcp::endpoint(asio::ip::make_address("255.255.255.255"), 65535)),
            "255.255.255.255:65535");
}

TEST(EndpointText, Ipv6InBrackets) {
  EXPECT_EQ(endpointText(tcp::endpoint(asio::ip::make_address("fd00::1"), 443)), "[fd00::1]:443");
  EXPECT_EQ(endpointText(tcp::endpoint(asio::ip::make_address("::ffff:10.0.0.1"), 80)),
            "[::ffff:10.0.0.1]:80");
}

}  // namespace
}  // namespace tcpsteer::apps::net
