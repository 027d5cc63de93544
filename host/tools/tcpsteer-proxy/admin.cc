#include "host/tools/tcpsteer-proxy/admin.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "host/tools/tcpsteer-proxy/output.h"

namespace tcpsteer::proxy {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);
constexpr auto kExchangeTimeout = std::chrono::seconds(5);
constexpr size_t kMaxRequestHeaderBytes = 8192;

asio::awaitable<void> session(tcp::socket socket, Stats& stats) {
  beast::tcp_stream stream(std::move(socket));
  stream.expires_after(kExchangeTimeout);
  beast::flat_buffer buffer;
  http::request_parser<http::empty_body> parser;
  parser.header_limit(kMaxRequestHeaderBytes);
  parser.body_limit(0);
  auto [ec, n] = co_await http::async_read(stream, buffer, parser, kNoThrow);
  if (ec) co_return;  // timeout, malformed or closed: nothing to answer
  const auto& request = parser.get();
  http::response<http::string_body> response{http::status::ok, request.version()};
  std::string_view target = request.target();
  if (target == "/stats/prometheus") {
    response.set(http::field::content_type, "text/plain; version=0.0.4");
    response.body() = stats.prometheus();
  } else if (target == "/ready") {
    response.body() = "LIVE\n";
  } else {
    response.result(http::status::not_found);
    response.body() = "admin endpoints: /ready, /stats/prometheus\n";
  }
  response.keep_alive(false);
  response.prepare_payload();
  co_await http::async_write(stream, response, kNoThrow);
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
}

asio::awaitable<void> acceptLoop(tcp::acceptor& acceptor, Stats& stats) {
  asio::steady_timer backoff(acceptor.get_executor());
  while (acceptor.is_open()) {
    auto [ec, socket] = co_await acceptor.async_accept(kNoThrow);
    if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
    if (ec) {  // out of fds: wait a little rather than spin
      backoff.expires_after(std::chrono::milliseconds(100));
      co_await backoff.async_wait(kNoThrow);
      continue;
    }
    asio::co_spawn(acceptor.get_executor(), session(std::move(socket), stats),
                   [&stats](const std::exception_ptr& error) {
                     if (error) {
                       ++stats.session_errors;
                       emit("[admin] session ended by an error");
                     }
                   });
  }
}

}  // namespace

void startAdmin(tcp::acceptor& acceptor, Stats& stats) {
  asio::co_spawn(acceptor.get_executor(), acceptLoop(acceptor, stats),
                 [&stats](const std::exception_ptr& error) {
                   if (error) {
                     ++stats.session_errors;
                     emit("[admin] accept loop ended by an error");
                   }
                 });
}

}  // namespace tcpsteer::proxy
