// egress-server: the demo's egress (run twice, as egress1 and egress2). See --help.
#include <CLI/CLI.hpp>
#include <boost/asio/signal_set.hpp>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <limits>

#include "apps/egress-server/server.h"
#include "host/tools/common/cli_numbers.h"

int main(int argc, char** argv) {
  tcpsteer::apps::ServerOptions options;
  options.name.clear();
  if (const char* name = std::getenv("SERVER_NAME")) options.name = name;
  uint64_t header_timeout_ms = options.header_timeout.count();
  uint64_t idle_timeout_ms = options.idle_timeout.count();
  uint64_t body_timeout_ms = options.body_timeout.count();
  uint64_t drain_timeout_ms = options.drain_timeout.count();

  // A day: longer timeouts are a typo, and chrono arithmetic on larger values would overflow.
  constexpr uint64_t kMaxMs = 86400000;
  CLI::App app{
      "egress-server: answers as one named egress. Each connection is sniffed: TLS (then HTTP), "
      "HTTP/1.x, or raw "
      "TCP (one line back). Logs one JSON line per connection and request."};
  app.add_option("--name", options.name,
                 "egress identity in x-egress and bodies (default: $SERVER_NAME)");
  app.add_option("--listen", options.listen, "ADDRESS:PORT to listen on; repeat for several ports")
      ->capture_default_str();
  app.add_option("--tls-cert", options.tls_cert_file,
                 "PEM certificate chain (default: generate a self-signed one)")
      ->check(CLI::ExistingFile);
  app.add_option("--tls-key", options.tls_key_file, "PEM private key for --tls-cert")
      ->check(CLI::ExistingFile);
  app.add_option("--header-timeout-ms", header_timeout_ms,
                 "close a client whose request headers take longer")
      ->check(tcpsteer::cli::decimalRange(1, kMaxMs))
      ->capture_default_str();
  app.add_option("--body-timeout-ms", body_timeout_ms,
                 "close a client whose request body takes longer (after its headers)")
      ->check(tcpsteer::cli::decimalRange(1, kMaxMs))
      ->capture_default_str();
  app.add_option("--idle-timeout-ms", idle_timeout_ms,
                 "close an idle keep-alive connection after this")
      ->check(tcpsteer::cli::decimalRange(1, kMaxMs))
      ->capture_default_str();
  app.add_option("--drain-timeout-ms", drain_timeout_ms,
                 "on SIGTERM, time given to in-flight requests")
      ->check(tcpsteer::cli::decimalRange(0, kMaxMs))
      ->capture_default_str();
  app.add_option("--max-connections", options.max_connections,
                 "refuse connections beyond this many")
      ->check(tcpsteer::cli::decimalRange(1, 1000000))
      ->capture_default_str();
  app.add_option("--threads", options.threads, "event loops, one thread each (0: one per core)")
      ->check(tcpsteer::cli::decimalRange(0, 256))
      ->capture_default_str();
  app.add_option("--max-body-bytes", options.max_body_bytes, "larger request bodies get 413")
      ->check(tcpsteer::cli::decimalRange(0, uint64_t{64} * 1024 * 1024))
      ->capture_default_str();
  app.add_option("--max-header-bytes", options.max_header_bytes, "larger request headers get 431")
      ->check(tcpsteer::cli::decimalRange(256, uint64_t{1024} * 1024))
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  options.header_timeout = std::chrono::milliseconds(header_timeout_ms);
  options.idle_timeout = std::chrono::milliseconds(idle_timeout_ms);
  options.body_timeout = std::chrono::milliseconds(body_timeout_ms);
  options.drain_timeout = std::chrono::milliseconds(drain_timeout_ms);
  if (options.name.empty()) {
    std::cerr << "egress-server: no name: pass --name egress1 or set SERVER_NAME=egress1\n";
    return 2;
  }

  // A closed stdout (the JSON log's reader went away) must not kill the server: writes then fail
  // with EPIPE and are dropped. SIGHUP (a closed terminal) is ignored.
  std::signal(SIGPIPE, SIG_IGN);
  std::signal(SIGHUP, SIG_IGN);
  tcpsteer::apps::EgressServer server(options);
  std::string error;
  if (!server.start(&error)) {
    std::cerr << "egress-server: " << error << "\n";
    return 1;
  }
  boost::asio::signal_set signals(server.context(), SIGTERM, SIGINT);
  signals.async_wait([&server](const boost::system::error_code& ec, int) {
    if (!ec) server.drain();
  });
  server.run();
  return 0;
}
