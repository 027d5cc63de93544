// The filter's cost per connection lifecycle in the host emulator (context create, new connection,
// close, done, log, delete): wasm instructions (exact, from the interpreter) and wall time, plus
// the module's linear memory and the one-time on_configure cost. Each row prints its goal and the
// anchors of issue #11 beside the figure: the Rust SDK's envoy_tcp_routing example (78,500 x86 in
// the upstream host, / 10.5 x86 per counted wasm instruction = 7,476) and this module before the
// work (4,911 with the line off, 9,610 with it).
// Traffic shapes: "sidecar" is one pod's connections (its own IP as every source, new source
// ports, one service), "cold" gives every connection a new source and destination address, and
// "cold_long_addresses" new sources whose octets all have three digits (the longest to read).
// The *Precompiled variants run the same lifecycle on the wasm2c engine (no instruction counts).
#include <benchmark/benchmark.h>

#include <fstream>
#include <sstream>
#include <string>

#include "tcpsteer/host/vm.h"

namespace {

using tcpsteer::host::LogLevel;
using tcpsteer::host::Vm;

constexpr double kRustSdkExampleWasmEquivalent = 78500.0 / 10.5;
constexpr double kGoalLineOff = 1500;
constexpr double kGoalLineOn = 3000;

const char* const kRules =
    R"({"targets": ["a-{port}", "b-{port}", "c-{port}"], "rules": [{"source_cidr": "10.1.0.0/16", "target": 2},
        {"last_octet": [100, 199], "target": 1}], "port_map": {"443": 8443}})";

enum class Traffic { kSidecar, kCold, kColdLong, kUnroutable };

std::string readModule() {
  std::ifstream file(TCPSTEER_WASM_MODULE, std::ios::binary);
  std::stringstream bytes;
  bytes << file.rdbuf();
  return bytes.str();
}

std::unique_ptr<Vm> startVm(benchmark::State& state, const std::string& configuration,
                            LogLevel level, tcpsteer::host::EngineChoice engine,
                            uint64_t* configure_instructions) {
  static const std::string bytes = readModule();
  tcpsteer::host::VmOptions options;
  options.log_level = level;
  options.engine = engine;
  auto vm =
      Vm::load({reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()}, options, nullptr);
  if (!vm || !vm->start() ||
      vm->startPlugin({"tcpsteer", configuration, "tcpsteer", "", {}}) != Vm::PluginStatus::kOk) {
    state.SkipWithError("module did not start; run make wasm");
    return nullptr;
  }
  if (configure_instructions != nullptr) *configure_instructions = vm->lastCallbackInstructions();
  return vm;
}

// before: this module's figure for the case before issue #11 (0 = not measured then).
void lifecycle(benchmark::State& state, const std::string& configuration, LogLevel level,
               Traffic traffic, double before = 0,
               tcpsteer::host::EngineChoice engine = tcpsteer::host::EngineChoice::kInterpreter) {
  auto vm = startVm(state, configuration, level, engine, nullptr);
  if (!vm) return;
  uint64_t instructions = 0;
  uint64_t lifecycles = 0;
  unsigned n = 0;
  for (auto _ : state) {
    ++n;
    std::string source;
    std::string destination = "93.184.216.34:443";
    switch (traffic) {
      case Traffic::kSidecar:
        source = "10.244.0.13:" + std::to_string(1024 + n % 60000);
        break;
      case Traffic::kCold:
        source = "10." + std::to_string(n >> 16 & 255) + '.' + std::to_string(n >> 8 & 255) + '.' +
                 std::to_string(n & 255) + ":40000";
        destination =
            "93.184." + std::to_string(n >> 8 & 255) + '.' + std::to_string(n & 255) + ":443";
        break;
      case Traffic::kColdLong:  // new sources of three-digit octets only: the longest to read
        source = "10." + std::to_string(100 + n % 100) + '.' + std::to_string(150 + n / 100 % 100) +
                 '.' + std::to_string(200 + n % 50) + ":40000";
        destination =
            "93.184." + std::to_string(n >> 8 & 255) + '.' + std::to_string(n & 255) + ":443";
        break;
      case Traffic::kUnroutable:
        source = "unix:/var/run/app.sock";
        break;
    }
    uint32_t id = vm->newConnection(source, destination);
    vm->closeDownstream(id, tcpsteer::host::PeerType::kRemote);
    instructions += vm->connection(id)->instructions;
    ++lifecycles;
    vm->forgetConnection(id);
    vm->clearLogs();
  }
  state.counters["wasm_instructions_per_lifecycle"] = benchmark::Counter(
      lifecycles ? static_cast<double>(instructions) / static_cast<double>(lifecycles) : 0);
  if (engine == tcpsteer::host::EngineChoice::kInterpreter) {
    // The line is written when the host's level is at most the line's: info for a decision, warn
    // for an unroutable source.
    LogLevel line = traffic == Traffic::kUnroutable ? LogLevel::kWarn : LogLevel::kInfo;
    state.counters["goal"] = level <= line ? kGoalLineOn : kGoalLineOff;
    if (before > 0) state.counters["before"] = before;
    state.counters["rust_sdk_example"] = kRustSdkExampleWasmEquivalent;
  }
  state.counters["linear_memory_pages"] =
      benchmark::Counter(static_cast<double>(vm->memoryBytes()) / 65536.0);
  state.SetItemsProcessed(static_cast<int64_t>(lifecycles));
}

// The decision line's level is info; the host at warn (Istio's default) drops it.
BENCHMARK_CAPTURE(lifecycle, istio_line_off_sidecar, "istio", LogLevel::kWarn, Traffic::kSidecar,
                  4911);
BENCHMARK_CAPTURE(lifecycle, istio_line_off_cold, "istio", LogLevel::kWarn, Traffic::kCold, 4911);
BENCHMARK_CAPTURE(lifecycle, istio_line_on_sidecar, "istio", LogLevel::kInfo, Traffic::kSidecar,
                  9610);
BENCHMARK_CAPTURE(lifecycle, istio_line_on_cold, "istio", LogLevel::kInfo, Traffic::kCold, 9610);
BENCHMARK_CAPTURE(lifecycle, rules_line_off_sidecar, kRules, LogLevel::kWarn, Traffic::kSidecar);
BENCHMARK_CAPTURE(lifecycle, rules_line_off_cold, kRules, LogLevel::kWarn, Traffic::kCold);
BENCHMARK_CAPTURE(lifecycle, rules_line_off_cold_long_addresses, kRules, LogLevel::kWarn,
                  Traffic::kColdLong);
BENCHMARK_CAPTURE(lifecycle, istio_line_off_cold_long_addresses, "istio", LogLevel::kWarn,
                  Traffic::kColdLong);
BENCHMARK_CAPTURE(lifecycle, rules_line_on_sidecar, kRules, LogLevel::kInfo, Traffic::kSidecar);
BENCHMARK_CAPTURE(lifecycle, rules_line_on_cold, kRules, LogLevel::kInfo, Traffic::kCold);
BENCHMARK_CAPTURE(lifecycle, dry_run_line_off_sidecar, R"({"mode": "dry-run"})", LogLevel::kWarn,
                  Traffic::kSidecar);
BENCHMARK_CAPTURE(lifecycle, dry_run_line_off_cold, R"({"mode": "dry-run"})", LogLevel::kWarn,
                  Traffic::kCold);
BENCHMARK_CAPTURE(lifecycle, dry_run_line_on_sidecar, R"({"mode": "dry-run"})", LogLevel::kInfo,
                  Traffic::kSidecar);
BENCHMARK_CAPTURE(lifecycle, dry_run_line_on_cold, R"({"mode": "dry-run"})", LogLevel::kInfo,
                  Traffic::kCold);
// An unroutable source is always a warn line (a misconfiguration): "off" is the host at error.
BENCHMARK_CAPTURE(lifecycle, unroutable_line_off, "istio", LogLevel::kError, Traffic::kUnroutable);
BENCHMARK_CAPTURE(lifecycle, unroutable_line_on, "istio", LogLevel::kWarn, Traffic::kUnroutable);
BENCHMARK_CAPTURE(lifecycle, istio_line_off_sidecar_precompiled, "istio", LogLevel::kWarn,
                  Traffic::kSidecar, 0, tcpsteer::host::EngineChoice::kPrecompiled);
BENCHMARK_CAPTURE(lifecycle, istio_line_on_sidecar_precompiled, "istio", LogLevel::kInfo,
                  Traffic::kSidecar, 0, tcpsteer::host::EngineChoice::kPrecompiled);

// on_configure: once per plugin, but a reconfiguration runs it on every worker.
void onConfigure(benchmark::State& state, const std::string& configuration) {
  uint64_t instructions = 0;
  for (auto _ : state) {
    state.PauseTiming();
    auto vm = startVm(state, configuration, LogLevel::kWarn,
                      tcpsteer::host::EngineChoice::kInterpreter, &instructions);
    state.ResumeTiming();
    if (!vm) return;
  }
  state.counters["on_configure_wasm_instructions"] = static_cast<double>(instructions);
}
BENCHMARK_CAPTURE(onConfigure, istio, "istio")->Iterations(20);
BENCHMARK_CAPTURE(onConfigure, rules, kRules)->Iterations(20);

}  // namespace

BENCHMARK_MAIN();
