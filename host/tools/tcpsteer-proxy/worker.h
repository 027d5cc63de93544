// One worker thread: its own io_context, one VM per wasm listener (as Envoy runs one VM per
// worker), and an accept loop per listener on the process's shared listening sockets.
#pragma once

#include <atomic>
#include <boost/asio.hpp>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "host/tools/tcpsteer-proxy/stats.h"
#include "host/tools/tcpsteer-proxy/wasm_network_filter.h"
#include "tcpsteer/host/envoy_config.h"
#include "tcpsteer/host/result.h"

namespace tcpsteer::proxy {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

class Worker {
 public:
  Worker(int index, const host::EnvoyConfig& config, Stats& stats, host::EngineChoice engine)
      : index_(index), config_(config), stats_(stats), engine_(engine) {}

  // Loads each listener's VM (modules: file name -> bytes) and takes its own handle on each
  // listening socket (listen_fds, in config order).
  Result<void> setUp(const std::map<std::string, std::string>& modules,
                     const std::vector<int>& listen_fds);
  void start();
  void drain();  // stop accepting; the thread ends when the last connection does
  void stop();
  void join();
  bool finished() const { return finished_; }

 private:
  asio::awaitable<void> accept(size_t listener);

  int index_;
  const host::EnvoyConfig& config_;
  Stats& stats_;
  host::EngineChoice engine_;
  asio::io_context io_{1};
  std::vector<std::unique_ptr<WasmRuntime>> runtimes_;  // per listener; vm null without a filter
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors_;
  std::vector<char> read_buffer_;
  std::thread thread_;
  size_t active_ = 0;
  size_t next_endpoint_ = 0;
  bool draining_ = false;
  std::atomic<bool> finished_{false};
};

}  // namespace tcpsteer::proxy
