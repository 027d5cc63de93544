// Asio/Beast names and socket helpers shared by egress-server and demo-client.
#pragma once

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <charconv>
#include <string>

namespace tcpsteer::apps::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
// Completion token for coroutines that look at error codes instead of catching exceptions.
inline constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);

// "10.0.0.1:80" or "[fd00::1]:443": the form logs, JSON lines and the filter use. IPv4 is written
// with std::to_chars: asio's to_string goes through inet_ntop and sprintf, about 2,000
// instructions, a tenth of what egress-server spends on a whole new connection (callgrind).
inline std::string endpointText(const tcp::endpoint& endpoint) {
  auto address = endpoint.address();
  if (address.is_v6()) return "[" + address.to_string() + "]:" + std::to_string(endpoint.port());
  std::array<char, 21> text{};  // "255.255.255.255:65535"
  char* out = text.data();
  char* end = text.data() + text.size();
  const auto bytes = address.to_v4().to_bytes();
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (i != 0) *out++ = '.';
    out = std::to_chars(out, end, static_cast<unsigned>(bytes[i])).ptr;
  }
  *out++ = ':';
  out = std::to_chars(out, end, static_cast<unsigned>(endpoint.port())).ptr;
  return {text.data(), out};
}

}  // namespace tcpsteer::apps::net
