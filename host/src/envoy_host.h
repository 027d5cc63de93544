// Envoy's side of the ABI for one VM: the state the import functions act on (contexts, the current
// callback's window and buffers, connections, logs, metrics, shared data) and the semantics that
// are Envoy's rather than the ABI's. The import functions (proxy_imports.cc, wasi_imports.cc) only
// move data between guest memory and this class; each concern's semantics live in its own file
// (properties.cc, foreign_functions.cc, metrics.cc, shared_data.cc, log_store.cc).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>

#include "host/src/log_store.h"
#include "host/src/metrics.h"
#include "host/src/shared_data.h"
#include "proxy_wasm/abi_types.h"
#include "tcpsteer/host/vm.h"

namespace tcpsteer::host {

// Restricted windows of proxy-wasm-cpp-host: only allow-listed imports may run in them.
enum class CallWindow : uint8_t { kNone, kStartup, kAllocator };

class EnvoyHost {
 public:
  explicit EnvoyHost(VmOptions options) : options(std::move(options)) {}

  // --- contexts and the current callback ---
  Connection* currentConnection();
  bool isRootContext() const { return current_context == root_context_id; }
  proxy_wasm::WasmResult setEffectiveContext(uint32_t id);

  // --- logs and time ---
  void log(LogLevel level, std::string_view message);
  uint64_t now() const;

  // --- properties (properties.cc) ---
  std::optional<std::string> property(std::string_view path);
  proxy_wasm::WasmResult setProperty(std::string_view key, std::string_view value);

  // --- foreign functions (foreign_functions.cc) ---
  proxy_wasm::WasmResult callForeignFunction(std::string_view name, std::string_view arguments);

  // --- the data buffers and stream actions of an L4 filter ---
  // The buffer readable in this callback; nullptr for a buffer type with no buffer here.
  const std::string* buffer(proxy_wasm::BufferType type);
  std::string* mutableBuffer(proxy_wasm::BufferType type);
  proxy_wasm::WasmResult continueStream(proxy_wasm::StreamType type);
  proxy_wasm::WasmResult closeStream(proxy_wasm::StreamType type);

  VmOptions options;
  PluginOptions plugin;
  uint32_t next_context_id = 1;
  uint32_t root_context_id = 0;
  uint32_t current_context = 0;
  CallWindow window = CallWindow::kNone;
  bool in_configure = false;
  std::optional<proxy_wasm::BufferType> callback_buffer;  // NetworkDownstream/UpstreamData
  std::map<uint32_t, Connection> connections;
  std::set<uint32_t> close_requested;     // proxy_close_stream, applied when the callback returns
  std::set<uint32_t> continue_requested;  // proxy_continue_stream, likewise
  LogStore logs;
  Metrics metrics;
  SharedData shared_data;
  SharedQueues shared_queues;
  uint64_t now_ns = 0;  // fixed clock for tests; 0 = the system clock
  uint32_t tick_period_ms = 0;
  std::map<std::string, std::string, std::less<>> root_properties;
  std::mt19937 random{std::random_device{}()};
};

}  // namespace tcpsteer::host
