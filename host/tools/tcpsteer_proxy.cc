// tcpsteer-proxy: a local L4 proxy that runs a real proxy-wasm network filter the way Envoy's
// listener -> envoy.filters.network.wasm -> envoy.filters.network.tcp_proxy chain does, reading the
// same envoy.yaml. One VM per worker thread; the upstream cluster comes from the filter state
// envoy.tcp_proxy.cluster, else tcp_proxy's own cluster. All ABI semantics live in the host
// library.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "host/src/envoy_config.h"
#include "tcpsteer/host/vm.h"

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;
using tcpsteer::host::ClusterConfig;
using tcpsteer::host::EnvoyConfig;
using tcpsteer::host::ListenerConfig;
using tcpsteer::host::Vm;
constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);
constexpr size_t kChunk =
    size_t{64} * 1024;  // per read: bounds memory per connection and direction

std::mutex g_output_mutex;
void emit(const std::string& line) {
  std::lock_guard<std::mutex> lock(g_output_mutex);
  std::cout << line << '\n' << std::flush;
}

std::string endpointText(const tcp::endpoint& endpoint) {
  auto address = endpoint.address();
  if (address.is_v6()) return "[" + address.to_string() + "]:" + std::to_string(endpoint.port());
  return address.to_string() + ":" + std::to_string(endpoint.port());
}

struct Stats {
  std::mutex mutex;
  std::map<std::string, int64_t> wasm;  // (worker, listener) snapshots summed at read time
  std::map<std::string, std::map<std::string, int64_t>> per_vm;
  std::atomic<int64_t> downstream_cx_total{0};
  std::atomic<int64_t> downstream_cx_active{0};
  std::atomic<int64_t> upstream_cx_connect_fail{0};
  std::atomic<int64_t> no_cluster{0};
  std::atomic<int64_t> closed_by_filter{0};

  void snapshot(const std::string& key, const Vm& vm) {
    std::lock_guard<std::mutex> lock(mutex);
    auto& values = per_vm[key];
    for (const auto& [id, metric] : vm.metrics()) values[metric.name] = metric.value;
  }

  std::string prometheus() {
    std::map<std::string, int64_t> sums;
    {
      std::lock_guard<std::mutex> lock(mutex);
      for (const auto& [key, values] : per_vm) {
        for (const auto& [name, value] : values) sums[name] += value;
      }
    }
    std::string out;
    auto add = [&out](std::string name, int64_t value, const char* type) {
      for (char& c : name) {
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') c = '_';
      }
      out += "# TYPE " + name + " " + type + "\n" + name + " " + std::to_string(value) + "\n";
    };
    // Envoy strips the wasmcustom. namespace of filter metrics in Prometheus output.
    for (const auto& [name, value] : sums) add(name, value, "counter");
    add("envoy_tcpsteer_proxy_downstream_cx_total", downstream_cx_total, "counter");
    add("envoy_tcpsteer_proxy_downstream_cx_active", downstream_cx_active, "gauge");
    add("envoy_tcpsteer_proxy_upstream_cx_connect_fail", upstream_cx_connect_fail, "counter");
    add("envoy_tcpsteer_proxy_no_cluster", no_cluster, "counter");
    add("envoy_tcpsteer_proxy_closed_by_filter", closed_by_filter, "counter");
    return out;
  }
};

struct ListenerRuntime {
  const ListenerConfig* config;
  std::unique_ptr<Vm> vm;  // null: no wasm filter in the chain
  std::string stats_key;
};

class Worker {
 public:
  Worker(int index, const EnvoyConfig& config, Stats& stats, tcpsteer::host::EngineChoice engine)
      : index_(index), config_(config), stats_(stats), engine_(engine) {}

  bool setUp(const std::map<std::string, std::string>& modules, std::string* error) {
    for (const ListenerConfig& listener : config_.listeners) {
      ListenerRuntime runtime{&listener, nullptr,
                              "w" + std::to_string(index_) + "/" + listener.name};
      if (listener.wasm) {
        tcpsteer::host::VmOptions options;
        options.engine = engine_;
        options.fail_open = listener.wasm->fail_open;
        options.log_level = tcpsteer::host::LogLevel::kInfo;
        const std::string& bytes = modules.at(listener.wasm->filename);
        tcpsteer::host::LoadReport report;
        runtime.vm = Vm::load({reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()},
                              options, &report);
        if (!runtime.vm) {
          *error = "Unable to create Wasm network filter for listener " + listener.name + ": " +
                   (report.problems.empty() ? "load failed" : report.problems[0]);
          return false;
        }
        if (index_ == 0) {
          emit("[wasm] listener=" + listener.name + " engine=" +
               (runtime.vm->precompiled() ? "precompiled (wasm2c, native code)"
                                          : "interpreter (wabt)"));
        }
        auto status =
            runtime.vm->start()
                ? runtime.vm->startPlugin({listener.wasm->root_id, listener.wasm->configuration,
                                           listener.wasm->name, listener.wasm->vm_id})
                : Vm::PluginStatus::kFailed;
        flushLogs(runtime);
        if (status != Vm::PluginStatus::kOk) {
          *error =
              "listener " + listener.name + ": the wasm filter " +
              (status == Vm::PluginStatus::kConfigRejected ? "rejected its configuration"
                                                           : "failed to start") +
              (runtime.vm->failure() ? " (" + runtime.vm->failure()->message + ")" : std::string());
          return false;
        }
      }
      tcp::endpoint endpoint(asio::ip::make_address(listener.address.address),
                             listener.address.port);
      auto acceptor = std::make_unique<tcp::acceptor>(io_);
      boost::system::error_code ec;
      acceptor->open(endpoint.protocol(), ec);
      if (!ec) acceptor->set_option(asio::socket_base::reuse_address(true), ec);
      int one = 1;
      if (!ec) setsockopt(acceptor->native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
      if (!ec) acceptor->bind(endpoint, ec);
      if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
      if (ec) {
        *error = "cannot listen on " + listener.address.address + ":" +
                 std::to_string(listener.address.port) + " (" + listener.name +
                 "): " + ec.message();
        return false;
      }
      runtimes_.push_back(std::move(runtime));
      acceptors_.push_back(std::move(acceptor));
    }
    return true;
  }

  void start() {
    for (size_t i = 0; i < acceptors_.size(); ++i) asio::co_spawn(io_, accept(i), asio::detached);
    thread_ = std::thread([this] {
      io_.run();
      finished_ = true;
    });
  }

  bool finished() const { return finished_; }

  void drain() {
    asio::post(io_, [this] {
      draining_ = true;
      boost::system::error_code ignored;
      for (auto& acceptor : acceptors_) acceptor->close(ignored);
      if (active_ == 0) io_.stop();
    });
  }

  void stop() { io_.stop(); }
  void join() {
    if (thread_.joinable()) thread_.join();
  }

 private:
  void flushLogs(ListenerRuntime& runtime) {
    for (const auto& entry : runtime.vm->logs()) {
      emit(std::string("[wasm ") + tcpsteer::host::logLevelName(entry.level) + "] " +
           runtime.config->name + ": " + entry.message);
    }
    runtime.vm->clearLogs();
  }

  asio::awaitable<void> accept(size_t index) {
    while (!draining_) {
      auto [ec, socket] = co_await acceptors_[index]->async_accept(kNoThrow);
      if (ec) co_return;
      asio::co_spawn(io_, connection(std::move(socket), runtimes_[index]), asio::detached);
    }
  }

  asio::awaitable<void> connection(tcp::socket down, ListenerRuntime& runtime) {
    ++active_;
    ++stats_.downstream_cx_total;
    ++stats_.downstream_cx_active;
    boost::system::error_code ignored;
    std::string source = endpointText(down.remote_endpoint(ignored));
    std::string destination = endpointText(down.local_endpoint(ignored));
    Vm* vm = runtime.vm.get();
    uint32_t id = vm != nullptr ? vm->newConnection(source, destination) : 0;
    std::string cluster = runtime.config->cluster;
    std::string outcome = "-> upstream";
    uint64_t bytes_up = 0;
    uint64_t bytes_down = 0;
    tcp::socket up(io_);
    std::array<char, kChunk> buffer{};

    // While the filter holds the chain (Pause), tcp_proxy has not started: feed data until it does.
    while (vm != nullptr && !vm->connection(id)->tcp_proxy_started &&
           !vm->connection(id)->closed_by_filter) {
      auto [ec, n] = co_await down.async_read_some(asio::buffer(buffer), kNoThrow);
      vm->downstreamData(id, std::string(buffer.data(), ec ? 0 : n), static_cast<bool>(ec));
      if (ec) break;
    }
    const tcpsteer::host::Connection* state = vm != nullptr ? vm->connection(id) : nullptr;
    if (state != nullptr && state->closed_by_filter) {
      ++stats_.closed_by_filter;
      outcome = "closed by the filter";
    } else if (state != nullptr && !state->tcp_proxy_started) {
      outcome = "closed before tcp_proxy started";
    } else {
      if (state != nullptr && state->cluster_at_start) cluster = *state->cluster_at_start;
      auto found = config_.clusters.find(cluster);
      if (found == config_.clusters.end()) {
        ++stats_.no_cluster;
        outcome = "no cluster '" + cluster + "' (NC)";
      } else {
        co_await connectUpstream(up, found->second, &outcome);
        if (up.is_open())
          co_await (pump(down, up, vm, id, true, &bytes_up) &&
                    pump(up, down, vm, id, false, &bytes_down));
      }
    }
    down.close(ignored);
    up.close(ignored);
    if (vm != nullptr) {
      vm->closeDownstream(id, tcpsteer::host::PeerType::kRemote);
      vm->forgetConnection(id);
      flushLogs(runtime);
      stats_.snapshot(runtime.stats_key, *vm);
    }
    emit("[access] listener=" + runtime.config->name + " cluster=" + cluster + " src=" + source +
         " dst=" + destination + " " + outcome + " bytes_up=" + std::to_string(bytes_up) +
         " bytes_down=" + std::to_string(bytes_down));
    --stats_.downstream_cx_active;
    if (--active_ == 0 && draining_) io_.stop();
  }

  asio::awaitable<void> connectUpstream(tcp::socket& up, const ClusterConfig& cluster,
                                        std::string* outcome) {
    const auto& target = cluster.endpoints[next_endpoint_++ % cluster.endpoints.size()];
    tcp::endpoint endpoint(asio::ip::make_address(target.address), target.port);
    asio::steady_timer timer(io_);
    timer.expires_after(std::chrono::milliseconds(cluster.connect_timeout_ms));
    auto result = co_await (up.async_connect(endpoint, kNoThrow) || timer.async_wait(kNoThrow));
    boost::system::error_code ec =
        result.index() == 0 ? std::get<0>(std::get<0>(result)) : asio::error::timed_out;
    if (ec) {
      ++stats_.upstream_cx_connect_fail;
      *outcome =
          "upstream connect to " + endpointText(endpoint) + " failed: " + ec.message() + " (UF)";
      boost::system::error_code ignored;
      up.close(ignored);
      co_return;
    }
    *outcome = "-> " + endpointText(endpoint);
  }

  // Copies one direction through the filter: read a chunk, let the VM see it, write what it
  // releases. Each read waits for the previous write: backpressure with at most kChunk bytes in
  // flight.
  asio::awaitable<void> pump(tcp::socket& from, tcp::socket& to, Vm* vm, uint32_t id,
                             bool downstream, uint64_t* bytes) {
    std::vector<char> buffer(kChunk);
    boost::system::error_code ignored;
    while (true) {
      auto [ec, n] = co_await from.async_read_some(asio::buffer(buffer), kNoThrow);
      bool eof = ec == asio::error::eof;
      std::string out;
      if (vm != nullptr && (!ec || eof)) {
        std::string data(buffer.data(), ec ? 0 : n);
        if (downstream) {
          vm->downstreamData(id, data, eof);
          out = vm->takeForwardedUpstream(id);
        } else {
          vm->upstreamData(id, data, eof);
          out = vm->takeForwardedDownstream(id);
        }
        if (vm->connection(id)->closed_by_filter) {
          from.close(ignored);
          to.close(ignored);
          co_return;
        }
      } else if (!ec) {
        out.assign(buffer.data(), n);
      }
      if (!out.empty()) {
        auto [write_ec, written] = co_await asio::async_write(to, asio::buffer(out), kNoThrow);
        *bytes += written;
        if (write_ec) {
          from.close(ignored);
          co_return;
        }
      }
      if (eof) {
        to.shutdown(tcp::socket::shutdown_send, ignored);  // half-close: pass the FIN on
        co_return;
      }
      if (ec) {  // reset or local close: tear down both sides
        to.close(ignored);
        co_return;
      }
    }
  }

  int index_;
  const EnvoyConfig& config_;
  Stats& stats_;
  tcpsteer::host::EngineChoice engine_;
  asio::io_context io_{1};
  std::vector<ListenerRuntime> runtimes_;
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors_;
  std::thread thread_;
  size_t active_ = 0;
  size_t next_endpoint_ = 0;
  bool draining_ = false;
  std::atomic<bool> finished_{false};
};

asio::awaitable<void> adminSession(tcp::socket socket, Stats& stats) {
  beast::flat_buffer buffer;
  http::request<http::string_body> request;
  auto [ec, n] = co_await http::async_read(socket, buffer, request, kNoThrow);
  if (ec) co_return;
  http::response<http::string_body> response{http::status::ok, request.version()};
  std::string target(request.target());
  if (target == "/stats/prometheus") {
    response.set(http::field::content_type, "text/plain; version=0.0.4");
    response.body() = stats.prometheus();
  } else if (target == "/ready") {
    response.body() = "LIVE\n";
  } else {
    response.result(http::status::not_found);
    response.body() = "admin endpoints: /ready, /stats/prometheus\n";
  }
  response.keep_alive(false);
  response.prepare_payload();
  co_await http::async_write(socket, response, kNoThrow);
}

asio::awaitable<void> adminLoop(tcp::acceptor& acceptor, Stats& stats) {
  while (true) {
    auto [ec, socket] = co_await acceptor.async_accept(kNoThrow);
    if (ec) co_return;
    asio::co_spawn(acceptor.get_executor(), adminSession(std::move(socket), stats), asio::detached);
  }
}

}  // namespace

int main(int argc, char** argv) {
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
      ->check(CLI::Range(1, 64))
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
    return app.exit(e) == 0 ? 0 : 2;
  }
  std::string error;
  auto config = tcpsteer::host::loadEnvoyConfig(config_path, &error);
  if (!config) {
    std::cerr << "tcpsteer-proxy: " << error << "\n";
    return 1;
  }
  std::map<std::string, std::string> modules;
  for (const auto& listener : config->listeners) {
    if (!listener.wasm || modules.count(listener.wasm->filename)) continue;
    std::ifstream file(listener.wasm->filename, std::ios::binary);
    if (!file) {
      std::cerr << "tcpsteer-proxy: cannot read " << listener.wasm->filename
                << " (vm_config.code.local.filename of listener " << listener.name
                << "); run make wasm\n";
      return 1;
    }
    std::stringstream bytes;
    bytes << file.rdbuf();
    modules[listener.wasm->filename] = bytes.str();
  }
  Stats stats;
  std::vector<std::unique_ptr<Worker>> workers;
  for (int i = 0; i < concurrency; ++i) {
    workers.push_back(
        std::make_unique<Worker>(i, *config, stats, tcpsteer::host::kEngineNames.at(engine)));
    if (!workers.back()->setUp(modules, &error)) {
      std::cerr << "tcpsteer-proxy: " << error << "\n";
      return 1;
    }
  }
  asio::io_context main_io;
  std::unique_ptr<tcp::acceptor> admin;
  if (config->admin) {
    boost::system::error_code ec;
    tcp::endpoint endpoint(asio::ip::make_address(config->admin->address, ec), config->admin->port);
    if (!ec) {
      admin = std::make_unique<tcp::acceptor>(main_io);
      admin->open(endpoint.protocol(), ec);
      if (!ec) admin->set_option(asio::socket_base::reuse_address(true), ec);
      if (!ec) admin->bind(endpoint, ec);
      if (!ec) admin->listen(64, ec);
    }
    if (ec) {
      std::cerr << "tcpsteer-proxy: cannot listen on admin address " << config->admin->address
                << ":" << config->admin->port << ": " << ec.message() << "\n";
      return 1;
    }
    asio::co_spawn(main_io, adminLoop(*admin, stats), asio::detached);
  }
  for (auto& worker : workers) worker->start();
  for (const auto& listener : config->listeners) {
    emit("[proxy] listening " + listener.name + " on " + listener.address.address + ":" +
         std::to_string(listener.address.port) +
         (listener.wasm ? " with wasm filter " + listener.wasm->filename : ""));
  }
  // SIGTERM/SIGINT: stop accepting, let connections finish for up to 5 s, then stop. The main
  // thread alone joins the workers.
  asio::signal_set signals(main_io, SIGTERM, SIGINT);
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
  signals.async_wait([&](const boost::system::error_code& ec, int) {
    if (ec) return;
    emit("[proxy] draining");
    for (auto& worker : workers) worker->drain();
    if (admin) admin->close();
    deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    check_drained();
  });
  main_io.run();
  for (auto& worker : workers) worker->stop();
  for (auto& worker : workers) worker->join();
  emit("[proxy] stopped");
  return 0;
}
