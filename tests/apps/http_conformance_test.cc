// egress-server as a hostile or merely unusual HTTP client finds it: pipelines whose request
// boundaries fall on the server's read size, Host rules (RFC 9112 §3.2), lingering close after an
// error (§9.6), the exact header limit, and the server-wide bound on memory for bodies.
#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/apps/server_fixture.h"

namespace tcpsteer::apps {
namespace {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;
using test_support::ServerFixture;

// A GET of exactly `size` bytes (>= 80), its target numbered, asking for JSON (whose answer names
// the path), padded in a header of its own.
std::string requestOfSize(size_t size, size_t number) {
  std::string head = "GET /p" + std::to_string(number) +
                     " HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\nX-Pad: ";
  const std::string tail = "\r\n\r\n";
  EXPECT_GE(size, head.size() + tail.size()) << size;
  return head + std::string(size - head.size() - tail.size(), 'a') + tail;
}

// `count` requests of `size` bytes, numbered from 0, back to back.
std::string pipelineOf(size_t size, size_t count) {
  std::string pipeline;
  for (size_t i = 0; i < count; ++i) pipeline += requestOfSize(size, i);
  return pipeline;
}

// Reads answers until `count` have come, the server closes, or the read times out; returns how
// many came in order, each answering the request of its number.
template <typename Stream>
size_t readAnswers(Stream& stream, size_t count) {
  boost::beast::flat_buffer buffer;
  for (size_t answered = 0; answered < count; ++answered) {
    http::response<http::string_body> response;
    boost::system::error_code ec;
    http::read(stream, buffer, response, ec);
    if (ec || response.result_int() != 200 ||
        response.body().find("\"path\":\"/p" + std::to_string(answered) + "\"") ==
            std::string::npos) {
      return answered;
    }
  }
  return count;
}

void setReceiveTimeout(int fd, int seconds) {
  timeval tv{seconds, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

// Request sizes whose boundaries land on the server's read size (4,096) and its multiples, or
// next to them; each pipeline is long enough to cross several reads.
std::vector<std::pair<size_t, size_t>> pipelineShapes() {
  std::vector<std::pair<size_t, size_t>> shapes;
  const std::vector<size_t> sizes = {128, 256, 512, 1024, 1365, 1366, 2048, 4095, 4096, 4097, 8192};
  shapes.reserve(sizes.size());
  for (size_t size : sizes) {
    shapes.emplace_back(size, std::min<size_t>(size_t{3} * 16384 / size + 2, 400));
  }
  return shapes;
}

// Every request sent in one write is answered, whatever the read boundaries (the keep-alive wait
// once waited for a new edge while a full read had left bytes in the socket).
TEST_F(ServerFixture, PipelinedRequestsOnReadBoundariesAreAllAnswered) {
  ServerOptions options;
  options.idle_timeout = 1500ms;  // a stuck pipeline is closed soon, and the test fails soon
  startServer(options);
  for (auto [size, count] : pipelineShapes()) {
    SCOPED_TRACE(std::to_string(count) + " x " + std::to_string(size));
    const std::string pipeline = pipelineOf(size, count);
    asio::io_context io;
    tcp::socket socket(io);
    socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), ports_[0]));
    setReceiveTimeout(socket.native_handle(), 3);
    std::thread writer([&] {
      boost::system::error_code ignored;
      asio::write(socket, asio::buffer(pipeline), ignored);
    });
    EXPECT_EQ(readAnswers(socket, count), count);
    boost::system::error_code ignored;
    socket.shutdown(tcp::socket::shutdown_both, ignored);  // a writer the server stopped reading
    writer.join();
  }
}

// The same over TLS: the TLS engine reads records of up to 16 KiB from the socket.
TEST_F(ServerFixture, PipelinedRequestsOverTlsAreAllAnswered) {
  ServerOptions options;
  options.idle_timeout = 1500ms;
  startServer(options);
  for (auto [size, count] : pipelineShapes()) {
    SCOPED_TRACE(std::to_string(count) + " x " + std::to_string(size));
    const std::string pipeline = pipelineOf(size, count);
    asio::io_context io;
    ssl::context tls(ssl::context::tls_client);
    ssl::stream<tcp::socket> stream(io, tls);
    stream.next_layer().connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), ports_[1]));
    setReceiveTimeout(stream.next_layer().native_handle(), 3);
    stream.handshake(ssl::stream_base::client);
    // One TLS write per 16 KiB record, all before reading: the pipeline as one burst.
    asio::write(stream, asio::buffer(pipeline));
    EXPECT_EQ(readAnswers(stream, count), count);
  }
}

// A request and then whatever the server sends until it closes (or 3 s), over one connection;
// `more` keeps being sent from another thread, as a client still sending a body would.
std::string exchangeWhileSending(uint16_t port, const std::string& request, size_t more = 0) {
  asio::io_context io;
  tcp::socket socket(io);
  socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  setReceiveTimeout(socket.native_handle(), 3);
  std::thread writer([&] {
    boost::system::error_code ignored;
    asio::write(socket, asio::buffer(request), ignored);
    std::string chunk(16384, 'z');
    for (size_t sent = 0; sent < more && !ignored; sent += chunk.size())
      asio::write(socket, asio::buffer(chunk), ignored);
  });
  std::string answer;
  boost::system::error_code ec;
  asio::read(socket, asio::dynamic_buffer(answer), ec);
  socket.shutdown(tcp::socket::shutdown_both, ec);
  writer.join();
  return answer;
}

std::string statusLine(const std::string& answer) {
  return answer.substr(0, answer.find("\r\n"));
}

// RFC 9112 §3.2: HTTP/1.1 needs exactly one Host, no version may send two, and its value must be
// a uri-host with an optional port. Each refusal is 400 and closes the connection.
TEST_F(ServerFixture, HostFieldRulesGet400) {
  ServerOptions options;
  options.idle_timeout = 1000ms;  // a request wrongly kept alive ends the exchange soon
  startServer(options);
  const std::string next = "GET /next HTTP/1.1\r\nHost: x\r\n\r\n";
  for (const std::string& head : {
           std::string("GET / HTTP/1.1\r\n\r\n"),
           std::string("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
           std::string("GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n"),
           std::string("GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n"),
           std::string("GET / HTTP/1.1\r\nHost: a b\r\n\r\n"),
           std::string("GET / HTTP/1.1\r\nHost: caf\xc3\xa9\r\n\r\n"),
           std::string("GET / HTTP/1.1\r\nHost: a\"b\r\n\r\n"),
       }) {
    SCOPED_TRACE(head);
    std::string answer = rawExchange(head + next);
    EXPECT_EQ(statusLine(answer), "HTTP/1.1 400 Bad Request");
    EXPECT_EQ(answer.find("HTTP/1.1 200"), std::string::npos) << "the next request was answered";
  }
  for (const std::string& head : {
           std::string("GET / HTTP/1.0\r\n\r\n"),
           std::string("GET / HTTP/1.1\r\nHost:\r\nConnection: close\r\n\r\n"),
           std::string("GET / HTTP/1.1\r\nHost: [::1]:8080\r\nConnection: close\r\n\r\n"),
           std::string("GET / HTTP/1.1\r\nHost: api.example.com:443\r\nConnection: close\r\n\r\n"),
       }) {
    SCOPED_TRACE(head);
    EXPECT_EQ(statusLine(rawExchange(head)).substr(9), "200 OK");
  }
}

// RFC 9112 §9.6: after an error answer the server shuts its write side and reads on for a while,
// so a client still sending reads the answer instead of a reset (an immediate close with unread
// bytes sends a reset, and the reset can destroy the answer before the client reads it).
TEST_F(ServerFixture, ErrorAnswersSurviveAClientStillSending) {
  ServerOptions options;
  options.max_body_bytes = 1000;
  options.max_header_bytes = 1024;
  startServer(options);
  const size_t more = size_t{4} << 20;
  struct Case {
    std::string request;
    std::string status;
  };
  for (const Case& c : {
           Case{"GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 400 Bad Request"},
           Case{"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n",
                "HTTP/1.1 413 Payload Too Large"},
           Case{"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ",
                "HTTP/1.1 431 Request Header Fields Too Large"},
       }) {
    SCOPED_TRACE(c.status);
    for (int attempt = 0; attempt < 5; ++attempt)
      EXPECT_EQ(statusLine(exchangeWhileSending(ports_[0], c.request, more)), c.status);
  }
  EXPECT_TRUE(logged("\"status\":413"));
}

// --max-header-bytes is the exact size of the request line, the fields and the empty line: a head
// of that size is served, one byte more gets 431, whether it comes in one write or two.
TEST_F(ServerFixture, HeaderLimitIsExact) {
  for (uint32_t limit : {256U, 1024U, 8192U}) {
    SCOPED_TRACE(limit);
    ServerOptions options;
    options.max_header_bytes = limit;
    startServer(options);
    for (bool split : {false, true}) {
      for (size_t size : {size_t{limit}, size_t{limit} + 1}) {
        std::string request = requestOfSize(size, 1);
        request.insert(request.find("\r\nX-Pad"), "\r\nConnection: close");
        request.erase(request.find("X-Pad: ") + 7, 19);  // the inserted field's length
        ASSERT_EQ(request.size(), size);
        std::string answer =
            split ? rawExchange(request.substr(0, size / 2), 20ms, request.substr(size / 2))
                  : rawExchange(request);
        EXPECT_EQ(statusLine(answer).substr(9, 3), size <= limit ? "200" : "431")
            << size << (split ? " in two writes" : " in one write");
      }
    }
    TearDown();
    server_.reset();
  }
}

// Bodies are counted and dropped, never held: many connections sending large bodies at once grow
// the server's memory by its read buffers, not by the bodies (with string bodies 16 x 32 MiB
// took 512 MiB).
TEST_F(ServerFixture, LargeBodiesAreNotHeldInMemory) {
  if (std::getenv("TCPSTEER_SANITIZED") != nullptr &&
      std::string(std::getenv("TCPSTEER_SANITIZED")) == "1") {
    GTEST_SKIP() << "sanitizers multiply RSS; the bound is asserted in the plain build";
  }
  ServerOptions options;
  options.max_body_bytes = uint64_t{64} << 20;
  startServer(options);
  auto peakKib = [] {
    std::ifstream status("/proc/self/status");
    std::string line;
    while (std::getline(status, line))
      if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
    return 0L;
  };
  long before = peakKib();
  const size_t body = size_t{32} << 20;
  std::vector<std::thread> clients;
  clients.reserve(16);
  std::atomic<int> answered{0};
  for (int i = 0; i < 16; ++i) {
    clients.emplace_back([&] {
      std::string answer = exchangeWhileSending(
          ports_[0],
          "POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: " +
              std::to_string(body) + "\r\n\r\n",
          body);
      if (statusLine(answer) == "HTTP/1.1 200 OK") ++answered;
    });
  }
  for (auto& client : clients) client.join();
  EXPECT_EQ(answered.load(), 16);
  EXPECT_LT(peakKib() - before, 64 * 1024) << "KiB of peak memory grew while bodies came";
}

}  // namespace
}  // namespace tcpsteer::apps
