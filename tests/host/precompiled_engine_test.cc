// The precompiled (wasm2c) engine: runs only the module it was built from, traps like the
// interpreter (out-of-bounds access, failing host functions) and keeps working after a trap, and
// is safe with one VM per thread. The filter's behaviour on it is covered by FilterInHost, which
// runs every scenario on both engines.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>

#include "host/src/engine/precompiled_engine.h"
#include "tcpsteer/host/vm.h"
#include "tests/host/test_modules.h"

namespace tcpsteer::host {
namespace {

using test_modules::fileBytes;

std::span<const uint8_t> bytesOf(const std::string& text) {
  return test_modules::span(text);
}

const std::string& filterModule() {
  static const std::string bytes = fileBytes(TCPSTEER_WASM_MODULE);
  return bytes;
}

TEST(PrecompiledEngine, RunsOnlyTheModuleItWasBuiltFrom) {
  EXPECT_TRUE(precompiledMatches(bytesOf(filterModule())));
  std::string changed = filterModule();
  changed[changed.size() - 1] ^= 1;
  EXPECT_FALSE(precompiledMatches(bytesOf(changed)));

  const std::string other = fileBytes(std::string(TCPSTEER_TEST_MODULES) + "/malloc_reentry.wasm");
  VmOptions options;
  options.engine = EngineChoice::kPrecompiled;
  LoadReport report;
  EXPECT_EQ(Vm::load(bytesOf(other), options, &report), nullptr);
  ASSERT_FALSE(report.problems.empty());
  EXPECT_NE(report.problems.back().find("not the one tcpsteer was built with"), std::string::npos)
      << report.problems.back();

  options.engine =
      EngineChoice::kAuto;  // auto: interpreter for other modules, precompiled for ours
  auto interpreted = Vm::load(bytesOf(other), options, &report);
  ASSERT_NE(interpreted, nullptr);
  EXPECT_FALSE(interpreted->precompiled());
  auto precompiled = Vm::load(bytesOf(filterModule()), options, &report);
  ASSERT_NE(precompiled, nullptr);
  EXPECT_TRUE(precompiled->precompiled());
}

// Host functions that answer every import with Ok, except the ones a test overrides.
struct Host {
  std::unique_ptr<WasmEngine> engine;
  std::vector<HostFunction> functions;

  explicit Host(std::unique_ptr<WasmEngine> e) : engine(std::move(e)) {
    for (size_t i = 0; i < engine->imports().size(); ++i) {
      functions.emplace_back(
          [](std::span<const uint64_t>, std::span<uint64_t> results, std::string*) {
            for (uint64_t& r : results) r = 0;
            return true;
          });
    }
  }
  void override(const std::string& name, const HostFunction& function) {
    for (size_t i = 0; i < engine->imports().size(); ++i)
      if (engine->imports()[i].name == name) functions[i] = function;
  }
  void put32(uint64_t address, uint32_t value) {
    std::memcpy(engine->memoryData() + address, &value, sizeof value);
  }
  CallOutcome call(const std::string& name, std::vector<uint64_t> args) {
    return engine->call(name, args);
  }
  void startRootAndConnection() {
    auto instantiated = engine->instantiate(functions);
    ASSERT_TRUE(instantiated) << instantiated.error();
    ASSERT_TRUE(call("_initialize", {}).ok());
    ASSERT_TRUE(call("proxy_on_context_create", {1, 0}).ok());
    ASSERT_TRUE(call("proxy_on_vm_start", {1, 0}).ok());
    ASSERT_TRUE(call("proxy_on_configure", {1, 0}).ok());
    ASSERT_TRUE(call("proxy_on_context_create", {2, 1}).ok());
  }
};

std::unique_ptr<WasmEngine> makeEngine(bool precompiled) {
  auto engine = precompiled ? makePrecompiledEngine(bytesOf(filterModule()))
                            : WasmEngine::parse(bytesOf(filterModule()));
  EXPECT_TRUE(engine) << engine.error();
  return engine ? std::move(*engine) : nullptr;
}

TEST(PrecompiledEngine, OutOfBoundsAccessTrapsLikeTheInterpreterAndTheEngineKeepsWorking) {
  for (bool precompiled : {false, true}) {
    SCOPED_TRACE(precompiled ? "precompiled" : "interpreter");
    Host host(makeEngine(precompiled));
    // Once the connection exists, a host that hands the guest a property value far outside its
    // memory (before that: no properties, NotFound).
    bool armed = false;
    host.override("proxy_get_property", [&host, &armed](std::span<const uint64_t> args,
                                                        std::span<uint64_t> results, std::string*) {
      if (!armed) {
        results[0] = 1;
        return true;
      }
      host.put32(args[2], 0xFFFFFF00u);
      host.put32(args[3], 64);
      results[0] = 0;
      return true;
    });
    host.startRootAndConnection();
    armed = true;
    CallOutcome outcome = host.call("proxy_on_new_connection", {2});
    EXPECT_EQ(outcome.status, CallOutcome::Status::kTrap);
    EXPECT_NE(outcome.message.find("out of bounds"), std::string::npos) << outcome.message;
    // The trap unwound cleanly: the next call runs.
    CallOutcome again = host.call("malloc", {16});
    ASSERT_TRUE(again.ok()) << again.message;
    EXPECT_NE(again.results.at(0), 0u);
  }
}

TEST(PrecompiledEngine, FailingHostFunctionTrapsWithItsMessage) {
  Host host(makeEngine(true));
  host.override("proxy_log", [](std::span<const uint64_t>, std::span<uint64_t>, std::string* trap) {
    *trap = "proxy_log refused by the test host";
    return false;
  });
  auto instantiated = host.engine->instantiate(host.functions);
  ASSERT_TRUE(instantiated) << instantiated.error();
  ASSERT_TRUE(host.call("_initialize", {}).ok());
  ASSERT_TRUE(host.call("proxy_on_context_create", {1, 0}).ok());
  host.call("proxy_on_vm_start", {1, 0});
  CallOutcome outcome = host.call("proxy_on_configure", {1, 0});  // logs "configured ..."
  EXPECT_EQ(outcome.status, CallOutcome::Status::kTrap);
  EXPECT_EQ(outcome.message, "proxy_log refused by the test host");
  EXPECT_TRUE(host.call("malloc", {8}).ok());
  EXPECT_EQ(host.call("no_such_export", {}).status, CallOutcome::Status::kMissing);
}

// Differential: the same configurations and random connections (valid, odd and malformed source
// and destination texts) give the same cluster, filter state, close decision, log lines and
// counters on both engines.
TEST(PrecompiledEngine, SameBehaviourAsTheInterpreterOnRandomInputs) {
  const std::vector<std::string> configurations = {
      "",
      "standalone",
      R"({"targets": ["a-{port}", "b-{port}", "c-{port}"], "rules": [{"source_cidr": "10.1.0.0/16",
          "target": 2}, {"last_octet": [100, 199], "target": 1}], "port_map": {"443": 8443}})",
      R"({"preset": "standalone", "mode": "dry-run", "log_level": "debug"})",
      R"({"match_ports": [443, 80], "on_unroutable": "close"})",
      R"({"rules": [{"source_cidr": "fd00::/8", "target": 1}], "log_level": "warn"})"};
  std::mt19937 random(20261126);
  auto pick = [&random](size_t n) { return static_cast<size_t>(random() % n); };
  auto address = [&]() -> std::string {
    switch (pick(6)) {
      case 0:
        return std::to_string(pick(256)) + "." + std::to_string(pick(256)) + "." +
               std::to_string(pick(256)) + "." + std::to_string(pick(256)) + ":" +
               std::to_string(pick(65536));
      case 1:
        return "[fd00::" + std::to_string(pick(10000)) + "]:" + std::to_string(pick(65536));
      case 2:
        return "[::ffff:10.1." + std::to_string(pick(256)) + ".7]:443";
      case 3:
        return "";
      default: {
        std::string junk(pick(40), '\0');
        for (char& c : junk) c = static_cast<char>(pick(256));
        return junk;
      }
    }
  };
  for (const std::string& configuration : configurations) {
    SCOPED_TRACE(configuration);
    std::unique_ptr<Vm> vms[2];
    for (int precompiled = 0; precompiled < 2; ++precompiled) {
      VmOptions options;
      options.engine = precompiled ? EngineChoice::kPrecompiled : EngineChoice::kInterpreter;
      LoadReport report;
      vms[precompiled] = Vm::load(bytesOf(filterModule()), options, &report);
      ASSERT_NE(vms[precompiled], nullptr);
      ASSERT_TRUE(vms[precompiled]->start());
      ASSERT_EQ(vms[precompiled]->startPlugin({"tcpsteer", configuration, "tcpsteer", "", {}}),
                Vm::PluginStatus::kOk);
    }
    EXPECT_EQ(vms[0]->logLines(), vms[1]->logLines());
    int rerouted = 0;
    for (int i = 0; i < 1500; ++i) {
      const std::string source = address();
      const std::string destination =
          pick(4) == 0 ? address() : "10.96.0.1:" + std::to_string(pick(3) ? 443 : 80);
      const Connection* seen[2];
      uint32_t ids[2];
      for (int e = 0; e < 2; ++e) {
        vms[e]->clearLogs();
        ids[e] = vms[e]->newConnection(source, destination);
        seen[e] = vms[e]->connection(ids[e]);
      }
      ASSERT_EQ(seen[0]->cluster_at_start, seen[1]->cluster_at_start)
          << source << " -> " << destination;
      ASSERT_EQ(seen[0]->filter_state, seen[1]->filter_state) << source;
      ASSERT_EQ(seen[0]->closed_by_filter, seen[1]->closed_by_filter) << source;
      ASSERT_EQ(vms[0]->logLines(), vms[1]->logLines()) << source;
      rerouted += seen[1]->filter_state.empty() ? 0 : 1;
      for (int e = 0; e < 2; ++e) {
        vms[e]->closeDownstream(ids[e], PeerType::kRemote);
        vms[e]->forgetConnection(ids[e]);
      }
    }
    for (const char* metric : {"tcpsteer.skipped", "tcpsteer.unroutable", "tcpsteer.dry_run",
                               "tcpsteer.errors", "tcpsteer.routed.egress1"}) {
      EXPECT_EQ(vms[0]->metricValue(metric), vms[1]->metricValue(metric)) << metric;
    }
    EXPECT_FALSE(vms[0]->failed());
    EXPECT_FALSE(vms[1]->failed());
    // Not vacuous: both outcomes occurred (junk sources are unroutable, valid ones rerouted unless
    // dry-run).
    EXPECT_GT(vms[1]->metricValue("tcpsteer.unroutable").value_or(0), 100);
    if (configuration.find("dry-run") == std::string::npos) {
      EXPECT_GT(rerouted, 100);
    }
  }
}

TEST(PrecompiledEngine, OneVmPerThreadRunsConcurrently) {
  auto worker = [](int offset, int* wrong) {
    VmOptions options;
    options.engine = EngineChoice::kPrecompiled;
    options.log_level = LogLevel::kWarn;
    LoadReport report;
    auto vm = Vm::load(bytesOf(filterModule()), options, &report);
    ASSERT_NE(vm, nullptr);
    ASSERT_TRUE(vm->start());
    ASSERT_EQ(vm->startPlugin({"tcpsteer", "standalone", "tcpsteer", "", {}}),
              Vm::PluginStatus::kOk);
    for (int i = 0; i < 20000; ++i) {
      const int octet = (i + offset) % 256;
      uint32_t id = vm->newConnection("10.1.2." + std::to_string(octet) + ":4000", "10.0.0.1:443");
      const std::string expected = octet % 2 == 0 ? "egress1" : "egress2";
      if (vm->connection(id)->cluster_at_start.value_or("") != expected) ++*wrong;
      vm->closeDownstream(id, PeerType::kRemote);
      vm->forgetConnection(id);
    }
    EXPECT_FALSE(vm->failed());
  };
  int wrong_a = 0;
  int wrong_b = 0;
  std::thread a(worker, 0, &wrong_a);
  std::thread b(worker, 1, &wrong_b);
  a.join();
  b.join();
  EXPECT_EQ(wrong_a, 0);
  EXPECT_EQ(wrong_b, 0);
}

}  // namespace
}  // namespace tcpsteer::host
