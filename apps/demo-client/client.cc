#include "apps/demo-client/client.h"

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <nlohmann/json.hpp>

#include "apps/common/net.h"

namespace tcpsteer::apps {
namespace {

using namespace net;  // asio, beast, http, ssl, tcp, kNoThrow, endpointText
using Clock = std::chrono::steady_clock;

class Attempt {
 public:
  Attempt(const ClientOptions& options, std::string scheme, Exchange& out)
      : options_(options), scheme_(std::move(scheme)), out_(out) {}

  asio::awaitable<void> run(asio::io_context& io) {
    uint16_t port = scheme_ == "https" ? options_.https_port
                    : scheme_ == "raw"
                        ? (options_.raw_port != 0 ? options_.raw_port : options_.http_port)
                        : options_.http_port;
    const std::string& dial =
        options_.connect_address.empty() ? options_.target : options_.connect_address;
    stage_ = "resolving " + dial;
    tcp::resolver resolver(io);
    auto [resolve_ec, results] =
        co_await resolver.async_resolve(dial, std::to_string(port), kNoThrow);
    if (resolve_ec) {
      fail("DNS lookup of " + dial + " failed: " + resolve_ec.message());
      co_return;
    }
    beast::tcp_stream stream(io);
    stream.expires_at(deadline_);
    boost::system::error_code ec;
    for (const auto& entry : results) {
      tcp::endpoint endpoint = entry.endpoint();
      stage_ = "connecting to " + endpointText(endpoint);
      stream.socket().close(ec);
      stream.socket().open(endpoint.protocol(), ec);
      if (ec) continue;
      if (!options_.bind_address.empty()) {
        auto local = asio::ip::make_address(options_.bind_address, ec);
        if (!ec) stream.socket().bind(tcp::endpoint(local, 0), ec);
        if (ec) {
          fail("cannot use source address " + options_.bind_address + ": " + ec.message());
          co_return;
        }
      }
      std::tie(ec) = co_await stream.async_connect(endpoint, kNoThrow);
      out_.peer = endpointText(endpoint);
      if (!ec) break;
    }
    if (ec) {
      if (ec == asio::error::connection_refused) {
        fail("connection refused by " + out_.peer + " (nothing listening there?)");
      } else {
        failWith(ec);
      }
      co_return;
    }
    if (scheme_ == "raw") {
      co_await raw(stream);
    } else if (scheme_ == "http") {
      co_await exchange(stream);
    } else {
      ssl::context tls(ssl::context::tls_client);
      tls.set_default_verify_paths(ec);
      if (!options_.ca_file.empty()) {
        tls.load_verify_file(options_.ca_file, ec);
        if (ec) {
          fail("cannot load --ca " + options_.ca_file + ": " + ec.message());
          co_return;
        }
      }
      beast::ssl_stream<beast::tcp_stream> tls_stream(std::move(stream), tls);
      if (options_.insecure) {
        tls_stream.set_verify_mode(ssl::verify_none);
      } else {
        tls_stream.set_verify_mode(ssl::verify_peer);
        tls_stream.set_verify_callback(ssl::host_name_verification(options_.target));
      }
      SSL_set_tlsext_host_name(tls_stream.native_handle(), options_.target.c_str());
      stage_ = "TLS handshake with " + out_.peer;
      auto [handshake_ec] = co_await tls_stream.async_handshake(ssl::stream_base::client, kNoThrow);
      if (handshake_ec) {
        long verify = SSL_get_verify_result(tls_stream.native_handle());
        if (verify != X509_V_OK) {
          fail("TLS certificate verification failed for " + options_.target + ": " +
               X509_verify_cert_error_string(verify) +
               " (use --ca FILE or --insecure for demo certificates)");
        } else {
          failWith(handshake_ec);
        }
        co_return;
      }
      co_await exchange(tls_stream);
    }
  }

  void start(Clock::time_point deadline) { deadline_ = deadline; }

 private:
  void fail(const std::string& reason) {
    out_.ok = false;
    out_.error = reason;
  }

  void failWith(const boost::system::error_code& ec) {
    if (ec == beast::error::timeout || ec == asio::error::timed_out ||
        ec == asio::error::operation_aborted) {
      fail("timed out after " + std::to_string(options_.timeout.count()) + " ms while " + stage_);
    } else {
      fail(stage_ + " failed: " + ec.message());
    }
  }

  template <typename Stream>
  asio::awaitable<void> exchange(Stream& stream) {
    http::request<http::empty_body> request{http::verb::get, options_.path, 11};
    request.set(http::field::host, options_.target);
    request.set(http::field::user_agent, "tcpsteer-demo-client");
    request.set(http::field::accept, "*/*");
    request.keep_alive(false);
    stage_ = "sending the request to " + out_.peer;
    auto [write_ec, written] = co_await http::async_write(stream, request, kNoThrow);
    if (write_ec) {
      failWith(write_ec);
      co_return;
    }
    stage_ = "waiting for the response from " + out_.peer;
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(std::uint64_t{1024} * 1024);
    auto [read_ec, read] = co_await http::async_read(stream, buffer, parser, kNoThrow);
    if (read_ec) {
      failWith(read_ec);
      co_return;
    }
    auto& response = parser.get();
    out_.status = response.result_int();
    out_.egress = std::string(response["x-egress"]);
    out_.seen_as = std::string(response["x-egress-peer"]);
    if (out_.egress.empty()) out_.egress = egressFromBody(response.body());
    out_.ok = true;
  }

  asio::awaitable<void> raw(beast::tcp_stream& stream) {
    std::string hello = "ping from tcpsteer demo-client\n";
    stage_ = "sending to " + out_.peer;
    auto [write_ec, written] = co_await asio::async_write(stream, asio::buffer(hello), kNoThrow);
    if (write_ec) {
      failWith(write_ec);
      co_return;
    }
    stage_ = "waiting for the answer from " + out_.peer;
    std::string answer;
    auto [read_ec, read] = co_await asio::async_read(
        stream, asio::dynamic_buffer(answer, std::size_t{64} * 1024), kNoThrow);
    if (read_ec && read_ec != asio::error::eof) {
      failWith(read_ec);
      co_return;
    }
    out_.egress = egressFromBody(answer);
    if (answer.empty()) {
      fail("the server at " + out_.peer + " closed the connection without answering");
      co_return;
    }
    out_.ok = true;
  }

  const ClientOptions& options_;
  std::string scheme_;
  Exchange& out_;
  std::string stage_;
  Clock::time_point deadline_;
};

}  // namespace

std::string egressFromBody(const std::string& body) {
  constexpr std::string_view kHello = "Hello from ";
  if (size_t at = body.find(kHello); at != std::string::npos) {
    size_t start = at + kHello.size();
    size_t end = body.find_first_of(" !\n", start);
    return body.substr(start, end == std::string::npos ? std::string::npos : end - start);
  }
  auto json = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (json.is_object() && json.contains("egress") && json["egress"].is_string())
    return json["egress"];
  return "";
}

Exchange fetch(const ClientOptions& options, const std::string& scheme) {
  Exchange out;
  out.scheme = scheme;
  asio::io_context io;
  Attempt attempt(options, scheme, out);
  auto started = Clock::now();
  attempt.start(started + options.timeout);
  bool finished = false;
  asio::co_spawn(io, attempt.run(io), [&finished](const std::exception_ptr&) { finished = true; });
  io.run_for(options.timeout + std::chrono::milliseconds(100));
  if (!finished) {
    out.ok = false;
    out.error = "timed out after " + std::to_string(options.timeout.count()) + " ms resolving " +
                options.target;
  }
  out.latency_ms = std::chrono::duration<double, std::milli>(Clock::now() - started).count();
  return out;
}

}  // namespace tcpsteer::apps
