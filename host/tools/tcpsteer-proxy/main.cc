// tcpsteer-proxy: a local L4 proxy that runs a real proxy-wasm network filter the way Envoy's
// listener -> envoy.filters.network.wasm -> envoy.filters.network.tcp_proxy chain does, reading the
// same envoy.yaml. One VM per worker thread; the upstream cluster comes from the filter state
// envoy.tcp_proxy.cluster, else tcp_proxy's own cluster. All ABI semantics live in the host
// library; the relay drives the filter through the NetworkFilter seam.
#include <csignal>
#include <functional>
#include <iostream>
#include <map>
#include <memory>

#include "host/src/limits.h"
#include "host/tools/common/cli_numbers.h"
#include "host/tools/tcpsteer-proxy/admin.h"
#include "host/tools/tcpsteer-proxy/listeners.h"
#include "host/tools/tcpsteer-proxy/output.h"
#include "host/tools/tcpsteer-proxy/worker.h"
#include "tcpsteer/host/envoy_config.h"
#include "tcpsteer/host/read_file.h"

namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using tcpsteer::proxy::emit;
constexpr int kExitOk = 0;
constexpr int kExitRefused = 1;
constexpr int kExitUsage = 2;
constexpr auto kDrainTime = std::chrono::seconds(5);
constexpr int kMaxConcurrency = 64;

int refuse(const std::string& message) {
  std::cerr << "tcpsteer-proxy: " << message << "\n";
  return kExitRefused;
}

}  // namespace

int main(int argc, char** argv) {
  // A closed stdout or a peer gone mid-write is an error code, never a signal that kills us.
  std::signal(SIGPIPE, SIG_IGN);
  std::string config_path;
  int concurrency = 2;
  std::string engine = "auto";
  CLI::App app{
      "tcpsteer-proxy: run a proxy-wasm network filter in front of tcp_proxy, from an Envoy static "
      "config"};
  app.add_option("-c,--config", config_path,
                 "Envoy bootstrap YAML (the supported subset: see host/README.md)")
      ->required();
  app.add_option("--concurrency", concurrency, "worker threads, one wasm VM each")
      ->check(tcpsteer::cli::decimalRange(1, kMaxConcurrency))
      ->capture_default_str();
  app.add_option("--engine", engine,
                 "how the module runs: precompiled (built-in native code of the module this "
                 "project built; refuses others), interpreter (wabt), or auto (precompiled when "
                 "the module is the built one)")
      ->check(CLI::IsMember(tcpsteer::host::kEngineNames))
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? kExitOk : kExitUsage;
  }
  auto config = tcpsteer::host::loadEnvoyConfig(config_path);
  if (!config) return refuse(config.error());
  std::map<std::string, std::string> modules;
  for (const auto& listener : config->listeners) {
    if (!listener.wasm || modules.count(listener.wasm->filename)) continue;
    auto bytes = tcpsteer::host::readRegularFile(listener.wasm->filename,
                                                 tcpsteer::host::limits::kMaxModuleFileBytes);
    if (!bytes) {
      return refuse(bytes.error() + " (vm_config.code.local.filename of listener " + listener.name +
                    "); run make wasm");
    }
    modules[listener.wasm->filename] = std::move(*bytes);
  }
  tcpsteer::proxy::ListeningSockets sockets;
  if (auto bound = sockets.bind(config->listeners); !bound) return refuse(bound.error());

  tcpsteer::proxy::Stats stats;
  std::vector<std::unique_ptr<tcpsteer::proxy::Worker>> workers;
  for (int i = 0; i < concurrency; ++i) {
    workers.push_back(std::make_unique<tcpsteer::proxy::Worker>(
        i, *config, stats, tcpsteer::host::kEngineNames.at(engine)));
    if (auto ready = workers.back()->setUp(modules, sockets.fds()); !ready)
      return refuse(ready.error());
  }
  asio::io_context main_io;
  std::unique_ptr<tcp::acceptor> admin;
  const std::optional<tcpsteer::host::SocketAddressConfig>& admin_config = config->admin;
  if (admin_config.has_value()) {
    const tcpsteer::host::SocketAddressConfig& admin_address = *admin_config;
    boost::system::error_code ec;
    tcp::endpoint endpoint(asio::ip::make_address(admin_address.address, ec), admin_address.port);
    if (!ec) {
      admin = std::make_unique<tcp::acceptor>(main_io);
      admin->open(endpoint.protocol(), ec);
      if (!ec) admin->set_option(asio::socket_base::reuse_address(true), ec);
      if (!ec) admin->bind(endpoint, ec);
      if (!ec) admin->listen(asio::socket_base::max_listen_connections, ec);
    }
    if (ec) {
      return refuse("cannot listen on admin address " + admin_address.address + ":" +
                    std::to_string(admin_address.port) + ": " + ec.message());
    }
    tcpsteer::proxy::startAdmin(*admin, stats);
  }
  for (auto& worker : workers) worker->start();
  for (const auto& listener : config->listeners) {
    emit("[proxy] listening " + listener.name + " on " + listener.address.address + ":" +
         std::to_string(listener.address.port) +
         (listener.wasm ? " with wasm filter " + listener.wasm->filename : ""));
  }
  // SIGTERM/SIGINT: stop accepting, let connections finish for up to kDrainTime, then stop.
  // SIGHUP is ignored, as Envoy does (the configuration is read once, at start).
  asio::signal_set signals(main_io, SIGTERM, SIGINT, SIGHUP);
  asio::steady_timer drain_check(main_io);
  auto deadline = std::chrono::steady_clock::time_point::max();
  std::function<void()> check_drained = [&] {
    bool all_done =
        std::all_of(workers.begin(), workers.end(), [](const auto& w) { return w->finished(); });
    if (all_done || std::chrono::steady_clock::now() >= deadline) {
      main_io.stop();
      return;
    }
    drain_check.expires_after(std::chrono::milliseconds(20));
    drain_check.async_wait([&](const boost::system::error_code& ec) {
      if (!ec) check_drained();
    });
  };
  std::function<void(const boost::system::error_code&, int)> on_signal =
      [&](const boost::system::error_code& ec, int number) {
        if (ec) return;
        if (number == SIGHUP) {
          emit("[proxy] SIGHUP ignored (the configuration is read at start)");
          signals.async_wait(on_signal);
          return;
        }
        emit("[proxy] draining");
        for (auto& worker : workers) worker->drain();
        if (admin) admin->close();
        deadline = std::chrono::steady_clock::now() + kDrainTime;
        check_drained();
      };
  signals.async_wait(on_signal);
  main_io.run();
  for (auto& worker : workers) worker->stop();
  for (auto& worker : workers) worker->join();
  emit("[proxy] stopped");
  return kExitOk;
}
