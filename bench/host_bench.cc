// The filter's cost per connection lifecycle in the host emulator (context create, new connection,
// close, done, log, delete): wasm instructions (exact, from the interpreter) and wall time, plus
// the module's linear memory. Goals: <= 1,500 instructions per lifecycle, <= 2 pages of memory.
// The *Precompiled variants run the same lifecycle on the wasm2c engine (no instruction counts).
#include <benchmark/benchmark.h>

#include <fstream>
#include <sstream>
#include <string>

#include "tcpsteer/host/vm.h"

namespace {

using tcpsteer::host::LogLevel;
using tcpsteer::host::Vm;

std::string readModule() {
  std::ifstream file(TCPSTEER_WASM_MODULE, std::ios::binary);
  std::stringstream bytes;
  bytes << file.rdbuf();
  return bytes.str();
}

void lifecycle(benchmark::State& state, const std::string& configuration, LogLevel level,
               tcpsteer::host::EngineChoice engine = tcpsteer::host::EngineChoice::kInterpreter) {
  static const std::string bytes = readModule();
  tcpsteer::host::VmOptions options;
  options.log_level = level;
  options.engine = engine;
  auto vm =
      Vm::load({reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()}, options, nullptr);
  if (!vm || !vm->start() ||
      vm->startPlugin({"tcpsteer", configuration, "tcpsteer", ""}) != Vm::PluginStatus::kOk) {
    state.SkipWithError("module did not start; run make wasm");
    return;
  }
  uint64_t instructions = 0;
  uint64_t lifecycles = 0;
  int octet = 0;
  for (auto _ : state) {
    uint32_t id = vm->newConnection("10.244.0." + std::to_string(octet++ & 255) + ":40000",
                                    "93.184.216.34:443");
    vm->closeDownstream(id, tcpsteer::host::PeerType::kRemote);
    instructions += vm->connection(id)->instructions;
    ++lifecycles;
    vm->forgetConnection(id);
    vm->clearLogs();
  }
  state.counters["wasm_instructions_per_lifecycle"] = benchmark::Counter(
      lifecycles ? static_cast<double>(instructions) / static_cast<double>(lifecycles) : 0);
  state.counters["linear_memory_pages"] =
      benchmark::Counter(static_cast<double>(vm->memoryBytes()) / 65536.0);
  state.SetItemsProcessed(static_cast<int64_t>(lifecycles));
}

void BM_LifecycleIstioLogsOff(benchmark::State& state) {
  lifecycle(state, "istio", LogLevel::kWarn);
}
BENCHMARK(BM_LifecycleIstioLogsOff);

void BM_LifecycleIstioDecisionLogged(benchmark::State& state) {
  lifecycle(state, "istio", LogLevel::kInfo);
}
BENCHMARK(BM_LifecycleIstioDecisionLogged);

void BM_LifecycleRules(benchmark::State& state) {
  lifecycle(
      state,
      R"({"targets": ["a-{port}", "b-{port}", "c-{port}"], "rules": [{"source_cidr": "10.1.0.0/16", "target": 2},
                {"last_octet": [100, 199], "target": 1}], "port_map": {"443": 8443}})",
      LogLevel::kWarn);
}
BENCHMARK(BM_LifecycleRules);

void BM_LifecycleIstioLogsOffPrecompiled(benchmark::State& state) {
  lifecycle(state, "istio", LogLevel::kWarn, tcpsteer::host::EngineChoice::kPrecompiled);
}
BENCHMARK(BM_LifecycleIstioLogsOffPrecompiled);

void BM_LifecycleIstioDecisionLoggedPrecompiled(benchmark::State& state) {
  lifecycle(state, "istio", LogLevel::kInfo, tcpsteer::host::EngineChoice::kPrecompiled);
}
BENCHMARK(BM_LifecycleIstioDecisionLoggedPrecompiled);

}  // namespace

BENCHMARK_MAIN();
