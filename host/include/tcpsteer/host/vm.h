// A proxy-wasm VM with Envoy's semantics, for one plugin: what tests, the CLI, the proxy and the
// benchmarks drive. Shaped like proxy-wasm-go-sdk's proxytest emulator: load, start the VM, start
// the plugin, open connections, feed data, close, then inspect logs, metrics, filter state and
// actions.
//
// Nothing a module does can crash the host: every guest pointer is bounds-checked, traps and
// exhausted instruction budgets fail the VM, and a failed VM follows the fail-open / fail-closed
// policy.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "host/src/limits.h"
#include "proxy_wasm/abi_types.h"

namespace tcpsteer::host {

class WasmEngine;
class EnvoyHost;
class GuestMemory;
struct ImportRow;

// The ABI's enums, shared with the guest SDK (sdk/include/proxy_wasm/abi_types.h).
using LogLevel = proxy_wasm::LogLevel;
using PeerType = proxy_wasm::PeerType;
using MetricType = proxy_wasm::MetricType;
// What a network filter callback tells the filter manager (FilterStatus on the wire).
enum class Action : uint32_t { kContinue = 0, kPause = 1 };

const char* logLevelName(LogLevel level);

// A value in newConnection's extra properties that removes the property instead of setting it
// (to test a host where, say, source.address is missing).
inline constexpr const char* kUnsetProperty = "\x7f<unset>";

// Which WASI functions the host provides (Envoy 1.28-1.33 have tier 1 only; 1.34+ add tier 2).
enum class WasiTier : uint8_t { kTier1 = 1, kTier2 = 2 };

// How the module runs. The interpreter (wabt) counts instructions and enforces the budget; the
// precompiled engine (wasm2c, built in) runs the module the project was built with at native speed,
// without a budget or instruction counts, and refuses any other module. kAuto: precompiled when the
// module is the built one, else the interpreter.
enum class EngineChoice : uint8_t { kInterpreter, kPrecompiled, kAuto };
// The --engine names of the CLI (tcpsteer-host).
inline const std::map<std::string, EngineChoice> kEngineNames = {
    {"interpreter", EngineChoice::kInterpreter},
    {"precompiled", EngineChoice::kPrecompiled},
    {"auto", EngineChoice::kAuto}};

struct VmOptions {
  EngineChoice engine = EngineChoice::kInterpreter;
  // Per top-level callback, start function and _initialize included; 0 = unlimited (interpreter).
  uint64_t instruction_budget = limits::kDefaultInstructionBudget;
  LogLevel log_level =
      LogLevel::kTrace;    // what proxy_get_log_level reports; lower lines are dropped
  bool fail_open = false;  // Istio's default is FAIL_CLOSE
  std::string vm_configuration;
  std::map<std::string, std::string>
      environment;  // WASI environ (Envoy vm_config.environment_variables)
  WasiTier wasi_tier = WasiTier::kTier1;
  // Keys accepted by set_envoy_filter_state (Envoy's registered object factories).
  std::set<std::string> filter_state_keys = {"envoy.tcp_proxy.cluster",
                                             "envoy.string",
                                             "envoy.network.upstream_server_name",
                                             "envoy.network.application_protocols",
                                             "envoy.network.transport_socket.original_dst_address",
                                             "envoy.tcp_proxy.per_connection_idle_timeout_ms",
                                             "envoy.upstream.dynamic_host",
                                             "envoy.upstream.dynamic_port"};
};

struct PluginOptions {
  std::string root_id;
  std::string configuration;  // plugin configuration bytes (Envoy config.configuration)
  std::string name = "tcpsteer";
  std::string vm_id;
  // The proxy's node metadata (Envoy's bootstrap node.metadata; Istio's NAMESPACE, WORKLOAD_NAME,
  // SERVICE_ACCOUNT, LABELS): "NAMESPACE" -> "billing", "LABELS.app" -> "invoicer". Read as
  // xds.node.metadata.<key>, as Envoy 1.33+ has it; xds.node.metadata.LABELS itself exists when
  // any LABELS.* key does.
  std::map<std::string, std::string> node_metadata;
};

struct LogEntry {
  LogLevel level;
  uint32_t context_id;
  std::string message;
};

struct Metric {
  MetricType type = MetricType::kCounter;
  std::string name;
  int64_t value = 0;             // counter / gauge
  std::vector<uint64_t> values;  // histogram records
};

struct LoadReport {
  bool ok = false;
  std::string abi_version;                   // "0_2_1", "0_2_0", "0_1_0"
  std::vector<std::string> unknown_imports;  // "module.name (sig)": Envoy would refuse to load
  std::vector<std::string> problems;         // one line each: what Envoy would refuse, and why
  std::vector<std::string> imports;          // "module.name (sig)"
  std::vector<std::string> exports;          // "name (sig)" or "name (memory)"
  size_t module_bytes = 0;
};

// What happened to one connection, as Envoy's network filter manager would see it.
struct Connection {
  uint32_t context_id = 0;
  std::map<std::string, std::string> properties;  // dotted path -> encoded value
  std::map<std::string, std::string> filter_state;
  std::string downstream_buffer;  // bytes held while the filter pauses
  std::string upstream_buffer;
  std::string forwarded_upstream;    // downstream bytes released towards the upstream
  std::string forwarded_downstream;  // upstream bytes released towards the client
  bool paused = false;               // chain stopped at the wasm filter
  bool tcp_proxy_started = false;    // onNewConnection reached tcp_proxy (reads the cluster)
  std::optional<std::string> cluster_at_start;  // envoy.tcp_proxy.cluster when tcp_proxy started
  bool closed_by_filter = false;
  bool downstream_closed = false;
  bool upstream_closed = false;
  bool downstream_end_of_stream = false;  // the client half-closed (seen by the filter)
  bool upstream_end_released = false;     // that half-close was released towards the upstream
  bool downstream_end_released = false;   // the upstream's half-close was released to the client
  bool filter_skipped = false;  // fail-open on a failed VM: the filter was not in the chain
  uint64_t instructions = 0;    // wasm instructions run for this connection
};

// What the network filter manager tells an embedder (a proxy) about one connection, as it
// happens, so the embedder never polls Connection. Byte views are valid during the call only.
class ConnectionObserver {
 public:
  virtual ~ConnectionObserver() = default;
  // The chain reached tcp_proxy; cluster is the filter state envoy.tcp_proxy.cluster, if set.
  virtual void onTcpProxyStart(const std::optional<std::string>& cluster) = 0;
  // Bytes the filter released towards the upstream / the client; end_of_stream passes a half-close
  // on (delivered once per direction).
  virtual void onReleaseUpstream(std::string_view bytes, bool end_of_stream) = 0;
  virtual void onReleaseDownstream(std::string_view bytes, bool end_of_stream) = 0;
  // The filter, or a fail-closed VM, closed the connection.
  virtual void onCloseByFilter() = 0;
};

struct Failure {
  std::string callback;  // e.g. "proxy_on_new_connection"
  std::string message;   // the trap message
};

class Vm {
 public:
  ~Vm();
  Vm(const Vm&) = delete;
  Vm& operator=(const Vm&) = delete;

  // Checks the module as Envoy would (load-time limits, imports available on a host of this WASI
  // tier, ABI marker, allocator, export signatures), without instantiating it.
  static LoadReport inspect(std::span<const uint8_t> module, WasiTier tier = WasiTier::kTier1);
  // Loads and instantiates (the start function runs under the budget). nullptr when Envoy would
  // refuse the module or instantiation fails; *report says why.
  static std::unique_ptr<Vm> load(std::span<const uint8_t> module, VmOptions options,
                                  LoadReport* report);

  // _initialize (+ main) or _start, under the start-up allow-list. False if the VM failed.
  bool start();
  enum class PluginStatus : uint8_t { kOk, kVmStartFailed, kConfigRejected, kFailed };
  // proxy_on_context_create(root) -> proxy_on_vm_start -> proxy_on_configure.
  PluginStatus startPlugin(const PluginOptions& plugin);
  PluginStatus reconfigure(const std::string& configuration);

  // Per connection, in Envoy's order. Properties are derived from the addresses; override any with
  // setProperty before newConnection via the extra map.
  // With an observer, released bytes and stream events go to it as they happen; without one they
  // accumulate in Connection (forwarded_upstream/_downstream) for tests to inspect.
  uint32_t newConnection(const std::string& source_address, const std::string& destination_address,
                         const std::map<std::string, std::string>& extra_properties = {},
                         ConnectionObserver* observer = nullptr);
  Action downstreamData(uint32_t connection, std::string_view bytes, bool end_of_stream);
  Action upstreamData(uint32_t connection, std::string_view bytes, bool end_of_stream);
  void closeDownstream(uint32_t connection, PeerType peer);  // runs close, done, log, delete
  // Host calls made by the module from inside a callback are applied when it returns, as Envoy
  // does. While the filter pauses, downstream bytes are held; an embedder stops reading once
  // bufferedDownstreamBytes reaches limits::kMaxStreamBufferBytes (Envoy's read-disable).
  size_t bufferedDownstreamBytes(uint32_t connection) const;

  const Connection* connection(uint32_t connection) const;
  // Hands over the bytes released so far in each direction (a proxy writes them to its sockets).
  std::string takeForwardedUpstream(uint32_t connection);
  std::string takeForwardedDownstream(uint32_t connection);
  void forgetConnection(uint32_t connection);  // drop a finished connection's record

  // Inspection.
  const std::vector<LogEntry>& logs() const;
  void clearLogs();
  std::vector<std::string> logLines(LogLevel at_least = LogLevel::kTrace) const;
  const std::map<uint32_t, Metric>& metrics() const;
  std::optional<int64_t> metricValue(const std::string& name) const;
  bool failed() const { return failure_.has_value(); }
  const std::optional<Failure>& failure() const { return failure_; }
  uint64_t lastCallbackInstructions() const { return last_instructions_; }
  bool precompiled() const { return precompiled_; }  // which engine load() picked
  uint64_t totalInstructions() const;
  uint64_t memoryBytes() const;
  uint32_t rootContextId() const;
  size_t liveConnections() const;
  void setLogLevel(LogLevel level);
  void setTimeNanoseconds(uint64_t now);
  // Instructions per module function index (imports first), most expensive first.
  void enableProfile();
  std::vector<std::pair<uint32_t, uint64_t>> profile() const;

 private:
  Vm(std::unique_ptr<WasmEngine> engine, VmOptions options);
  std::function<bool(std::span<const uint64_t>, std::span<uint64_t>, std::string*)> bindImport(
      const ImportRow& row);

  // Calls a callback export; false if missing or failed (the VM is then failed).
  bool invoke(const char* name, std::initializer_list<uint64_t> args, uint64_t* result,
              uint32_t context);
  void fail(const std::string& callback, const std::string& message);

  // The network-filter state machine (network_filter.cc).
  Action invokeAction(const char* name, std::initializer_list<uint64_t> args,
                      Connection& connection);
  void startTcpProxy(Connection& connection);
  void releaseUpstream(Connection& connection);
  void releaseDownstream(Connection& connection, bool end_of_stream);
  void closeByFilter(Connection& connection);
  void applyDeferred(Connection& connection);
  ConnectionObserver* observerOf(const Connection& connection) const;

  std::unique_ptr<WasmEngine> engine_;
  std::unique_ptr<EnvoyHost> envoy_;
  std::unique_ptr<GuestMemory> memory_;
  std::map<uint32_t, ConnectionObserver*> observers_;
  std::string abi_version_;
  std::string malloc_export_;
  std::optional<Failure> failure_;
  uint64_t last_instructions_ = 0;
  bool precompiled_ = false;
};

}  // namespace tcpsteer::host
