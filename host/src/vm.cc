// Vm: the façade over one instantiated module. Loading picks an engine and binds the import table;
// start-up and plugin configuration run the root context's callbacks; the per-connection state
// machine is in network_filter.cc and Envoy's side of the imports in envoy_host.cc and its peers.
#include "tcpsteer/host/vm.h"

#include <array>

#include "host/src/engine/precompiled_engine.h"
#include "host/src/engine/wasm_engine.h"
#include "host/src/envoy_host.h"
#include "host/src/guest_memory.h"
#include "host/src/import_table.h"

namespace tcpsteer::host {

const char* logLevelName(LogLevel level) {
  static constexpr const char* kNames[] = {"trace", "debug", "info", "warn", "error", "critical"};
  auto index = static_cast<size_t>(level);
  return index <= proxy_wasm::kMaxLogLevel ? kNames[index] : "unknown";
}

Vm::Vm(std::unique_ptr<WasmEngine> engine, VmOptions options)
    : engine_(std::move(engine)), envoy_(std::make_unique<EnvoyHost>(std::move(options))) {
  memory_ = std::make_unique<GuestMemory>(*engine_, [this](uint32_t size) {
    CallWindow saved = envoy_->window;
    envoy_->window = CallWindow::kAllocator;
    CallOutcome outcome = engine_->call(malloc_export_, std::array<uint64_t, 1>{size});
    envoy_->window = saved;
    if (outcome.status == CallOutcome::Status::kTrap)
      outcome.message = malloc_export_ + ": " + outcome.message;
    return outcome;
  });
}

Vm::~Vm() = default;

std::unique_ptr<Vm> Vm::load(std::span<const uint8_t> module, VmOptions options,
                             LoadReport* report) {
  LoadReport local;
  LoadReport& out = report != nullptr ? *report : local;
  out = inspect(module, options.wasi_tier);
  if (!out.ok) return nullptr;
  // Precompiled when asked for or (auto) when this is the built module; else the interpreter.
  Result<std::unique_ptr<WasmEngine>> engine = Error{"no engine"};
  if (options.engine != EngineChoice::kInterpreter) engine = makePrecompiledEngine(module);
  const bool precompiled = engine.ok();
  if (!engine && options.engine != EngineChoice::kPrecompiled) engine = WasmEngine::parse(module);
  if (!engine) {
    out.ok = false;
    out.problems.push_back(engine.error());
    return nullptr;
  }
  std::unique_ptr<Vm> vm(new Vm(std::move(*engine), std::move(options)));
  vm->precompiled_ = precompiled;
  vm->abi_version_ = out.abi_version;
  // From the export list: the start function may already need the allocator.
  vm->malloc_export_ = "proxy_on_memory_allocate";
  for (const ExportDesc& e : vm->engine_->exports()) {
    if (e.name == "malloc" && e.kind == ExternKind::kFunc) vm->malloc_export_ = "malloc";
  }
  vm->engine_->setInstructionBudget(vm->envoy_->options.instruction_budget);
  std::vector<HostFunction> functions;
  for (const ImportDesc& import : vm->engine_->imports()) {
    const ImportRow* row =
        import.kind == ExternKind::kFunc ? findImport(import.module, import.name) : nullptr;
    functions.push_back(row != nullptr ? vm->bindImport(*row) : HostFunction());
  }
  // The start function (if any) runs here: as in Envoy, inside the start-up window.
  vm->envoy_->window = CallWindow::kStartup;
  Result<void> instantiated = vm->engine_->instantiate(functions);
  vm->envoy_->window = CallWindow::kNone;
  if (!instantiated) {
    out.ok = false;
    out.problems.push_back(instantiated.error());
    return nullptr;
  }
  return vm;
}

HostFunction Vm::bindImport(const ImportRow& row) {
  // WASI tier 2 (Envoy 1.34+) also allows fd_fdstat_get during start-up.
  const bool startup_ok = row.allowedAtStartup() || (row.name == "fd_fdstat_get" &&
                                                     envoy_->options.wasi_tier >= WasiTier::kTier2);
  return [this, &row, startup_ok](std::span<const uint64_t> args, std::span<uint64_t> results,
                                  std::string* trap) {
    CallWindow window = envoy_->window;
    if ((window == CallWindow::kStartup && !startup_ok) ||
        (window == CallWindow::kAllocator && !row.allowedInAllocator())) {
      *trap = "restricted_callback: " + std::string(row.name) + " is not allowed " +
              (window == CallWindow::kStartup ? "during start-up" : "inside the allocator");
      return false;
    }
    ImportCall call{args, *memory_, *envoy_, {}};
    uint32_t result = row.function(call);
    if (!call.trap.empty()) {
      *trap = std::move(call.trap);
      return false;
    }
    if (row.returnsValue() && !results.empty()) results[0] = result;
    return true;
  };
}

void Vm::fail(const std::string& callback, const std::string& message) {
  if (!failure_) failure_ = Failure{callback, message};
  envoy_->logs.addHostLine(LogLevel::kCritical, envoy_->current_context,
                           "wasm VM failed in " + callback + ": " + message);
}

bool Vm::invoke(const char* name, std::initializer_list<uint64_t> args, uint64_t* result,
                uint32_t context) {
  if (failure_) return false;
  if (!engine_->hasFunction(name)) return false;
  envoy_->current_context = context;
  CallOutcome outcome = engine_->call(name, std::span<const uint64_t>(args.begin(), args.size()));
  last_instructions_ = outcome.instructions;
  if (auto it = envoy_->connections.find(context); it != envoy_->connections.end())
    it->second.instructions += outcome.instructions;
  if (!outcome.ok()) {
    fail(name, outcome.message);
    return false;
  }
  if (result != nullptr) *result = outcome.results.empty() ? 0 : outcome.results[0];
  return true;
}

bool Vm::start() {
  envoy_->window = CallWindow::kStartup;
  bool ok = true;
  if (engine_->hasFunction("_initialize")) {
    ok = invoke("_initialize", {}, nullptr, 0);
    if (ok && engine_->hasFunction("main")) ok = invoke("main", {0, 0}, nullptr, 0);
  } else if (engine_->hasFunction("_start")) {
    ok = invoke("_start", {}, nullptr, 0);
  }
  envoy_->window = CallWindow::kNone;
  return ok && !failure_;
}

Vm::PluginStatus Vm::startPlugin(const PluginOptions& plugin) {
  envoy_->plugin = plugin;
  if (failure_) return PluginStatus::kFailed;
  uint32_t root = envoy_->root_context_id = envoy_->next_context_id++;
  invoke("proxy_on_context_create", {root, 0}, nullptr, root);
  uint64_t started = 1;
  if (engine_->hasFunction("proxy_on_vm_start") &&
      !invoke("proxy_on_vm_start", {root, envoy_->options.vm_configuration.size()}, &started,
              root)) {
    return PluginStatus::kFailed;
  }
  if (failure_) return PluginStatus::kFailed;
  if (started == 0) return PluginStatus::kVmStartFailed;
  return reconfigure(plugin.configuration);
}

Vm::PluginStatus Vm::reconfigure(const std::string& configuration) {
  envoy_->plugin.configuration = configuration;
  if (failure_) return PluginStatus::kFailed;
  uint64_t configured = 1;
  envoy_->in_configure = true;
  bool ok = !engine_->hasFunction("proxy_on_configure") ||
            invoke("proxy_on_configure", {envoy_->root_context_id, configuration.size()},
                   &configured, envoy_->root_context_id);
  envoy_->in_configure = false;
  if (!ok || failure_) return PluginStatus::kFailed;
  return configured == 0 ? PluginStatus::kConfigRejected : PluginStatus::kOk;
}

const std::vector<LogEntry>& Vm::logs() const {
  return envoy_->logs.entries();
}
void Vm::clearLogs() {
  envoy_->logs.clear();
}
std::vector<std::string> Vm::logLines(LogLevel at_least) const {
  std::vector<std::string> lines;
  for (const LogEntry& entry : envoy_->logs.entries()) {
    if (entry.level >= at_least) lines.push_back(entry.message);
  }
  return lines;
}
const std::map<uint32_t, Metric>& Vm::metrics() const {
  return envoy_->metrics.all();
}
std::optional<int64_t> Vm::metricValue(const std::string& name) const {
  return envoy_->metrics.valueOf(name);
}
uint32_t Vm::rootContextId() const {
  return envoy_->root_context_id;
}
size_t Vm::liveConnections() const {
  return envoy_->connections.size();
}
void Vm::setLogLevel(LogLevel level) {
  envoy_->options.log_level = level;
}
void Vm::setTimeNanoseconds(uint64_t now) {
  envoy_->now_ns = now;
}
void Vm::enableProfile() {
  engine_->enableProfile();
}
std::vector<std::pair<uint32_t, uint64_t>> Vm::profile() const {
  return engine_->profile();
}
uint64_t Vm::totalInstructions() const {
  return engine_->instructionsExecuted();
}
uint64_t Vm::memoryBytes() const {
  return engine_->memorySize();
}

}  // namespace tcpsteer::host
