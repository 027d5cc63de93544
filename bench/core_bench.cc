// Routing decisions per second (native), configuration parse time, and the module's size.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "filter/core/config.h"
#include "filter/core/decision.h"
#include "filter/core/filter_state.h"

namespace {

void BM_DecideIstioPreset(benchmark::State& state) {
  tcpsteer::Config config = tcpsteer::istioPreset();
  for (auto _ : state) {
    benchmark::DoNotOptimize(tcpsteer::decide(config, "10.244.0.13:51234", "93.184.216.34:443"));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DecideIstioPreset);

void BM_DecideWithRules(benchmark::State& state) {
  tcpsteer::ConfigResult parsed =
      tcpsteer::parseConfig(R"({"targets": ["a-{port}", "b-{port}", "c-{port}"],
      "rules": [{"source_cidr": "10.1.0.0/16", "target": 2}, {"source_cidr": "fd00::/8", "target": 0},
                {"last_octet": [100, 199], "target": 1}],
      "port_map": {"443": 8443}, "match_ports": [443, 80]})");
  if (!parsed.config) {
    state.SkipWithError(parsed.error.message().c_str());
    return;
  }
  const tcpsteer::Config& config = *parsed.config;
  for (auto _ : state) {
    benchmark::DoNotOptimize(tcpsteer::decide(config, "[2001:db8::17]:51234", "[2001:db8::1]:443"));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DecideWithRules);

void BM_EncodeFilterState(benchmark::State& state) {
  for (auto _ : state) {
    benchmark::DoNotOptimize(tcpsteer::encodeSetEnvoyFilterStateArguments(
        tcpsteer::kTcpProxyClusterKey, "outbound|443||egress1.default.svc.cluster.local"));
  }
}
BENCHMARK(BM_EncodeFilterState);

void BM_ParseConfig(benchmark::State& state) {
  const std::string text = R"({"targets": ["outbound|{port}||egress1.default.svc.cluster.local",
      "outbound|{port}||egress2.default.svc.cluster.local"], "rules": [{"source_cidr": "10.0.0.0/8", "target": 1}],
      "port_map": {"443": 8443}, "mode": "route"})";
  for (auto _ : state) benchmark::DoNotOptimize(tcpsteer::parseConfig(text));
}
BENCHMARK(BM_ParseConfig);

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  std::error_code error;
  auto size = std::filesystem::file_size(TCPSTEER_WASM_MODULE, error);
  if (error) {
    std::printf("module size: %s not built\n", TCPSTEER_WASM_MODULE);
  } else {
    std::printf("module size: %ju bytes (%s; budget 32768, goal 16384)\n",
                static_cast<uintmax_t>(size), TCPSTEER_WASM_MODULE);
  }
  return 0;
}
