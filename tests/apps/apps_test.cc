// egress-server and demo-client over real sockets on loopback (ephemeral ports).
#include <sys/resource.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <boost/asio.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <thread>

#include "apps/demo-client/client.h"
#include "apps/egress-server/server.h"
#include "tests/apps/server_fixture.h"

namespace tcpsteer::apps {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;
using test_support::ServerFixture;

TEST_F(ServerFixture, HttpAnswersWithEgressName) {
  startServer();
  Exchange exchange = fetch(client(), "http");
  ASSERT_TRUE(exchange.ok) << exchange.error;
  EXPECT_EQ(exchange.status, 200);
  EXPECT_EQ(exchange.egress, "egress1");
  EXPECT_TRUE(logged("\"event\":\"request\""));
  EXPECT_TRUE(logged("\"protocol\":\"http\""));
}

// The request log line is written by hand (the hot path); it must be the JSON log() would write.
TEST_F(ServerFixture, RequestLogLineIsValidJsonWithTheUsualLayout) {
  startServer();
  std::string answer =
      rawExchange("GET /plain?a=1 HTTP/1.1\r\nHost: api.example\r\nConnection: close\r\n\r\n");
  ASSERT_NE(answer.find("200 OK"), std::string::npos) << answer;
  // The plain-text answer names the egress, its port, the peer and the host.
  const std::string port = std::to_string(ports_[0]);
  EXPECT_NE(answer.find("\r\nx-egress: egress1\r\nx-egress-peer: 127.0.0.1:"), std::string::npos)
      << answer;
  EXPECT_NE(answer.find("\r\n\r\nHello from egress1 on port " + port + "!\nclient: 127.0.0.1:"),
            std::string::npos)
      << answer;
  EXPECT_NE(answer.find("\nhost: api.example\nsni: -\ntime: "), std::string::npos) << answer;
  answer = rawExchange(
      "GET /odd/caf\xc3\xa9\"q\\z HTTP/1.1\r\nHost: api.example\r\nConnection: close\r\n\r\n");
  ASSERT_TRUE(logged("\"target\":\"/odd"));
  std::vector<std::string> lines;
  {
    std::lock_guard<std::mutex> lock(log_mutex_);
    for (const auto& line : log_)
      if (line.find("\"event\":\"request\"") != std::string::npos) lines.push_back(line);
  }
  ASSERT_EQ(lines.size(), 2u);
  // ASCII only: parsing and dumping again gives the same bytes (same keys, order, format as log()).
  nlohmann::json plain = nlohmann::json::parse(lines[0]);
  EXPECT_EQ(plain.dump(), lines[0]);
  EXPECT_EQ(plain["host"], "api.example");
  EXPECT_EQ(plain["target"], "/plain?a=1");
  EXPECT_EQ(plain["method"], "GET");
  EXPECT_EQ(plain["status"], 200);
  EXPECT_EQ(plain["tls"], false);
  EXPECT_EQ(plain["egress"], "egress1");
  // Quotes, backslashes and bytes >= 0x80 are escaped (the latter as their Latin-1 reading; a Host
  // with such bytes is refused, RFC 9112 §3.2, so the target carries them).
  nlohmann::json odd = nlohmann::json::parse(lines[1]);
  EXPECT_EQ(odd["target"], "/odd/caf\u00c3\u00a9\"q\\z");
  EXPECT_NE(lines[1].find(R"(\u00c3\u00a9\"q\\z)"), std::string::npos) << lines[1];
  EXPECT_EQ(plain["port"], ports_[0]);
  EXPECT_EQ(plain["sni"], "");
  EXPECT_EQ(plain["client"].get<std::string>().rfind("127.0.0.1:", 0), 0u) << lines[0];
  // The connection line too.
  std::string connection_line;
  {
    std::lock_guard<std::mutex> lock(log_mutex_);
    for (const auto& line : log_)
      if (line.find("\"event\":\"connection\"") != std::string::npos) connection_line = line;
  }
  ASSERT_FALSE(connection_line.empty());
  nlohmann::json connection = nlohmann::json::parse(connection_line);
  EXPECT_EQ(connection.dump(), connection_line);
  EXPECT_EQ(connection["egress"], "egress1");
  EXPECT_EQ(connection["port"], ports_[0]);
  EXPECT_EQ(connection["protocol"], "http");
  EXPECT_EQ(connection["client"].get<std::string>().rfind("127.0.0.1:", 0), 0u) << connection_line;
}

TEST_F(ServerFixture, HttpsWithVerification) {
  startServer();
  ClientOptions verified = client("localhost");
  verified.ca_file = ca_file_;
  Exchange ok = fetch(verified, "https");
  ASSERT_TRUE(ok.ok) << ok.error;
  EXPECT_EQ(ok.egress, "egress1");
  EXPECT_TRUE(logged("\"sni\":\"localhost\""));

  Exchange refused = fetch(client("localhost"), "https");  // no CA: self-signed is not trusted
  EXPECT_FALSE(refused.ok);
  EXPECT_NE(refused.error.find("certificate verification failed"), std::string::npos)
      << refused.error;

  ClientOptions insecure = client("127.0.0.1");
  insecure.insecure = true;
  Exchange unverified = fetch(insecure, "https");
  ASSERT_TRUE(unverified.ok) << unverified.error;
  EXPECT_EQ(unverified.egress, "egress1");
}

TEST_F(ServerFixture, RawTcpGetsTheSeedLine) {
  startServer();
  Exchange exchange = fetch(client(), "raw");
  ASSERT_TRUE(exchange.ok) << exchange.error;
  EXPECT_EQ(exchange.egress, "egress1");
  std::string answer = rawExchange("hello there\n");
  EXPECT_EQ(answer.rfind("Hello from egress1 on port " + std::to_string(ports_[0]) + "!", 0), 0u)
      << answer;
}

TEST_F(ServerFixture, MalformedRequestGets400) {
  startServer();
  EXPECT_EQ(rawExchange("GET /\r\n\r\n").rfind("HTTP/1.1 400", 0), 0u);
  EXPECT_EQ(rawExchange("GET / HTTP/1.1\r\nno colon here\r\n\r\n").rfind("HTTP/1.1 400", 0), 0u);
}

TEST_F(ServerFixture, OversizedHeadersGet431) {
  ServerOptions options;
  options.max_header_bytes = 1024;
  startServer(options);
  std::string answer =
      rawExchange("GET / HTTP/1.1\r\nX-Big: " + std::string(4000, 'a') + "\r\n\r\n");
  EXPECT_EQ(answer.rfind("HTTP/1.1 431", 0), 0u) << answer.substr(0, 40);
}

// Request smuggling (RFC 9112 6.3): a Transfer-Encoding whose final coding is not chunked, or one
// beside Content-Length, is refused with 400 and the connection closed, so the bytes after the
// headers are never read as a second request.
TEST_F(ServerFixture, AmbiguousBodyLengthGets400AndClose) {
  startServer();
  for (const std::string& coding : {"xchunked", "identity", "chunked, identity", "gzip"}) {
    std::string answer = rawExchange("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: " + coding +
                                     "\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_EQ(answer.rfind("HTTP/1.1 400", 0), 0u) << coding << ": " << answer.substr(0, 40);
    EXPECT_EQ(answer.find("HTTP/1.1", 1), std::string::npos) << coding << ": a second response";
  }
  std::string both = rawExchange(
      "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"
      "0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(both.rfind("HTTP/1.1 400", 0), 0u) << both.substr(0, 40);
  EXPECT_EQ(both.find("HTTP/1.1", 1), std::string::npos);
  std::string chunked = rawExchange(
      "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
      "3\r\nabc\r\n0\r\n\r\n");
  EXPECT_EQ(chunked.rfind("HTTP/1.1 200", 0), 0u) << chunked.substr(0, 40);
  EXPECT_FALSE(logged("/smuggled"));
}

TEST_F(ServerFixture, OversizedBodyGets413) {
  ServerOptions options;
  options.max_body_bytes = 100;
  startServer(options);
  std::string answer = rawExchange("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" +
                                   std::string(1000, 'b'));
  EXPECT_EQ(answer.rfind("HTTP/1.1 413", 0), 0u) << answer.substr(0, 40);
  std::string fits =
      rawExchange("POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 100\r\n\r\n" +
                  std::string(100, 'b'));
  EXPECT_EQ(fits.rfind("HTTP/1.1 200", 0), 0u) << fits.substr(0, 40);
}

// Every request's headers get the header timeout (a keep-alive request cannot trickle them until
// the idle timeout), and a body has its own timeout.
TEST_F(ServerFixture, HeaderAndBodyTimeoutsApplyToEveryRequest) {
  ServerOptions options;
  options.header_timeout = 300ms;
  options.body_timeout = 300ms;
  options.idle_timeout = 20s;
  startServer(options);
  auto started = std::chrono::steady_clock::now();
  std::string answer = rawExchange("GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost");
  EXPECT_EQ(answer.rfind("HTTP/1.1 200", 0), 0u);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 2500ms);
  EXPECT_TRUE(logged("header timeout"));
  started = std::chrono::steady_clock::now();
  EXPECT_EQ(rawExchange("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc"), "");
  EXPECT_LT(std::chrono::steady_clock::now() - started, 2500ms);
  EXPECT_TRUE(logged("body timeout"));
}

TEST_F(ServerFixture, ReportsThePeerAddressItSaw) {
  startServer();
  std::string answer = rawExchange("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_NE(answer.find("x-egress-peer: 127.0.0.1:"), std::string::npos) << answer;
  std::string json = rawExchange(
      "GET / HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\nConnection: close\r\n\r\n");
  EXPECT_NE(json.find("\"client\":\"127.0.0.1:"), std::string::npos) << json;
  EXPECT_NE(rawExchange("hello\n").find("from 127.0.0.1:"), std::string::npos);
}

TEST_F(ServerFixture, SlowAndIdleClientsAreClosed) {
  ServerOptions options;
  options.header_timeout = 300ms;
  options.idle_timeout = 300ms;
  startServer(options);
  auto started = std::chrono::steady_clock::now();
  EXPECT_EQ(rawExchange("GET / HTTP/1.1\r\nHost: x"), "");  // never finishes its headers
  EXPECT_LT(std::chrono::steady_clock::now() - started, 2500ms);
  EXPECT_TRUE(logged("header timeout"));
  std::string answer = rawExchange("GET / HTTP/1.1\r\nHost: x\r\n\r\n");  // keep-alive, then idle
  EXPECT_EQ(answer.rfind("HTTP/1.1 200", 0), 0u);
  EXPECT_TRUE(logged("idle keep-alive timeout"));
}

TEST_F(ServerFixture, ConnectionLimitIsEnforced) {
  ServerOptions options;
  options.max_connections = 2;
  startServer(options);
  asio::io_context io;
  tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), ports_[0]);
  tcp::socket a(io), b(io), c(io);
  a.connect(endpoint);
  b.connect(endpoint);
  std::this_thread::sleep_for(100ms);
  c.connect(endpoint);
  char byte;
  boost::system::error_code ec;
  c.read_some(asio::buffer(&byte, 1), ec);
  EXPECT_TRUE(ec == asio::error::eof || ec == asio::error::connection_reset) << ec.message();
  EXPECT_TRUE(logged("connection limit reached"));
}

TEST_F(ServerFixture, ThousandConcurrentConnections) {
  rlimit limit{};
  getrlimit(RLIMIT_NOFILE, &limit);
  limit.rlim_cur = std::max<rlim_t>(limit.rlim_cur, std::min<rlim_t>(limit.rlim_max, 4096));
  setrlimit(RLIMIT_NOFILE, &limit);
  ASSERT_GE(limit.rlim_cur, 2100u) << "raise the open-file limit to run this test";
  startServer();
  asio::io_context io;
  std::atomic<int> ok{0};
  std::atomic<int> failed{0};
  tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), ports_[0]);
  auto one = [&]() -> asio::awaitable<void> {
    tcp::socket socket(io);
    constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);
    auto [connect_ec] = co_await socket.async_connect(endpoint, kNoThrow);
    std::string request = "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    auto [write_ec, written] = co_await asio::async_write(socket, asio::buffer(request), kNoThrow);
    std::string answer;
    co_await asio::async_read(socket, asio::dynamic_buffer(answer),
                              kNoThrow);  // until the server closes
    bool good = !connect_ec && !write_ec && answer.rfind("HTTP/1.1 200", 0) == 0 &&
                answer.find("x-egress: egress1") != std::string::npos;
    (good ? ok : failed)++;
  };
  for (int i = 0; i < 1000; ++i) asio::co_spawn(io, one(), asio::detached);
  io.run_for(20s);
  EXPECT_EQ(ok.load(), 1000);
  EXPECT_EQ(failed.load(), 0);
}

// Keep-alive connections wait for their next request in the worker's readiness watch: many at
// once (more than one batch of its events), each with many requests, every answer right.
TEST_F(ServerFixture, ManyKeepAliveConnectionsWithManyRequestsEach) {
  startServer();
  asio::io_context io;
  constexpr int kConnections = 300;
  constexpr int kRequests = 20;
  std::atomic<int> answered{0};
  std::atomic<int> wrong{0};
  tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), ports_[0]);
  auto one = [&](int index) -> asio::awaitable<void> {
    constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);
    tcp::socket socket(io);
    auto [connect_ec] = co_await socket.async_connect(endpoint, kNoThrow);
    if (connect_ec) {
      ++wrong;
      co_return;
    }
    boost::beast::flat_buffer buffer;
    for (int i = 0; i < kRequests; ++i) {
      std::string path = "/c" + std::to_string(index) + "r" + std::to_string(i);
      std::string request =
          "GET " + path + " HTTP/1.1\r\nHost: k\r\nAccept: application/json\r\n\r\n";
      auto [write_ec, written] =
          co_await asio::async_write(socket, asio::buffer(request), kNoThrow);
      boost::beast::http::response<boost::beast::http::string_body> response;
      auto [read_ec, got] =
          co_await boost::beast::http::async_read(socket, buffer, response, kNoThrow);
      if (write_ec || read_ec || response.result_int() != 200 ||
          nlohmann::json::parse(response.body())["path"] != path) {
        ++wrong;
        co_return;
      }
      ++answered;
    }
  };
  for (int i = 0; i < kConnections; ++i) asio::co_spawn(io, one(i), asio::detached);
  io.run_for(30s);
  EXPECT_EQ(answered.load(), kConnections * kRequests);
  EXPECT_EQ(wrong.load(), 0);
}

// A request whose headers come in two parts is read on through asio; the edge of its second part
// also reaches the watch, and the next wait must neither hang on it nor lose the request after.
TEST_F(ServerFixture, SplitRequestBetweenKeepAliveRequests) {
  startServer();
  asio::io_context io;
  tcp::socket socket(io);
  socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), ports_[0]));
  timeval tv{3, 0};
  setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  boost::beast::flat_buffer buffer;
  auto answer = [&](const std::string& bytes, std::chrono::milliseconds pause = 0ms,
                    const std::string& rest = "") {
    asio::write(socket, asio::buffer(bytes));
    if (!rest.empty()) {
      std::this_thread::sleep_for(pause);
      asio::write(socket, asio::buffer(rest));
    }
    boost::beast::http::response<boost::beast::http::string_body> response;
    boost::system::error_code ec;
    boost::beast::http::read(socket, buffer, response, ec);
    return ec ? 0u : response.result_int();
  };
  EXPECT_EQ(answer("GET /1 HTTP/1.1\r\nHost: x\r\n\r\n"), 200u);
  std::this_thread::sleep_for(50ms);  // the connection now waits in the watch
  EXPECT_EQ(answer("GET /2 HTTP/1.1\r\nHo", 100ms, "st: x\r\n\r\n"), 200u);
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(answer("GET /3 HTTP/1.1\r\nHost: x\r\n\r\n"), 200u);
  EXPECT_EQ(answer("GET /4 HTTP/1.1\r\nHost: x\r\n\r\n"), 200u);
}

// Stopping the server while keep-alive connections wait in the watch, or are in the middle of a
// request, ends their coroutines (no leak or use after free under ASan, no hang) and closes them.
TEST_F(ServerFixture, StopWithKeepAliveConnectionsWaiting) {
  startServer();
  asio::io_context io;
  std::vector<tcp::socket> sockets;
  for (int i = 0; i < 20; ++i) {
    sockets.emplace_back(io);
    sockets.back().connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), ports_[0]));
    asio::write(sockets.back(), asio::buffer(std::string("GET / HTTP/1.1\r\nHost: x\r\n\r\n")));
  }
  for (auto& socket : sockets) {
    boost::beast::flat_buffer buffer;
    boost::beast::http::response<boost::beast::http::string_body> response;
    boost::beast::http::read(socket, buffer, response);
    EXPECT_EQ(response.result_int(), 200u);
  }
  // One more, in the watch's set but in the middle of a request (its headers half sent): it ends
  // after the watch, when the event loop goes.
  sockets.emplace_back(io);
  sockets.back().connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), ports_[0]));
  asio::write(sockets.back(), asio::buffer(std::string("GET / HTTP/1.1\r\nHost: x\r\n\r\n")));
  {
    boost::beast::flat_buffer buffer;
    boost::beast::http::response<boost::beast::http::string_body> response;
    boost::beast::http::read(sockets.back(), buffer, response);
    EXPECT_EQ(response.result_int(), 200u);
  }
  std::this_thread::sleep_for(50ms);
  asio::write(sockets.back(), asio::buffer(std::string("GET / HTTP/1.1\r\nHo")));
  std::this_thread::sleep_for(50ms);
  auto started = std::chrono::steady_clock::now();
  server_->stop();
  thread_.join();
  server_.reset();  // destroys the workers, and with them the waiting connections
  EXPECT_LT(std::chrono::steady_clock::now() - started, 2s);
  for (auto& socket : sockets) {
    char byte;
    boost::system::error_code ec;
    socket.read_some(asio::buffer(&byte, 1), ec);
    EXPECT_TRUE(ec == asio::error::eof || ec == asio::error::connection_reset) << ec.message();
  }
}

// The loops share each port (SO_REUSEPORT, see listeners.h), yet a second server, with one loop or
// several, or any other listener already there, is refused the port instead of quietly taking part
// of its connections; and the server with its loops on one port answers every connection.
TEST_F(ServerFixture, PortInUseIsRefusedThoughLoopsShareIt) {
  ServerOptions options;
  options.threads = 2;
  startServer(options);
  auto refused = [](const std::string& address, size_t threads) {
    ServerOptions second;
    second.name = "egress2";
    second.threads = threads;
    second.listen = {address};
    second.log = [](const std::string&) {};
    EgressServer other(second);
    std::string error;
    EXPECT_FALSE(other.start(&error)) << address << " with " << threads << " loops was accepted";
    EXPECT_EQ(error, "cannot listen on " + address + ": Address already in use") << error;
  };
  const std::string ours = "127.0.0.1:" + std::to_string(ports_[0]);
  refused(ours, 2);
  refused(ours, 1);
  asio::io_context io;
  tcp::acceptor foreign(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  refused("127.0.0.1:" + std::to_string(foreign.local_endpoint().port()), 2);
  for (int i = 0; i < 50; ++i) {
    ASSERT_EQ(rawExchange("GET /" + std::to_string(i) +
                          " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                  .rfind("HTTP/1.1 200", 0),
              0u);
  }
}

TEST_F(ServerFixture, DrainClosesIdleAndReturns) {
  startServer();
  asio::io_context io;
  tcp::socket idle(io);
  idle.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), ports_[0]));
  asio::write(idle, asio::buffer(std::string("GET / HTTP/1.1\r\nHost: x\r\n\r\n")));
  std::this_thread::sleep_for(200ms);
  auto started = std::chrono::steady_clock::now();
  server_->drain();
  thread_.join();  // run() returns once the idle connection is closed
  EXPECT_LT(std::chrono::steady_clock::now() - started, 2s);
  EXPECT_TRUE(logged("\"event\":\"draining\""));
}

TEST(DemoClient, ClosedPortAndSilentServer) {
  asio::io_context io;
  tcp::acceptor closed(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  uint16_t closed_port = closed.local_endpoint().port();
  closed.close();
  ClientOptions options;
  options.target = "127.0.0.1";
  options.http_port = closed_port;
  options.timeout = 500ms;
  Exchange refused = fetch(options, "http");
  EXPECT_FALSE(refused.ok);
  EXPECT_NE(refused.error.find("connection refused"), std::string::npos) << refused.error;

  tcp::acceptor silent(
      io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));  // accepts, never answers
  options.http_port = silent.local_endpoint().port();
  auto started = std::chrono::steady_clock::now();
  Exchange timed_out = fetch(options, "http");
  EXPECT_FALSE(timed_out.ok);
  EXPECT_NE(timed_out.error.find("timed out after 500 ms while waiting for the response"),
            std::string::npos)
      << timed_out.error;
  EXPECT_LT(std::chrono::steady_clock::now() - started, 2s);

  options.target = "no-such-host.invalid";
  Exchange dns = fetch(options, "http");
  EXPECT_FALSE(dns.ok);
  // Either the resolver answers "not found" at once, or it cannot be reached within the deadline.
  EXPECT_TRUE(dns.error.find("DNS lookup of no-such-host.invalid failed") != std::string::npos ||
              dns.error.find("resolving no-such-host.invalid") != std::string::npos)
      << dns.error;
}

TEST(DemoClient, EgressFromBody) {
  EXPECT_EQ(egressFromBody("Hello from egress2 on port 8080! Received 3 bytes"), "egress2");
  EXPECT_EQ(egressFromBody(R"({"egress": "egress1", "port": 80})"), "egress1");
  EXPECT_EQ(egressFromBody("<html>httpbin</html>"), "");
  EXPECT_EQ(egressFromBody(""), "");
}

}  // namespace
}  // namespace tcpsteer::apps
