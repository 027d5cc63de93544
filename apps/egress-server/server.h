// egress-server: answers as one named egress (egress1 / egress2) on several ports. Each connection
// is sniffed: a TLS ClientHello gets TLS and then HTTP, an HTTP/1.x request gets HTTP, anything
// else gets the seed's raw TCP line. Limits and timeouts live in ServerOptions.
#pragma once

#include <boost/asio/io_context.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace tcpsteer::apps {

struct ServerOptions {
  std::string name = "egress";
  std::vector<std::string> listen = {"0.0.0.0:8080", "0.0.0.0:8443"};
  std::string tls_cert_file;  // PEM; both empty = an ephemeral self-signed certificate
  std::string tls_key_file;
  std::chrono::milliseconds header_timeout{5000};  // first byte to end of request headers
  std::chrono::milliseconds body_timeout{10000};   // end of headers to end of body
  std::chrono::milliseconds idle_timeout{60000};   // between keep-alive requests
  std::chrono::milliseconds drain_timeout{10000};  // SIGTERM: time given to in-flight requests
  size_t max_connections = 10000;                  // over all threads
  size_t threads = 0;  // event loops (one thread each); 0 = one per core
  uint32_t max_header_bytes = 8192;
  uint64_t max_body_bytes = uint64_t{1024} * 1024;  // larger bodies get 413
  // One JSON object per line; stdout by default.
  std::function<void(const std::string&)> log;
};

class EgressServer {
 public:
  explicit EgressServer(ServerOptions options);
  ~EgressServer();
  EgressServer(const EgressServer&) = delete;
  EgressServer& operator=(const EgressServer&) = delete;

  // Binds every listener (port 0 = ephemeral). False and *error on failure (bad address, port in
  // use, unreadable certificate).
  bool start(std::string* error);
  // Runs the event loops (the first on the calling thread) until stop() or a finished drain.
  void run();
  // Stop accepting, let in-flight requests finish (up to drain_timeout), then return from run().
  void drain();
  void stop();

  std::vector<uint16_t> boundPorts() const;
  size_t activeConnections() const;
  // The first event loop's context (signal handlers go there).
  boost::asio::io_context& context();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// A self-signed certificate (EC P-256, SAN: name, localhost, 127.0.0.1), PEM encoded.
struct GeneratedCertificate {
  std::string certificate_pem;
  std::string private_key_pem;
};
GeneratedCertificate generateSelfSignedCertificate(const std::string& common_name);

}  // namespace tcpsteer::apps
