#include "apps/egress-server/server.h"

#include <malloc.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <array>
#include <atomic>
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
#include <initializer_list>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string_view>
#include <thread>
#include <type_traits>
#include <unordered_set>

#include "apps/common/net.h"
#include "apps/egress-server/discarded_body.h"
#include "apps/egress-server/json_text.h"
#include "apps/egress-server/listeners.h"
#include "apps/egress-server/readiness_watch.h"

namespace tcpsteer::apps {
namespace {

using namespace net;  // asio, beast, http, ssl, tcp, kNoThrow, endpointText

constexpr std::chrono::milliseconds kFirstAcceptPause{5};
constexpr size_t kLogBatchBytes = size_t{64} * 1024;
constexpr std::chrono::milliseconds kLogDelay{20};
constexpr size_t kAnswersPerYield = 32;
constexpr size_t kReadBytes = 4096;  // one read of a waiting connection
// After an error answer (RFC 9112 §9.6): how long, and how much, the server still reads and
// discards from a client that may be sending, before it closes (nginx's lingering close).
constexpr std::chrono::milliseconds kLingerTime{2000};
constexpr size_t kLingerBytes = size_t{1} << 20;

// Request bodies are counted and dropped, never held (discarded_body.h).
using Request = http::request<DiscardedBody>;

// RFC 9112 §3.2 / RFC 3986 §3.2.2: a Host field value is uri-host [ ":" port ]; empty is allowed
// (a target without an authority). Refused: anything outside reg-name, IP-literal and port
// characters, such as spaces, quotes, control bytes and bytes >= 0x80. One table lookup a byte:
// this runs on every request.
constexpr std::array<bool, 256> kHostBytes = [] {
  std::array<bool, 256> allowed{};
  for (int c = 'a'; c <= 'z'; ++c) allowed[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) allowed[c] = true;
  for (int c = '0'; c <= '9'; ++c) allowed[c] = true;
  for (char c : std::string_view("-._~%!$&'()*+,;=:[]"))
    allowed[static_cast<unsigned char>(c)] = true;
  return allowed;
}();

bool validHost(std::string_view host) {
  return std::all_of(host.begin(), host.end(),
                     [](char c) { return kHostBytes[static_cast<unsigned char>(c)]; });
}

constexpr std::chrono::milliseconds kMaxAcceptPause{1000};

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

// Appends the current UTC time, "2026-12-02T08:30:01.123Z".
void appendIso8601(std::string& out) {
  auto now = std::chrono::system_clock::now();
  std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  // The seconds part changes once a second; formatting it per log line showed in profiles, and so
  // did snprintf for the milliseconds.
  thread_local std::time_t cached_seconds = -1;
  thread_local char cached_text[32];
  thread_local size_t cached_size = 0;
  if (seconds != cached_seconds) {
    std::tm utc{};
    gmtime_r(&seconds, &utc);
    cached_size = std::strftime(cached_text, sizeof(cached_text), "%Y-%m-%dT%H:%M:%S", &utc);
    cached_seconds = seconds;
  }
  const char fraction[5] = {'.', static_cast<char>('0' + millis / 100),
                            static_cast<char>('0' + millis / 10 % 10),
                            static_cast<char>('0' + millis % 10), 'Z'};
  out.append(cached_text, cached_size);
  out.append(fraction, sizeof(fraction));
}

std::string nowIso8601() {
  std::string text;
  appendIso8601(text);
  return text;
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

// What every worker shares: the options, the TLS context (read-only once set up; OpenSSL allows
// handshakes on one SSL_CTX from many threads) and the connection count behind --max-connections.
struct Shared {
  explicit Shared(ServerOptions o) : options(std::move(o)) {}
  ServerOptions options;
  ssl::context tls{ssl::context::tls_server};
  std::atomic<size_t> connections{0};
  std::mutex stdout_mutex;  // one worker's batch of lines at a time
};

// A connection's deadline, kept as a plain time point: a request sets it three or four times (idle,
// header, body, write), and re-arming an asio timer each time (cancel, queue, post the cancelled
// wait) cost more than the rest of the request. Each worker's sweeper closes the connections whose
// deadline passed, a few times per shortest timeout.
struct Conn {
  tcp::socket* socket = nullptr;
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
  const char* phase = "";  // what the deadline is for: the reason logged when it passes
  bool expired = false;
  // Waiting for a request, with the bytes of it received so far: a drain closes the ones with none.
  const beast::flat_buffer* waiting_with = nullptr;
  ReadinessWatch::Entry readiness;  // a plain keep-alive connection's place in its worker's watch

  void arm(const char* what, std::chrono::milliseconds timeout) {
    arm(what, timeout, std::chrono::steady_clock::now());
  }
  // With a clock reading the request already took: deadlines are kept to the sweeper's tick (5 ms
  // or more), so microseconds of parsing and answering need no reading of their own.
  void arm(const char* what, std::chrono::milliseconds timeout,
           std::chrono::steady_clock::time_point now) {
    phase = what;
    deadline = now + timeout;
  }
};

// The request fields the answer and the log use, found in one walk over the fields (each
// request[field] is a search of Beast's tree by name, case-insensitively: four of them were a tenth
// of the server's instructions per request).
struct RequestFields {
  std::string_view host;  // the first of each, as request[field] gives
  std::string_view accept;
  unsigned hosts = 0;  // RFC 9112 §3.2: exactly one in HTTP/1.1, at most one in HTTP/1.0
  bool transfer_encoding = false;
  bool content_length = false;

  static RequestFields of(const http::fields& header) {
    RequestFields found;
    found.fill(header);
    return found;
  }

 private:
  void fill(const http::fields& header) {
    bool seen_accept = false;
    for (const auto& field : header) {
      switch (field.name()) {
        case http::field::host:
          if (hosts++ == 0) host = field.value();
          break;
        case http::field::accept:
          if (!seen_accept) accept = field.value();
          seen_accept = true;
          break;
        case http::field::transfer_encoding:
          transfer_encoding = true;
          break;
        case http::field::content_length:
          content_length = true;
          break;
        default:
          break;
      }
    }
  }
};

// What every answer and request log line of one connection repeat, built once per connection: the
// identity headers, the start of the plain-text greeting, and the log line's parts around the
// request's own fields. All four in one allocation of its exact size (built as strings of their
// own, with temporaries and std::to_string, they cost 3,800 instructions a connection); per request
// each is one append.
class ConnText {
 public:
  ConnText(std::initializer_list<std::string_view> headers,
           std::initializer_list<std::string_view> hello,
           std::initializer_list<std::string_view> log_head,
           std::initializer_list<std::string_view> log_port) {
    size_t size = 0;
    for (auto parts : {headers, hello, log_head, log_port})
      for (std::string_view part : parts) size += part.size();
    text_.reserve(size);
    size_t part = 0;
    for (auto parts : {headers, hello, log_head, log_port}) {
      for (std::string_view piece : parts) text_ += piece;
      ends_[part++] = text_.size();
    }
  }
  // "\r\nServer: ...\r\nx-egress: ...\r\nx-egress-peer: <client>\r\nContent-Type: "
  std::string_view headers() const { return part(0); }
  // "Hello from <name> on port <port>!\nclient: <client>\nhost: "
  std::string_view hello() const { return part(1); }
  // {"client":"<client>","egress":<name>,"event":"request","host":
  std::string_view logHead() const { return part(2); }
  // ,"port":<port>,"sni":<sni>,"status":
  std::string_view logPort() const { return part(3); }

 private:
  std::string_view part(size_t index) const {
    size_t begin = index == 0 ? 0 : ends_[index - 1];
    return std::string_view(text_).substr(begin, ends_[index] - begin);
  }
  std::string text_;
  std::array<size_t, 4> ends_{};
};

// What every answer and log line of a worker repeat about the egress itself, built once.
struct EgressText {
  explicit EgressText(const std::string& name)
      : headers_head("\r\nServer: egress-server\r\nx-egress: " + name + "\r\nx-egress-peer: "),
        hello_head("Hello from " + name + " on port ") {
    appendJsonString(name_json, name);
  }
  std::string headers_head;  // "\r\nServer: egress-server\r\nx-egress: <name>\r\nx-egress-peer: "
  std::string hello_head;    // "Hello from <name> on port "
  std::string name_json;     // the name as a JSON string
};

// One event loop on one thread, the listening sockets it accepts from (one per address, sharing the
// port with the other loops': see listeners.h) and the connections it serves.
struct Worker {
  explicit Worker(Shared& s) : shared(s), options(s.options), tls(s.tls), egress(s.options.name) {}

  Shared& shared;
  const ServerOptions& options;
  ssl::context& tls;
  const EgressText egress;
  // Declared before io, so destroyed after it: io's destructor destroys the sessions still
  // pending, and their clean-up (unregistering, counting down) touches these.
  // This worker's connections; on drain the ones waiting for a request with none of it received are
  // closed at once, the others finish their request (within drain_timeout).
  std::unordered_set<Conn*> conns;
  bool busy_since_trim = false;
  size_t active = 0;  // this worker's sessions
  bool draining = false;
  bool logs_for_server = false;  // the loop that logs what concerns the whole server
  // stdout lines are batched: written when kLogBatchBytes have gathered or kLogDelay after the
  // first line of a batch, whichever comes first. Under load that is one write per 64 KiB instead
  // of one per event-loop turn (a write syscall per few requests, as many as the responses' own);
  // when quiet a line still reaches stdout within kLogDelay (logs and tests read them live).
  std::string pending_log;
  bool log_flush_posted = false;

  asio::io_context io{1};
  // Declared after io, so destroyed before it: they use its services.
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors;
  asio::steady_timer sweep_timer{io};
  asio::steady_timer drain_timer{io};
  asio::steady_timer log_timer{io};
  // Destroyed before io: it ends the coroutines of connections still waiting in it (see its
  // destructor), whose clean-up touches conns and the counts above.
  ReadinessWatch watch{io};

  void emit(const std::string& line) {
    if (options.log) {
      options.log(line);
      return;
    }
    pending_log += line;
    pending_log += '\n';
    scheduleFlush();
  }

  void scheduleFlush() {
    if (pending_log.size() >= kLogBatchBytes) {
      flushLog();
      return;
    }
    if (!log_flush_posted) {
      log_flush_posted = true;
      log_timer.expires_after(kLogDelay);
      log_timer.async_wait([this](boost::system::error_code ec) {
        if (!ec) flushLog();
      });
    }
  }

  void flushLog() {
    if (log_flush_posted) {
      log_flush_posted = false;
      log_timer.cancel();
    }
    if (pending_log.empty()) return;
    {
      std::lock_guard<std::mutex> lock(shared.stdout_mutex);
      std::fwrite(pending_log.data(), 1, pending_log.size(), stdout);
      std::fflush(stdout);
    }
    pending_log.clear();
  }

  void log(nlohmann::json event) {
    event["ts"] = nowIso8601();
    event["egress"] = options.name;
    emit(event.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  }

  // The "connection" event of every accepted connection, hand-written like logRequest (same keys,
  // order and format as log() produces).
  void logConnection(uint16_t port, const std::string& client, std::string_view protocol) {
    std::string own_line;
    std::string& line = options.log ? own_line : pending_log;
    line += "{\"client\":";
    appendJsonString(line, client);
    line += ",\"egress\":";
    line += egress.name_json;
    line += ",\"event\":\"connection\",\"port\":";
    appendDecimal(line, port);
    line += ",\"protocol\":";
    appendJsonString(line, protocol);
    line += ",\"ts\":\"";
    appendIso8601(line);
    line += "\"}";
    finishLine(own_line);
  }

  void finishLine(const std::string& own_line) {
    if (options.log) {
      options.log(own_line);
      return;
    }
    pending_log += '\n';
    scheduleFlush();
  }

  // Escaped once per connection: the SNI is the client's own text, and an IPv6 peer's zone is an
  // interface name, which may hold quotes or backslashes.
  ConnText connText(uint16_t port, const std::string& client, const std::string& sni) const {
    std::string port_text;
    appendDecimal(port_text, port);
    std::string client_json;
    appendJsonString(client_json, client);
    std::string sni_json;
    appendJsonString(sni_json, sni);
    return ConnText({egress.headers_head, client, "\r\nContent-Type: "},
                    {egress.hello_head, port_text, "!\nclient: ", client, "\nhost: "},
                    {"{\"client\":", client_json, ",\"egress\":", egress.name_json,
                     ",\"event\":\"request\",\"host\":"},
                    {",\"port\":", port_text, ",\"sni\":", sni_json, ",\"status\":"});
  }

  // The "request" event, written without nlohmann::json (see appendJsonString); same keys, order
  // and format as log() produces.
  void logRequest(const ConnText& text, std::string_view method, std::string_view target,
                  std::string_view host, bool is_tls, unsigned status) {
    // Written straight into the pending stdout batch: no line of its own to allocate and copy.
    std::string own_line;
    std::string& line = options.log ? own_line : pending_log;
    line += text.logHead();
    appendJsonString(line, host);
    line += ",\"method\":";
    appendJsonString(line, method);
    line += text.logPort();
    appendDecimal(line, status);
    line += ",\"target\":";
    appendJsonString(line, target);
    line += is_tls ? ",\"tls\":true,\"ts\":\"" : ",\"tls\":false,\"ts\":\"";
    line += stamp_;  // the answer's own time
    line += "\"}";
    finishLine(own_line);
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

  // Closes connections whose deadline passed: their pending operation ends with operation_aborted
  // and the session, seeing `expired`, logs the phase as the reason.
  asio::awaitable<void> sweep() {
    std::chrono::milliseconds shortest =
        std::min({options.header_timeout, options.body_timeout, options.idle_timeout});
    auto tick =
        std::clamp(shortest / 4, std::chrono::milliseconds(5), std::chrono::milliseconds(100));
    for (;;) {
      sweep_timer.expires_after(tick);
      auto [ec] = co_await sweep_timer.async_wait(kNoThrow);
      if (ec) co_return;
      // After a burst, hand the freed memory back once the worker is idle (TLS sessions leave
      // tens of KB each in malloc's free lists).
      if (conns.empty() && busy_since_trim) {
        busy_since_trim = false;
        malloc_trim(0);
      }
      auto now = std::chrono::steady_clock::now();
      for (Conn* conn : conns) {
        if (conn->deadline <= now && !conn->expired) {
          conn->expired = true;
          boost::system::error_code ignored;
          conn->socket->cancel(ignored);
          watch.cancel(conn->readiness);
        }
      }
    }
  }

  asio::awaitable<void> acceptLoop(tcp::acceptor& acceptor) {
    uint16_t port = acceptor.local_endpoint().port();
    // After a failed accept (EMFILE: out of file descriptors, ENFILE, ENOBUFS, ...) the pending
    // connection stays in the backlog and the next accept fails at once: without a pause the loop
    // spins at 100% CPU and logs without end. The pause doubles up to 1 s and ends with the first
    // accepted connection; each pause is one log line.
    std::chrono::milliseconds pause{0};
    asio::steady_timer pause_timer(io);
    while (!draining) {
      // The peer's address comes back from accept itself: no getpeername per connection.
      tcp::endpoint peer;
      auto [ec, socket] = co_await acceptor.async_accept(peer, kNoThrow);
      if (ec) {
        if (ec == asio::error::operation_aborted || draining) co_return;
        pause = std::min<std::chrono::milliseconds>(std::max(pause * 2, kFirstAcceptPause),
                                                    kMaxAcceptPause);
        log({{"event", "accept_error"},
             {"port", port},
             {"error", ec.message()},
             {"pausing_ms", pause.count()}});
        pause_timer.expires_after(pause);
        co_await pause_timer.async_wait(kNoThrow);
        continue;  // keep serving the connections we have
      }
      pause = std::chrono::milliseconds{0};
      asio::co_spawn(io, session(std::move(socket), port, peer), asio::detached);
    }
  }

  asio::awaitable<void> session(tcp::socket socket, uint16_t port, tcp::endpoint peer) {
    boost::system::error_code ignored;
    std::string client = endpointText(peer);
    if (shared.connections.fetch_add(1) >= options.max_connections) {
      shared.connections.fetch_sub(1);
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
      Worker* worker;
      ~Release() {
        --worker->active;
        worker->shared.connections.fetch_sub(1);
        if (worker->draining && worker->active == 0) worker->io.stop();
      }
    } release{this};

    socket.non_blocking(true, ignored);  // writeAll's first try must not block
    Conn conn;
    conn.socket = &socket;
    conns.insert(&conn);
    busy_since_trim = true;
    struct Unregister {
      Worker* worker;
      Conn* conn;
      ~Unregister() {
        worker->conns.erase(conn);
        worker->watch.remove(conn->readiness);
      }
    } unregister{this, &conn};
    beast::flat_buffer buffer;
    // From the first byte to the end of the headers (or the TLS handshake): the header timeout.
    conn.arm("header timeout", options.header_timeout);
    Protocol protocol = Protocol::kNone;
    while (protocol == Protocol::kNone && buffer.size() < 16) {
      // Waiting for the first bytes counts as waiting for a request: a drain closes it.
      conn.waiting_with = &buffer;
      auto [ec, n] = co_await socket.async_read_some(buffer.prepare(kReadBytes), kNoThrow);
      conn.waiting_with = nullptr;
      if (ec || (draining && n == 0)) {
        log({{"event", "connection"},
             {"port", port},
             {"client", client},
             {"protocol", "none"},
             {"closed", conn.expired ? conn.phase
                        : draining   ? "draining"
                                     : ec.message()}});
        co_return;
      }
      buffer.commit(n);
      auto data = buffer.cdata();
      protocol = classify(std::string_view(static_cast<const char*>(data.data()), data.size()));
    }
    if (protocol == Protocol::kNone) protocol = Protocol::kRaw;
    logConnection(port, client, protocolName(protocol));

    // Every path ends by returning: the socket's destructor closes it, and the close sends the FIN.
    // No shutdown() before it: a system call per connection (1-4 % of a new connection's CPU time
    // measured) that changes nothing, since bytes the client sent and we never read turn the
    // close into a reset either way.
    if (protocol == Protocol::kRaw) {
      std::string answer = "Hello from " + options.name + " on port " + std::to_string(port) +
                           "! Received " + std::to_string(buffer.size()) + " bytes from " + client +
                           "\n";
      conn.arm("write timeout", options.idle_timeout);
      co_await writeAll(socket, answer);
      co_return;
    }
    if (protocol == Protocol::kHttp) {
      co_await serveHttp(socket, conn, buffer, port, client, "", false);
      co_return;
    }
    ssl::stream<tcp::socket&> tls_stream(socket, tls);
    auto [ec, used] =
        co_await tls_stream.async_handshake(ssl::stream_base::server, buffer.data(), kNoThrow);
    if (ec) {
      log({{"event", "tls_handshake_failed"},
           {"port", port},
           {"client", client},
           {"error", conn.expired ? conn.phase : ec.message()}});
      co_return;
    }
    buffer.consume(used);
    const char* sni = SSL_get_servername(tls_stream.native_handle(), TLSEXT_NAMETYPE_host_name);
    co_await serveHttp(tls_stream, conn, buffer, port, client, sni != nullptr ? sni : "", true);
    if (conn.expired) co_return;
    conn.arm("tls shutdown", std::chrono::milliseconds(1000));
    co_await tls_stream.async_shutdown(kNoThrow);
  }

  template <typename Stream>
  asio::awaitable<void> serveHttp(Stream& stream, Conn& conn, beast::flat_buffer& buffer,
                                  uint16_t port, const std::string& client, const std::string& sni,
                                  bool is_tls) {
    std::string response;  // reused by every answer of the connection
    const ConnText text = connText(port, client, sni);
    std::chrono::steady_clock::time_point answered_at;  // when the last answer was written
    for (bool first = true;; first = false) {
      if (draining && !first) co_return;
      // Between requests the idle timeout runs until the next request's first byte; from there the
      // header timeout covers its headers and the body timeout its body, for every request.
      if (!first && buffer.size() == 0) {
        conn.arm("idle keep-alive timeout", options.idle_timeout, answered_at);
        conn.waiting_with = &buffer;
        auto [idle_ec, got] = co_await readIdle(stream, conn, buffer);
        conn.waiting_with = nullptr;
        if (idle_ec && conn.expired) {
          log({{"event", "closed"},
               {"port", port},
               {"client", client},
               {"reason", "idle keep-alive timeout"}});
          co_return;
        }
        if (idle_ec) co_return;
        buffer.commit(got);
      }
      auto request_start = std::chrono::steady_clock::now();
      conn.arm("header timeout", options.header_timeout, request_start);
      http::request_parser<DiscardedBody> parser;
      // Beast's own limit stops a header that keeps growing, but lets a few dozen bytes past it;
      // the exact limit is checked on the header's size below.
      parser.header_limit(options.max_header_bytes);
      parser.body_limit(options.max_body_bytes);
      // Usually the whole header came with the first read: parse it from the buffer without another
      // asynchronous operation. Otherwise (or for the rest of a split header) read on.
      boost::system::error_code ec;
      size_t n = 0;
      size_t header_bytes = 0;  // the request line, the fields and the empty line
      RequestFields fields;
      if (buffer.size() != 0) {
        header_bytes = parser.put(buffer.data(), ec);
        buffer.consume(header_bytes);
        if (ec == http::error::need_more) ec = {};
      }
      if (!ec && !parser.is_header_done()) {
        conn.waiting_with = &buffer;
        std::tie(ec, n) = co_await http::async_read_header(stream, buffer, parser, kNoThrow);
        conn.waiting_with = nullptr;
        header_bytes += n;
      }
      if (!ec && header_bytes > options.max_header_bytes) ec = http::error::header_limit;
      if (!ec) {
        // RFC 9112 6.3: a request whose final transfer coding is not chunked (or that has both
        // Transfer-Encoding and Content-Length) has no reliable length: 400 and close, so no byte
        // of its body can be read as another request.
        fields = RequestFields::of(parser.get());
        if (fields.hosts > 1 || (fields.hosts == 0 && parser.get().version() >= 11) ||
            !validHost(fields.host)) {
          co_await refuse(stream, conn, text, port, client, http::status::bad_request,
                          "malformed request: HTTP/1.1 needs exactly one valid Host field\n",
                          fields.hosts > 1    ? "more than one host"
                          : fields.hosts == 0 ? "no host"
                                              : "invalid host");
          co_return;
        }
        if (fields.transfer_encoding && (!parser.chunked() || fields.content_length)) {
          co_await refuse(stream, conn, text, port, client, http::status::bad_request,
                          "malformed request: Transfer-Encoding must end with chunked, without "
                          "Content-Length\n",
                          "bad transfer-encoding");
          co_return;
        }
        // A request without a body (most GETs) is complete with its headers.
        if (!parser.is_done()) {
          conn.arm("body timeout", options.body_timeout);
          std::tie(ec, n) = co_await http::async_read(stream, buffer, parser, kNoThrow);
          request_start = {};  // the body took its time: the write deadline reads the clock
        }
      }
      if (ec && conn.expired) {
        log({{"event", "closed"}, {"port", port}, {"client", client}, {"reason", conn.phase}});
        co_return;
      }
      if (ec == http::error::end_of_stream || ec == asio::error::eof ||
          ec == asio::error::operation_aborted || ec == asio::error::connection_reset) {
        co_return;
      }
      if (ec == http::error::header_limit) {
        co_await refuse(stream, conn, text, port, client,
                        http::status::request_header_fields_too_large,
                        "request headers too large\n", ec.message());
        co_return;
      }
      if (ec == http::error::body_limit) {
        co_await refuse(
            stream, conn, text, port, client, http::status::payload_too_large,
            "request body larger than " + std::to_string(options.max_body_bytes) + " bytes\n",
            ec.message());
        co_return;
      }
      if (ec) {
        co_await refuse(stream, conn, text, port, client, http::status::bad_request,
                        "malformed request: " + ec.message() + "\n", ec.message());
        co_return;
      }
      auto& request = parser.get();
      // The parser's own flag: request.keep_alive() searches the fields for Connection again.
      bool keep_alive = parser.keep_alive() && !draining;
      // One timestamp for the answer and the log line.
      stamp_.clear();
      appendIso8601(stamp_);
      unsigned status =
          respond(response, text, request, fields, port, client, sni, is_tls, keep_alive);
      // A client that does not read its answer gets the idle timeout.
      answered_at = request_start == std::chrono::steady_clock::time_point{}
                        ? std::chrono::steady_clock::now()
                        : request_start;
      conn.arm("write timeout", options.idle_timeout, answered_at);
      // The usual case, the whole answer taken by one non-blocking write, needs no coroutine call.
      boost::system::error_code write_ec;
      size_t written = tryWrite(stream, response, write_ec);
      if (!write_ec && written < response.size()) {
        write_ec = co_await writeAll(stream, response, written);
        answered_at = std::chrono::steady_clock::now();  // the write waited for the client
      }
      logRequest(text, request.method_string(), request.target(), fields.host, is_tls, status);
      if (write_ec || !keep_alive) co_return;
      // Under load asio's loop never sleeps (completions are always queued, so it polls epoll with
      // a zero timeout), and the kernel preempted it mid-batch about 2,000 times in 4 s, leaving
      // the connections of that batch waiting (p99 ~5-8 ms). Giving the CPU up at a point of our
      // choosing every kAnswersPerYield answers measured p99 3.2-3.4 ms and 2 % more req/s.
      if (++answers_since_yield_ >= kAnswersPerYield) {
        answers_since_yield_ = 0;
        std::this_thread::yield();
      }
    }
  }

  // The first bytes of a keep-alive connection's next request. Plain TCP waits in the worker's
  // readiness watch and then reads once (see readiness_watch.h); TLS (whose engine may hold bytes
  // already read) and a connection the watch could not take read through asio.
  template <typename Stream>
  asio::awaitable<std::tuple<boost::system::error_code, size_t>> readIdle(
      Stream& stream, Conn& conn, beast::flat_buffer& buffer) {
    if constexpr (std::is_same_v<Stream, tcp::socket>) {
      if (conn.readiness.id != 0 || watch.add(conn.readiness, stream.native_handle())) {
        for (;;) {
          auto [ec] = co_await watch.asyncReadable(conn.readiness, kNoThrow);
          if (ec) co_return std::tuple{ec, size_t{0}};
          size_t got = stream.read_some(buffer.prepare(kReadBytes), ec);
          if (ec == asio::error::would_block) continue;
          // A read that filled its buffer may have left bytes in the socket, and no new edge
          // will announce them: the next wait must read first.
          if (!ec && got == kReadBytes) watch.markReadable(conn.readiness);
          co_return std::tuple{ec, got};
        }
      }
    }
    co_return co_await stream.async_read_some(buffer.prepare(kReadBytes), kNoThrow);
  }

  // Writes all of data. On plain TCP it first tries a non-blocking write, which takes the whole of
  // a small answer into the socket buffer in one call, with no asynchronous operation; the
  // asynchronous write (under the connection's deadline) is for what does not fit.
  template <typename Stream>
  static size_t tryWrite(Stream& stream, const std::string& data, boost::system::error_code& ec) {
    if constexpr (std::is_same_v<Stream, tcp::socket>) {
      size_t written = stream.write_some(asio::buffer(data), ec);
      if (ec == asio::error::would_block) ec = {};
      return written;
    } else {
      return 0;  // TLS: only the asynchronous write
    }
  }

  template <typename Stream>
  asio::awaitable<boost::system::error_code> writeAll(Stream& stream, const std::string& data,
                                                      size_t written = 0) {
    if (written == 0) {
      boost::system::error_code ec;
      written = tryWrite(stream, data, ec);
      if (ec) co_return ec;
      if (written == data.size()) co_return boost::system::error_code{};
    }
    auto [ec, more] = co_await asio::async_write(
        stream, asio::buffer(data.data() + written, data.size() - written), kNoThrow);
    co_return ec;
  }

  // An error answer, then the connection closes (nothing after a bad request is trusted).
  template <typename Stream>
  asio::awaitable<void> refuse(Stream& stream, Conn& conn, const ConnText& text, uint16_t port,
                               const std::string& client, http::status status,
                               const std::string& body, const std::string& error) {
    std::string response;
    writeResponse(response, 11, status, text, "text/plain", body, false, false);
    conn.arm("write timeout", std::chrono::milliseconds(5000));
    boost::system::error_code ec = co_await writeAll(stream, response);
    log({{"event", "request"},
         {"port", port},
         {"client", client},
         {"status", static_cast<unsigned>(status)},
         {"error", error}});
    if (!ec) co_await lingeringClose(beast::get_lowest_layer(stream), conn);
  }

  // RFC 9112 §9.6: closing while the client still sends turns the close into a reset, and a
  // reset can destroy the answer in the client's receive queue before it reads it. So the write
  // side is shut first (the client reads the answer, then end of stream), and what the client
  // still sends is read and discarded for up to kLingerTime or kLingerBytes. On TLS this skips
  // close_notify: the answer has a Content-Length and "Connection: close", so it is complete.
  asio::awaitable<void> lingeringClose(tcp::socket& socket, Conn& conn) {
    boost::system::error_code ec;
    socket.shutdown(tcp::socket::shutdown_send, ec);
    if (ec) co_return;
    conn.arm("lingering close", kLingerTime);
    std::array<char, kReadBytes> discarded{};
    for (size_t total = 0; total < kLingerBytes;) {
      auto [read_ec, n] = co_await socket.async_read_some(asio::buffer(discarded), kNoThrow);
      if (read_ec) co_return;  // end of stream, reset, or the deadline
      total += n;
    }
  }

  // The answer to a good request, serialized into out; returns its status.
  unsigned respond(std::string& out, const ConnText& text, const Request& request,
                   const RequestFields& fields, uint16_t port, const std::string& client,
                   const std::string& sni, bool is_tls, bool keep_alive) {
    std::string_view target = request.target();
    const char* type = "text/plain";
    body_.clear();
    if (target == "/healthz") {
      body_ = "ok\n";
    } else if (fields.accept.find("application/json") != std::string_view::npos) {
      type = "application/json";
      body_ = nlohmann::json{{"egress", options.name},
                             {"port", port},
                             {"client", client},
                             {"host", std::string(fields.host)},
                             {"sni", sni},
                             {"tls", is_tls},
                             {"method", std::string(request.method_string())},
                             {"path", std::string(target)},
                             {"time", stamp_}}
                  .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      body_ += '\n';
    } else {
      body_ += text.hello();
      body_ += fields.host;
      body_ += "\nsni: ";
      body_ += sni.empty() ? "-" : sni;
      body_ += "\ntime: ";
      body_ += stamp_;
      body_ += '\n';
    }
    writeResponse(out, request.version(), http::status::ok, text, type, body_, keep_alive,
                  request.method() == http::verb::head);
    return 200;
  }

  // The whole response as one buffer, written with one async_write. Hand-written because Beast's
  // serializer walks its buffer-sequence views per byte range: with its fields container it was
  // about half of the server's instructions per keep-alive request (callgrind). Every answer names
  // the egress and the address it saw the connection come from (behind a gateway: the gateway's).
  // Keep-alive follows HTTP/1.x: 1.1 says close when closing, 1.0 says keep-alive when keeping.
  void writeResponse(std::string& out, unsigned version, http::status status, const ConnText& text,
                     std::string_view type, std::string_view body, bool keep_alive, bool head) {
    out.clear();
    if (status == http::status::ok) {
      out += version == 10 ? "HTTP/1.0 200 OK" : "HTTP/1.1 200 OK";
    } else {
      out += version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
      out += std::to_string(static_cast<unsigned>(status));
      out += ' ';
      out += http::obsolete_reason(status);
    }
    out += text.headers();
    out += type;
    out += "\r\nContent-Length: ";
    appendDecimal(out, body.size());
    if (!keep_alive && version != 10) out += "\r\nConnection: close";
    if (keep_alive && version == 10) out += "\r\nConnection: keep-alive";
    out += "\r\n\r\n";
    if (!head) out += body;
  }

  size_t answers_since_yield_ = 0;  // this worker's answers since it last yielded the CPU
  // respond()'s scratch: it runs without suspending, so the worker's sessions can share it (each
  // keeps its own response buffer, which lives across the write).
  std::string body_;
  std::string stamp_;  // the current request's time, for its answer and its log line
};

struct EgressServer::Impl {
  explicit Impl(ServerOptions options) : shared(std::move(options)) {
    size_t threads = shared.options.threads;
    if (threads == 0) threads = std::max(1U, std::thread::hardware_concurrency());
    for (size_t i = 0; i < threads; ++i) workers.push_back(std::make_unique<Worker>(shared));
    workers[0]->logs_for_server = true;
  }
  Worker& first() { return *workers[0]; }

  Shared shared;
  std::vector<std::unique_ptr<Worker>> workers;
};

EgressServer::EgressServer(ServerOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}
EgressServer::~EgressServer() = default;

bool EgressServer::start(std::string* error) {
  Worker& first = impl_->first();
  if (first.options.name.empty()) {
    *error = "the server needs a name: --name egress1 or SERVER_NAME=egress1";
    return false;
  }
  if (!first.setUpTls(error)) return false;
  std::vector<asio::io_context*> loops;
  for (auto& worker : impl_->workers) loops.push_back(&worker->io);
  for (const std::string& listen : first.options.listen) {
    tcp::endpoint endpoint;
    if (!parseListen(listen, &endpoint)) {
      *error = "--listen '" + listen + "' is not ADDRESS:PORT, e.g. 0.0.0.0:8080 or [::]:8443";
      return false;
    }
    boost::system::error_code ec;
    auto acceptors = listenOnEveryLoop(endpoint, loops, ec);
    if (ec) {
      *error = "cannot listen on " + listen + ": " + ec.message();
      return false;
    }
    first.log({{"event", "listening"},
               {"address", endpointText(acceptors.front()->local_endpoint())},
               {"threads", impl_->workers.size()}});
    for (size_t i = 0; i < acceptors.size(); ++i)
      impl_->workers[i]->acceptors.push_back(std::move(acceptors[i]));
  }
  for (auto& worker : impl_->workers) {
    for (auto& acceptor : worker->acceptors)
      asio::co_spawn(worker->io, worker->acceptLoop(*acceptor), asio::detached);
  }
  for (auto& worker : impl_->workers) asio::co_spawn(worker->io, worker->sweep(), asio::detached);
  return true;
}

void EgressServer::run() {
  std::vector<std::thread> threads;
  for (size_t i = 1; i < impl_->workers.size(); ++i) {
    threads.emplace_back([worker = impl_->workers[i].get()] {
      // A worker with no connection yet has nothing queued: the guard keeps run() from returning
      // until stop() or the end of a drain.
      auto guard = asio::make_work_guard(worker->io);
      worker->io.run();
      worker->flushLog();
    });
  }
  impl_->first().io.run();
  impl_->first().flushLog();  // lines of the last turn (io.stop() skips the posted flush)
  for (auto& thread : threads) thread.join();
}

void EgressServer::drain() {
  for (auto& owned : impl_->workers) {
    asio::post(owned->io, [worker = owned.get()] {
      if (worker->draining) return;
      worker->draining = true;
      boost::system::error_code ignored;
      if (worker->logs_for_server) {
        worker->log({{"event", "draining"},
                     {"active_connections", worker->shared.connections.load()},
                     {"deadline_ms", worker->options.drain_timeout.count()}});
      }
      for (auto& acceptor : worker->acceptors) acceptor->close(ignored);
      for (Conn* conn : worker->conns) {
        if (conn->waiting_with != nullptr && conn->waiting_with->size() == 0) {
          conn->socket->cancel(ignored);
          worker->watch.cancel(conn->readiness);
        }
      }
      if (worker->active == 0) {
        worker->io.stop();
        return;
      }
      worker->drain_timer.expires_after(worker->options.drain_timeout);
      worker->drain_timer.async_wait([worker](boost::system::error_code ec) {
        if (!ec) {
          worker->log({{"event", "drain_deadline"}, {"abandoned_connections", worker->active}});
          worker->io.stop();
        }
      });
    });
  }
}

void EgressServer::stop() {
  for (auto& worker : impl_->workers) worker->io.stop();
}

std::vector<uint16_t> EgressServer::boundPorts() const {
  std::vector<uint16_t> ports;
  for (const auto& acceptor : impl_->workers[0]->acceptors)
    ports.push_back(acceptor->local_endpoint().port());
  return ports;
}

size_t EgressServer::activeConnections() const {
  return impl_->shared.connections.load();
}
boost::asio::io_context& EgressServer::context() {
  return impl_->first().io;
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
