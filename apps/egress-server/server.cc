#include "apps/egress-server/server.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string_view>

#include "apps/common/net.h"

namespace tcpsteer::apps {
namespace {

using namespace net;  // asio, beast, http, ssl, tcp, kNoThrow, endpointText

enum class Protocol { kTls, kHttp, kRaw, kNone };

const char* protocolName(Protocol p) {
  switch (p) {
    case Protocol::kTls:
      return "tls";
    case Protocol::kHttp:
      return "http";
    case Protocol::kRaw:
      return "raw";
    case Protocol::kNone:
      return "none";
  }
  return "none";
}

std::string nowIso8601() {
  auto now = std::chrono::system_clock::now();
  std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  // The seconds part changes once a second; formatting it per log line showed in profiles.
  thread_local std::time_t cached_seconds = -1;
  thread_local char cached_text[40];
  if (seconds != cached_seconds) {
    std::tm utc{};
    gmtime_r(&seconds, &utc);
    std::strftime(cached_text, sizeof(cached_text), "%Y-%m-%dT%H:%M:%S", &utc);
    cached_seconds = seconds;
  }
  char full[48];
  std::snprintf(full, sizeof(full), "%s.%03dZ", cached_text, static_cast<int>(millis));
  return full;
}

// A JSON string literal. Hand-written for the per-request log line, the server's hot path: building
// and dumping a nlohmann::json object per request took about a quarter of the server's CPU
// (callgrind). Bytes >= 0x80 are written as \u00XX (their Latin-1 reading), so any request bytes
// give valid JSON and none are lost.
void appendJsonString(std::string& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  for (char c : text) {
    auto byte = static_cast<unsigned char>(c);
    if (byte == '"' || byte == '\\') {
      out += '\\';
      out += c;
    } else if (byte < 0x20 || byte >= 0x80) {
      out += "\\u00";
      out += kHex[byte >> 4];
      out += kHex[byte & 0xf];
    } else {
      out += c;
    }
  }
  out += '"';
}

// "0.0.0.0:8080", "[::]:8443", "127.0.0.1:0".
bool parseListen(const std::string& text, tcp::endpoint* out) {
  size_t colon = text.rfind(':');
  if (colon == std::string::npos) return false;
  std::string host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  boost::system::error_code ec;
  auto address = asio::ip::make_address(host, ec);
  if (ec) return false;
  try {
    size_t used = 0;
    int port = std::stoi(text.substr(colon + 1), &used);
    if (used != text.size() - colon - 1 || port < 0 || port > 65535) return false;
    *out = tcp::endpoint(address, static_cast<uint16_t>(port));
  } catch (const std::exception&) {
    return false;
  }
  return true;
}

constexpr std::string_view kMethods[] = {"GET ",   "HEAD ",    "POST ",  "PUT ",    "DELETE ",
                                         "PATCH ", "OPTIONS ", "TRACE ", "CONNECT "};

// Decides from the first bytes; kNone = need more bytes.
Protocol classify(std::string_view bytes) {
  if (bytes.empty()) return Protocol::kNone;
  if (static_cast<unsigned char>(bytes[0]) == 0x16) return Protocol::kTls;  // TLS handshake record
  bool could_be_method = false;
  for (std::string_view method : kMethods) {
    if (bytes.starts_with(method)) return Protocol::kHttp;
    if (method.starts_with(bytes)) could_be_method = true;
  }
  return could_be_method ? Protocol::kNone : Protocol::kRaw;
}

}  // namespace

struct EgressServer::Impl {
  explicit Impl(ServerOptions o) : options(std::move(o)) {
    if (!options.log) {
      options.log = [this](const std::string& line) { bufferLogLine(line); };
    }
  }

  // stdout lines are written once per event-loop turn: a line reaches stdout within one turn (logs
  // and tests read them live), and a busy server makes one write for many requests instead of one
  // write per line.
  std::mutex log_mutex;
  std::string pending_log;
  bool log_flush_posted = false;

  void bufferLogLine(const std::string& line) {
    std::lock_guard<std::mutex> lock(log_mutex);
    pending_log += line;
    pending_log += '\n';
    if (!log_flush_posted) {
      log_flush_posted = true;
      asio::post(io, [this] { flushLog(); });
    }
  }

  void flushLog() {
    std::lock_guard<std::mutex> lock(log_mutex);
    log_flush_posted = false;
    if (pending_log.empty()) return;
    std::fwrite(pending_log.data(), 1, pending_log.size(), stdout);
    std::fflush(stdout);
    pending_log.clear();
  }

  ServerOptions options;
  asio::io_context io{1};
  ssl::context tls{ssl::context::tls_server};
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors;
  // Sessions waiting for a request, with the bytes of it received so far: on drain the ones with
  // none are closed at once, the others finish their request (within drain_timeout).
  std::map<beast::tcp_stream*, const beast::flat_buffer*> waiting;
  size_t active = 0;
  bool draining = false;
  asio::steady_timer drain_timer{io};

  void log(nlohmann::json event) {
    event["ts"] = nowIso8601();
    event["egress"] = options.name;
    options.log(event.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  }

  // The "request" event, written without nlohmann::json (see appendJsonString); same keys, order
  // and format as log() produces.
  void logRequest(uint16_t port, const std::string& client, std::string_view method,
                  std::string_view target, std::string_view host, const std::string& sni,
                  bool is_tls, unsigned status) {
    std::string line;
    line.reserve(256);
    line += "{\"client\":";
    appendJsonString(line, client);
    line += ",\"egress\":";
    appendJsonString(line, options.name);
    line += ",\"event\":\"request\",\"host\":";
    appendJsonString(line, host);
    line += ",\"method\":";
    appendJsonString(line, method);
    line += ",\"port\":" + std::to_string(port) + ",\"sni\":";
    appendJsonString(line, sni);
    line += ",\"status\":" + std::to_string(status) + ",\"target\":";
    appendJsonString(line, target);
    line += is_tls ? ",\"tls\":true,\"ts\":" : ",\"tls\":false,\"ts\":";
    appendJsonString(line, nowIso8601());
    line += '}';
    options.log(line);
  }

  bool setUpTls(std::string* error) {
    tls.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                    ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    boost::system::error_code ec;
    if (!options.tls_cert_file.empty() || !options.tls_key_file.empty()) {
      if (options.tls_cert_file.empty() || options.tls_key_file.empty()) {
        *error =
            "--tls-cert and --tls-key go together: give both, or neither for a generated "
            "certificate";
        return false;
      }
      tls.use_certificate_chain_file(options.tls_cert_file, ec);
      if (ec) {
        *error = "cannot use certificate " + options.tls_cert_file + ": " + ec.message();
        return false;
      }
      tls.use_private_key_file(options.tls_key_file, ssl::context::pem, ec);
      if (ec) {
        *error = "cannot use private key " + options.tls_key_file + ": " + ec.message();
        return false;
      }
      return true;
    }
    GeneratedCertificate generated = generateSelfSignedCertificate(options.name);
    tls.use_certificate_chain(asio::buffer(generated.certificate_pem), ec);
    if (!ec) tls.use_private_key(asio::buffer(generated.private_key_pem), ssl::context::pem, ec);
    if (ec) {
      *error = "cannot install the generated certificate: " + ec.message();
      return false;
    }
    log({{"event", "tls"},
         {"message",
          "no --tls-cert/--tls-key given: generated an ephemeral self-signed certificate for " +
              options.name + ", localhost, 127.0.0.1"}});
    return true;
  }

  asio::awaitable<void> acceptLoop(tcp::acceptor& acceptor) {
    uint16_t port = acceptor.local_endpoint().port();
    while (!draining) {
      auto [ec, socket] = co_await acceptor.async_accept(kNoThrow);
      if (ec) {
        if (ec == asio::error::operation_aborted || draining) co_return;
        log({{"event", "accept_error"}, {"port", port}, {"error", ec.message()}});
        continue;  // e.g. EMFILE: keep serving the connections we have
      }
      asio::co_spawn(io, session(std::move(socket), port), asio::detached);
    }
  }

  asio::awaitable<void> session(tcp::socket socket, uint16_t port) {
    boost::system::error_code ignored;
    auto remote = socket.remote_endpoint(ignored);
    std::string client = ignored ? "unknown" : endpointText(remote);
    if (active >= options.max_connections) {
      log({{"event", "connection_refused"},
           {"port", port},
           {"client", client},
           {"reason", "connection limit reached"},
           {"max_connections", options.max_connections}});
      socket.close(ignored);
      co_return;
    }
    ++active;
    struct Release {
      Impl* impl;
      ~Release() {
        --impl->active;
        if (impl->draining && impl->active == 0) impl->io.stop();
      }
    } release{this};

    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer;
    stream.expires_after(options.header_timeout);
    Protocol protocol = Protocol::kNone;
    while (protocol == Protocol::kNone && buffer.size() < 16) {
      auto [ec, n] = co_await stream.async_read_some(buffer.prepare(4096), kNoThrow);
      if (ec) {
        log({{"event", "connection"},
             {"port", port},
             {"client", client},
             {"protocol", "none"},
             {"closed", ec == beast::error::timeout ? "header timeout" : ec.message()}});
        co_return;
      }
      buffer.commit(n);
      auto data = buffer.cdata();
      protocol = classify(std::string_view(static_cast<const char*>(data.data()), data.size()));
    }
    if (protocol == Protocol::kNone) protocol = Protocol::kRaw;
    log({{"event", "connection"},
         {"port", port},
         {"client", client},
         {"protocol", protocolName(protocol)}});

    if (protocol == Protocol::kRaw) {
      std::string answer = "Hello from " + options.name + " on port " + std::to_string(port) +
                           "! Received " + std::to_string(buffer.size()) + " bytes from " + client +
                           "\n";
      co_await asio::async_write(stream, asio::buffer(answer), kNoThrow);
      stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
      co_return;
    }
    if (protocol == Protocol::kHttp) {
      co_await serveHttp(stream, buffer, port, client, "", false);
      stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
      co_return;
    }
    beast::ssl_stream<beast::tcp_stream> tls_stream(std::move(stream), tls);
    auto [ec, used] =
        co_await tls_stream.async_handshake(ssl::stream_base::server, buffer.data(), kNoThrow);
    if (ec) {
      log({{"event", "tls_handshake_failed"},
           {"port", port},
           {"client", client},
           {"error", ec.message()}});
      co_return;
    }
    buffer.consume(used);
    const char* sni = SSL_get_servername(tls_stream.native_handle(), TLSEXT_NAMETYPE_host_name);
    co_await serveHttp(tls_stream, buffer, port, client, sni != nullptr ? sni : "", true);
    beast::get_lowest_layer(tls_stream).expires_after(std::chrono::seconds(1));
    co_await tls_stream.async_shutdown(kNoThrow);
  }

  template <typename Stream>
  asio::awaitable<void> serveHttp(Stream& stream, beast::flat_buffer& buffer, uint16_t port,
                                  const std::string& client, const std::string& sni, bool is_tls) {
    auto& lowest = beast::get_lowest_layer(stream);
    for (bool first = true;; first = false) {
      if (draining && !first) co_return;
      // Between requests the idle timeout runs until the next request's first byte; from there the
      // header timeout covers its headers and the body timeout its body, for every request.
      if (!first && buffer.size() == 0) {
        lowest.expires_after(options.idle_timeout);
        waiting[&lowest] = &buffer;
        auto [idle_ec, got] = co_await stream.async_read_some(buffer.prepare(4096), kNoThrow);
        waiting.erase(&lowest);
        if (idle_ec == beast::error::timeout) {
          log({{"event", "closed"},
               {"port", port},
               {"client", client},
               {"reason", "idle keep-alive timeout"}});
          co_return;
        }
        if (idle_ec) co_return;
        buffer.commit(got);
      }
      lowest.expires_after(options.header_timeout);
      http::request_parser<http::string_body> parser;
      parser.header_limit(options.max_header_bytes);
      parser.body_limit(options.max_body_bytes);
      waiting[&lowest] = &buffer;
      auto [ec, n] = co_await http::async_read_header(stream, buffer, parser, kNoThrow);
      waiting.erase(&lowest);
      const char* timeout_reason = "header timeout";
      if (!ec) {
        // RFC 9112 6.3: a request whose final transfer coding is not chunked (or that has both
        // Transfer-Encoding and Content-Length) has no reliable length: 400 and close, so no byte
        // of its body can be read as another request.
        const auto& header = parser.get();
        bool has_te = header.count(http::field::transfer_encoding) != 0;
        if (has_te && (!parser.chunked() || header.count(http::field::content_length) != 0)) {
          co_await refuse(stream, port, client, http::status::bad_request,
                          "malformed request: Transfer-Encoding must end with chunked, without "
                          "Content-Length\n",
                          "bad transfer-encoding");
          co_return;
        }
        lowest.expires_after(options.body_timeout);
        timeout_reason = "body timeout";
        std::tie(ec, n) = co_await http::async_read(stream, buffer, parser, kNoThrow);
      }
      if (ec == http::error::end_of_stream || ec == asio::error::eof ||
          ec == asio::error::operation_aborted || ec == asio::error::connection_reset) {
        co_return;
      }
      if (ec == beast::error::timeout) {
        log({{"event", "closed"}, {"port", port}, {"client", client}, {"reason", timeout_reason}});
        co_return;
      }
      if (ec == http::error::header_limit) {
        co_await refuse(stream, port, client, http::status::request_header_fields_too_large,
                        "request headers too large\n", ec.message());
        co_return;
      }
      if (ec == http::error::body_limit) {
        co_await refuse(
            stream, port, client, http::status::payload_too_large,
            "request body larger than " + std::to_string(options.max_body_bytes) + " bytes\n",
            ec.message());
        co_return;
      }
      if (ec) {
        co_await refuse(stream, port, client, http::status::bad_request,
                        "malformed request: " + ec.message() + "\n", ec.message());
        co_return;
      }
      auto& request = parser.get();
      http::response<http::string_body> res = respond(request, port, client, sni, is_tls);
      res.keep_alive(request.keep_alive() && !draining);
      lowest.expires_after(options.idle_timeout);
      auto [write_ec, written] = co_await http::async_write(stream, res, kNoThrow);
      logRequest(port, client, request.method_string(), request.target(),
                 request[http::field::host], sni, is_tls, res.result_int());
      if (write_ec || !res.keep_alive()) co_return;
    }
  }

  // Every answer names the egress and the address it saw the connection come from (behind a
  // gateway: the gateway's).
  void setIdentity(http::response<http::string_body>& res, const std::string& client) const {
    res.set(http::field::server, "egress-server");
    res.set("x-egress", options.name);
    res.set("x-egress-peer", client);
  }

  // An error answer, then the connection closes (nothing after a bad request is trusted).
  template <typename Stream>
  asio::awaitable<void> refuse(Stream& stream, uint16_t port, const std::string& client,
                               http::status status, std::string body, const std::string& error) {
    http::response<http::string_body> res{status, 11};
    setIdentity(res, client);
    res.set(http::field::content_type, "text/plain");
    res.body() = std::move(body);
    res.keep_alive(false);
    res.prepare_payload();
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(5));
    co_await http::async_write(stream, res, kNoThrow);
    log({{"event", "request"},
         {"port", port},
         {"client", client},
         {"status", res.result_int()},
         {"error", error}});
  }

  http::response<http::string_body> respond(const http::request<http::string_body>& request,
                                            uint16_t port, const std::string& client,
                                            const std::string& sni, bool is_tls) {
    http::response<http::string_body> res{http::status::ok, request.version()};
    setIdentity(res, client);
    std::string target(request.target());
    if (target == "/healthz") {
      res.set(http::field::content_type, "text/plain");
      res.body() = "ok\n";
    } else if (std::string(request[http::field::accept]).find("application/json") !=
               std::string::npos) {
      res.set(http::field::content_type, "application/json");
      res.body() = nlohmann::json{{"egress", options.name},
                                  {"port", port},
                                  {"client", client},
                                  {"host", std::string(request[http::field::host])},
                                  {"sni", sni},
                                  {"tls", is_tls},
                                  {"method", std::string(request.method_string())},
                                  {"path", target},
                                  {"time", nowIso8601()}}
                       .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) +
                   "\n";
    } else {
      res.set(http::field::content_type, "text/plain");
      res.body() = "Hello from " + options.name + " on port " + std::to_string(port) + "!\n" +
                   "client: " + client + "\nhost: " + std::string(request[http::field::host]) +
                   "\nsni: " + (sni.empty() ? "-" : sni) + "\ntime: " + nowIso8601() + "\n";
    }
    if (request.method() == http::verb::head) {
      res.content_length(res.body().size());
      res.body().clear();
    } else {
      res.prepare_payload();
    }
    return res;
  }
};

EgressServer::EgressServer(ServerOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}
EgressServer::~EgressServer() = default;

bool EgressServer::start(std::string* error) {
  if (impl_->options.name.empty()) {
    *error = "the server needs a name: --name egress1 or SERVER_NAME=egress1";
    return false;
  }
  if (!impl_->setUpTls(error)) return false;
  for (const std::string& listen : impl_->options.listen) {
    tcp::endpoint endpoint;
    if (!parseListen(listen, &endpoint)) {
      *error = "--listen '" + listen + "' is not ADDRESS:PORT, e.g. 0.0.0.0:8080 or [::]:8443";
      return false;
    }
    auto acceptor = std::make_unique<tcp::acceptor>(impl_->io);
    boost::system::error_code ec;
    acceptor->open(endpoint.protocol(), ec);
    if (!ec) acceptor->set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor->bind(endpoint, ec);
    if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      *error = "cannot listen on " + listen + ": " + ec.message();
      return false;
    }
    impl_->log({{"event", "listening"}, {"address", endpointText(acceptor->local_endpoint())}});
    impl_->acceptors.push_back(std::move(acceptor));
  }
  for (auto& acceptor : impl_->acceptors) {
    asio::co_spawn(impl_->io, impl_->acceptLoop(*acceptor), asio::detached);
  }
  return true;
}

void EgressServer::run() {
  impl_->io.run();
  impl_->flushLog();  // lines of the last turn (io.stop() skips the posted flush)
}

void EgressServer::drain() {
  asio::post(impl_->io, [impl = impl_.get()] {
    if (impl->draining) return;
    impl->draining = true;
    impl->log({{"event", "draining"},
               {"active_connections", impl->active},
               {"deadline_ms", impl->options.drain_timeout.count()}});
    boost::system::error_code ignored;
    for (auto& acceptor : impl->acceptors) acceptor->close(ignored);
    for (auto [stream, received] : impl->waiting) {
      if (received->size() == 0) stream->socket().cancel(ignored);
    }
    if (impl->active == 0) {
      impl->io.stop();
      return;
    }
    impl->drain_timer.expires_after(impl->options.drain_timeout);
    impl->drain_timer.async_wait([impl](boost::system::error_code ec) {
      if (!ec) {
        impl->log({{"event", "drain_deadline"}, {"abandoned_connections", impl->active}});
        impl->io.stop();
      }
    });
  });
}

void EgressServer::stop() {
  impl_->io.stop();
}

std::vector<uint16_t> EgressServer::boundPorts() const {
  std::vector<uint16_t> ports;
  for (const auto& acceptor : impl_->acceptors) ports.push_back(acceptor->local_endpoint().port());
  return ports;
}

size_t EgressServer::activeConnections() const {
  return impl_->active;
}
boost::asio::io_context& EgressServer::context() {
  return impl_->io;
}

GeneratedCertificate generateSelfSignedCertificate(const std::string& common_name) {
  GeneratedCertificate out;
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), static_cast<long>(std::time(nullptr)));
  X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert), 60L * 60 * 24 * 30);
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1,
                             0);
  X509_set_issuer_name(cert, name);
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
  std::string san = "DNS:" + common_name + ",DNS:localhost,IP:127.0.0.1";
  if (X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, NID_subject_alt_name, san.c_str())) {
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
  }
  X509_sign(cert, key, EVP_sha256());
  auto pem = [](auto write) {
    BIO* bio = BIO_new(BIO_s_mem());
    write(bio);
    char* data = nullptr;
    long size = BIO_get_mem_data(bio, &data);
    std::string text(data, static_cast<size_t>(size));
    BIO_free(bio);
    return text;
  };
  out.certificate_pem = pem([&](BIO* bio) { PEM_write_bio_X509(bio, cert); });
  out.private_key_pem = pem(
      [&](BIO* bio) { PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr); });
  X509_free(cert);
  EVP_PKEY_free(key);
  return out;
}

}  // namespace tcpsteer::apps
