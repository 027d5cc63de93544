// demo-client: keeps making HTTP and HTTPS requests (or raw TCP exchanges) and says which egress
// answered. Exit status: 0 all answered (and as --expect says); 1 some request failed; 2 bad usage;
// 3 an answer came from another egress than --expect.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <boost/asio/ip/address_v6.hpp>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "apps/demo-client/client.h"
#include "host/tools/common/cli_numbers.h"

namespace {

std::atomic<bool> g_stop{false};
extern "C" void onSignal(int) {
  g_stop = true;
}

double percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  auto index = static_cast<size_t>(std::lround(p / 100.0 * static_cast<double>(values.size() - 1)));
  return values[std::min(index, values.size() - 1)];
}

// Rewrites FILE after each round so a Kubernetes exec probe can check that the loop is alive
// (the client serves no port an HTTP probe could use). Says once if the file cannot be written.
void touchAliveFile(const std::string& path, uint64_t round, uint64_t errors) {
  static bool warned = false;
  std::ofstream out(path, std::ios::trunc);
  out << "round=" << round << " errors=" << errors << " unix_time=" << std::time(nullptr) << '\n';
  out.flush();
  if (!out && !warned) {
    warned = true;
    std::fprintf(stderr,
                 "demo-client: cannot write --alive-file %s; point it at a writable path (e.g. an "
                 "emptyDir at /tmp)\n",
                 path.c_str());
  }
}

}  // namespace

int main(int argc, char** argv) {
  tcpsteer::apps::ClientOptions options;
  uint64_t count = 0;
  bool once = false;
  uint64_t interval_ms = 2000;
  uint64_t timeout_ms = 5000;
  std::string expect;
  std::string alive_file;
  bool json = false;
  bool raw = false;
  std::vector<std::string> schemes = {"http", "https"};

  // A day: longer is a typo, and chrono arithmetic on larger values would overflow.
  constexpr uint64_t kMaxMs = 86400000;
  // What goes into the request line or Host header: printable ASCII only, so no option can add a
  // header line (CR/LF) or split the request.
  const CLI::Validator onTheWire(
      [](std::string& text) -> std::string {
        for (char c : text) {
          if (c <= ' ' || c > '~')
            return "control characters, spaces and non-ASCII are not allowed";
        }
        return text.empty() ? "must not be empty" : "";
      },
      "printable ASCII");
  CLI::App app{
      "demo-client: requests http://TARGET/ and https://TARGET/ in a loop and reports which egress "
      "answered"};
  app.add_option("--target", options.target, "host name or address to call")
      ->check(onTheWire)
      ->capture_default_str();
  app.add_option("--path", options.path, "request path")
      ->check(onTheWire)
      ->check(CLI::Validator(
          [](std::string& text) -> std::string {
            return text.starts_with('/') ? "" : "the path must start with '/'";
          },
          "/..."))
      ->capture_default_str();
  app.add_option("--http-port", options.http_port, "port for http://")
      ->check(tcpsteer::cli::decimalRange(1, 65535))
      ->capture_default_str();
  app.add_option("--https-port", options.https_port, "port for https://")
      ->check(tcpsteer::cli::decimalRange(1, 65535))
      ->capture_default_str();
  app.add_option("--raw-port", options.raw_port, "port for --raw (default: --http-port)")
      ->check(tcpsteer::cli::decimalRange(1, 65535));
  app.add_option("--schemes", schemes,
                 "which exchanges each round makes: http, https, raw (repeat or comma-separate)")
      ->delimiter(',')
      ->check(CLI::IsMember({"http", "https", "raw"}))
      ->capture_default_str();
  app.add_flag("--raw", raw, "plain TCP exchange instead of HTTP/HTTPS (same as --schemes raw)");
  app.add_option("--count", count, "stop after N rounds (default: forever)")
      ->check(tcpsteer::cli::decimalRange(1, 1000000000));
  app.add_flag("--once", once, "one round, then exit (same as --count 1)");
  app.add_option("--interval-ms", interval_ms, "pause between rounds")
      ->check(tcpsteer::cli::decimalRange(0, kMaxMs))
      ->capture_default_str();
  app.add_option("--timeout-ms", timeout_ms, "deadline of one exchange")
      ->check(tcpsteer::cli::decimalRange(1, kMaxMs))
      ->capture_default_str();
  app.add_option("--expect", expect, "exit 3 if any answer comes from another egress")
      ->check(CLI::IsMember({"egress1", "egress2"}));
  app.add_flag("--json", json, "one JSON object per exchange instead of text");
  app.add_option("--bind", options.bind_address, "local source address, e.g. 127.0.0.10")
      ->check(CLI::ValidIPV4 | CLI::Validator(
                                   [](std::string& text) -> std::string {
                                     boost::system::error_code ec;
                                     boost::asio::ip::make_address_v6(text, ec);
                                     return ec ? "not an IPv4 or IPv6 address" : "";
                                   },
                                   "IPv6"));
  app.add_option("--connect-to", options.connect_address,
                 "dial this host or address instead of --target (Host and SNI stay --target)")
      ->check(onTheWire);
  app.add_option("--ca", options.ca_file, "PEM file of an extra trusted CA/certificate")
      ->check(CLI::ExistingFile);
  app.add_flag("--insecure", options.insecure, "do not verify the server certificate");
  app.add_option("--alive-file", alive_file,
                 "rewrite FILE after every round (for a liveness probe)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (once) count = 1;
  if (raw) schemes = {"raw"};
  options.timeout = std::chrono::milliseconds(timeout_ms);
  std::signal(SIGINT, onSignal);
  std::signal(SIGTERM, onSignal);

  std::map<std::string, uint64_t> answers;
  uint64_t errors = 0;
  uint64_t mismatches = 0;
  std::vector<double> latencies;
  for (uint64_t round = 0; (count == 0 || round < count) && !g_stop; ++round) {
    for (const std::string& scheme : schemes) {
      if (g_stop) break;
      tcpsteer::apps::Exchange exchange = tcpsteer::apps::fetch(options, scheme);
      if (exchange.ok) {
        ++answers[exchange.egress.empty() ? "unknown" : exchange.egress];
        latencies.push_back(exchange.latency_ms);
        if (!expect.empty() && exchange.egress != expect) ++mismatches;
      } else {
        ++errors;
      }
      if (json) {
        nlohmann::json line = {{"scheme", exchange.scheme},         {"ok", exchange.ok},
                               {"status", exchange.status},         {"egress", exchange.egress},
                               {"latency_ms", exchange.latency_ms}, {"peer", exchange.peer},
                               {"seen_as", exchange.seen_as}};
        if (!exchange.ok) line["error"] = exchange.error;
        std::cout << line.dump() << '\n'
                  << std::flush;  // one line at a time: logs and tests read it live
      } else if (exchange.ok) {
        std::printf("%-5s %-10s %3d  %7.1f ms  %s%s%s\n", exchange.scheme.c_str(),
                    exchange.egress.empty() ? "unknown" : exchange.egress.c_str(), exchange.status,
                    exchange.latency_ms, exchange.peer.c_str(),
                    exchange.seen_as.empty() ? "" : "  seen as ", exchange.seen_as.c_str());
        std::fflush(stdout);
      } else {
        std::printf("%-5s error: %s\n", exchange.scheme.c_str(), exchange.error.c_str());
        std::fflush(stdout);
      }
    }
    if (!alive_file.empty()) touchAliveFile(alive_file, round + 1, errors);
    if (count != 0 && round + 1 >= count) break;
    for (uint64_t waited = 0; waited < interval_ms && !g_stop; waited += 50) {
      std::this_thread::sleep_for(
          std::chrono::milliseconds(std::min<uint64_t>(50, interval_ms - waited)));
    }
  }

  nlohmann::json summary = {{"summary", true},
                            {"answers", answers},
                            {"errors", errors},
                            {"latency_ms",
                             {{"p50", percentile(latencies, 50)},
                              {"p90", percentile(latencies, 90)},
                              {"p99", percentile(latencies, 99)}}}};
  if (!expect.empty()) summary["expect_mismatches"] = mismatches;
  if (json) {
    std::cout << summary.dump() << '\n'
              << std::flush;  // one line at a time: logs and tests read it live
  } else {
    std::printf("summary:");
    for (const auto& [egress, n] : answers)
      std::printf(" %s=%llu", egress.c_str(), static_cast<unsigned long long>(n));
    std::printf(" errors=%llu p50=%.1fms p90=%.1fms p99=%.1fms\n",
                static_cast<unsigned long long>(errors), percentile(latencies, 50),
                percentile(latencies, 90), percentile(latencies, 99));
    if (mismatches > 0) {
      std::printf("expected every answer from %s, but %llu came from elsewhere\n", expect.c_str(),
                  static_cast<unsigned long long>(mismatches));
    }
  }
  if (mismatches > 0) return 3;
  return errors > 0 ? 1 : 0;
}
