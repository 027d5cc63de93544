// The precompiled (wasm2c) engine: runs only the module it was built from, traps like the
// interpreter (out-of-bounds access, failing host functions) and keeps working after a trap, and
// is safe with one VM per thread. The filter's behaviour on it is covered by FilterInHost, which
// runs every scenario on both engines.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "host/src/precompiled_engine.h"
#include "tcpsteer/host/vm.h"

namespace tcpsteer::host {
namespace {

std::string readFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  EXPECT_TRUE(file) << path;
  std::stringstream out;
  out << file.rdbuf();
  return out.str();
}

std::span<const uint8_t> bytesOf(const std::string& text) {
  return {reinterpret_cast<const uint8_t*>(text.data()), text.size()};
}

const std::string& filterModule() {
  static const std::string bytes = readFile(TCPSTEER_WASM_MODULE);
  return bytes;
}

TEST(PrecompiledEngine, RunsOnlyTheModuleItWasBuiltFrom) {
  EXPECT_TRUE(precompiledMatches(bytesOf(filterModule())));
  std::string changed = filterModule();
  changed[changed.size() - 1] ^= 1;
  EXPECT_FALSE(precompiledMatches(bytesOf(changed)));

  const std::string other = readFile(std::string(TCPSTEER_TEST_MODULES) + "/malloc_reentry.wasm");
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
    std::string error;
    ASSERT_TRUE(engine->instantiate(functions, &error)) << error;
    ASSERT_TRUE(call("_initialize", {}).ok());
    ASSERT_TRUE(call("proxy_on_context_create", {1, 0}).ok());
    ASSERT_TRUE(call("proxy_on_vm_start", {1, 0}).ok());
    ASSERT_TRUE(call("proxy_on_configure", {1, 0}).ok());
    ASSERT_TRUE(call("proxy_on_context_create", {2, 1}).ok());
  }
};

std::unique_ptr<WasmEngine> makeEngine(bool precompiled) {
  std::string error;
  auto engine = precompiled ? makePrecompiledEngine(bytesOf(filterModule()), &error)
                            : WasmEngine::parse(bytesOf(filterModule()), &error);
  EXPECT_NE(engine, nullptr) << error;
  return engine;
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
  std::string error;
  ASSERT_TRUE(host.engine->instantiate(host.functions, &error)) << error;
  ASSERT_TRUE(host.call("_initialize", {}).ok());
  ASSERT_TRUE(host.call("proxy_on_context_create", {1, 0}).ok());
  host.call("proxy_on_vm_start", {1, 0});
  CallOutcome outcome = host.call("proxy_on_configure", {1, 0});  // logs "configured ..."
  EXPECT_EQ(outcome.status, CallOutcome::Status::kTrap);
  EXPECT_EQ(outcome.message, "proxy_log refused by the test host");
  EXPECT_TRUE(host.call("malloc", {8}).ok());
  EXPECT_EQ(host.call("no_such_export", {}).status, CallOutcome::Status::kMissing);
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
    ASSERT_EQ(vm->startPlugin({"tcpsteer", "standalone", "tcpsteer", ""}), Vm::PluginStatus::kOk);
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
