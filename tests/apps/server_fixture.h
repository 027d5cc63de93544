// The egress-server over real sockets on loopback: a server on ephemeral ports with a generated
// certificate, its log lines kept, and raw exchanges with it. Shared by the apps tests.
#pragma once

#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <boost/asio.hpp>
#include <chrono>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "apps/demo-client/client.h"
#include "apps/egress-server/server.h"

namespace tcpsteer::apps::test_support {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

// ctest runs each test in its own process, in parallel: names carry the pid so they never collide.
inline std::string writeTemp(const std::string& name, const std::string& text) {
  std::string path = ::testing::TempDir() + "/" + std::to_string(::getpid()) + "-" + name;
  std::ofstream(path) << text;
  return path;
}

class ServerFixture : public ::testing::Test {
 protected:
  void startServer(ServerOptions options = {}) {
    options.name = "egress1";
    options.listen = {"127.0.0.1:0", "127.0.0.1:0"};
    if (options.tls_cert_file.empty()) {
      GeneratedCertificate certificate = generateSelfSignedCertificate("egress1");
      ca_file_ = writeTemp("egress1.crt", certificate.certificate_pem);
      options.tls_cert_file = ca_file_;
      options.tls_key_file = writeTemp("egress1.key", certificate.private_key_pem);
    }
    options.log = [this](const std::string& line) {
      std::lock_guard<std::mutex> lock(log_mutex_);
      log_.push_back(line);
    };
    server_ = std::make_unique<EgressServer>(options);
    std::string error;
    ASSERT_TRUE(server_->start(&error)) << error;
    ports_ = server_->boundPorts();
    thread_ = std::thread([this] { server_->run(); });
  }

  void TearDown() override {
    if (server_) server_->stop();
    if (thread_.joinable()) thread_.join();
  }

  ClientOptions client(const std::string& target = "127.0.0.1") const {
    ClientOptions options;
    options.target = target;
    options.http_port = ports_[0];
    options.https_port = ports_[1];
    options.timeout = 3000ms;
    return options;
  }

  // The server logs on its own thread, possibly just after the client saw the effect: wait up to 2
  // s.
  bool logged(const std::string& fragment) {
    for (int attempt = 0; attempt < 200; ++attempt) {
      {
        std::lock_guard<std::mutex> lock(log_mutex_);
        for (const auto& line : log_) {
          if (line.find(fragment) != std::string::npos) return true;
        }
      }
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }

  // Sends raw bytes, returns everything the server sends back until it closes (or 3 s pass).
  // With `rest`, it is sent after the pause: a request in two writes.
  std::string rawExchange(const std::string& bytes,
                          std::chrono::milliseconds pause_after_send = 0ms,
                          const std::string& rest = "") const {
    asio::io_context io;
    tcp::socket socket(io);
    socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), ports_[0]));
    asio::write(socket, asio::buffer(bytes));
    std::this_thread::sleep_for(pause_after_send);
    if (!rest.empty()) asio::write(socket, asio::buffer(rest));
    std::string answer;
    socket.non_blocking(false);
    timeval tv{3, 0};
    setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    boost::system::error_code ec;
    asio::read(socket, asio::dynamic_buffer(answer), ec);
    return answer;
  }

  std::unique_ptr<EgressServer> server_;
  std::thread thread_;
  std::vector<uint16_t> ports_;
  std::string ca_file_;
  std::mutex log_mutex_;
  std::vector<std::string> log_;
};

}  // namespace tcpsteer::apps::test_support
