// Asio/Beast names and socket helpers shared by egress-server and demo-client.
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <string>

namespace tcpsteer::apps::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
// Completion token for coroutines that look at error codes instead of catching exceptions.
inline constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);

// "10.0.0.1:80" or "[fd00::1]:443": the form logs, JSON lines and the filter use.
inline std::string endpointText(const tcp::endpoint& endpoint) {
  auto address = endpoint.address();
  if (address.is_v6()) return "[" + address.to_string() + "]:" + std::to_string(endpoint.port());
  return address.to_string() + ":" + std::to_string(endpoint.port());
}

}  // namespace tcpsteer::apps::net
