// Host conformance: small WAT modules (built with wat2wasm at build time) exercise what Envoy's
// host refuses, traps on, and bounds-checks.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "host/src/import_table.h"
#include "tcpsteer/host/vm.h"
#include "tests/host/test_modules.h"

namespace tcpsteer::host {
namespace {

using test_modules::contains;
using test_modules::moduleBytes;
using test_modules::span;
using test_modules::startedVm;

// The host's import table is exactly Envoy's list (tests/fixtures/envoy-host-imports.txt, copied
// from the shared reference): same names, same signatures, WASI under both module names. Tier 3
// WASI stubs are deliberately absent (Envoy 1.28-1.33 do not have them).
TEST(HostLoad, ImportTableMatchesEnvoyList) {
  std::ifstream file(std::string(TCPSTEER_FIXTURES) + "/envoy-host-imports.txt");
  ASSERT_TRUE(file);
  std::map<std::string, std::string> envoy;
  std::string line;
  while (std::getline(file, line)) {
    size_t space = line.find(' ');
    envoy[line.substr(0, space)] = line.substr(space + 1);
  }
  size_t checked = 0;
  for (const ImportRow& spec : importTable()) {
    std::vector<std::string> names;
    if (spec.module == "env") {
      names.push_back("env." + std::string(spec.name));
    } else {
      names.push_back("wasi_snapshot_preview1." + std::string(spec.name));
      names.push_back("wasi_unstable." + std::string(spec.name));
    }
    for (const std::string& name : names) {
      auto it = envoy.find(name);
      ASSERT_NE(it, envoy.end()) << name << " is not in Envoy's list";
      EXPECT_EQ(it->second, spec.signature) << name;
      ++checked;
    }
  }
  EXPECT_EQ(checked, 46u + 2 * 18u);  // every env function, WASI tiers 1 and 2 under both modules
}

TEST(HostLoad, ExportTableMatchesProxyWasmList) {
  std::ifstream file(std::string(TCPSTEER_FIXTURES) + "/proxy-wasm-exports.txt");
  ASSERT_TRUE(file);
  std::map<std::string, std::string> expected;  // name -> "(...) -> ..." for function exports
  std::string line;
  while (std::getline(file, line)) {
    size_t space = line.find(' ');
    size_t end = line.find(" REQUIRED");
    if (end == std::string::npos) end = line.find(" OPTIONAL");
    if (line.compare(space + 1, 1, "(") == 0 && end != std::string::npos &&
        line.substr(space, end - space).find("->") != std::string::npos)
      expected[line.substr(0, space)] = line.substr(space + 1, end - space - 1);
  }
  size_t checked = 0;
  for (const ExportSpec& spec : kExportSpecs) {
    auto it = expected.find(spec.name);
    ASSERT_NE(it, expected.end()) << spec.name << " is not in the proxy-wasm export list";
    EXPECT_EQ(it->second, spec.signature) << spec.name;
    ++checked;
  }
  // Every callback of the list is checked by the host, except the ABI marker (any of three names).
  EXPECT_EQ(checked + 1, expected.size());
}

TEST(HostLoad, RefusesUnknownImportAndListsIt) {
  std::string bytes = moduleBytes("missing_import");
  LoadReport report;
  EXPECT_EQ(Vm::load(span(bytes), {}, &report), nullptr);
  ASSERT_EQ(report.unknown_imports.size(), 1u);
  EXPECT_EQ(report.unknown_imports[0], "env.getaddrinfo (i32, i32) -> i32");
  EXPECT_TRUE(contains(report.problems, "missing import: env.getaddrinfo"));
}

TEST(HostLoad, RefusesWrongCallbackSignature) {
  std::string bytes = moduleBytes("bad_signature");
  LoadReport report;
  EXPECT_EQ(Vm::load(span(bytes), {}, &report), nullptr);
  EXPECT_TRUE(contains(report.problems, "Bad function signature for: proxy_on_new_connection"));
}

TEST(HostLoad, RefusesModuleWithoutAllocator) {
  std::string bytes = moduleBytes("no_malloc");
  LoadReport report;
  EXPECT_EQ(Vm::load(span(bytes), {}, &report), nullptr);
  EXPECT_TRUE(contains(report.problems, "missing malloc"));
}

TEST(HostLoad, RefusesGarbage) {
  std::string bytes("\0asm\x01\0\0\0\x01\xff\xff", 11);
  LoadReport report;
  EXPECT_EQ(Vm::load(span(bytes), {}, &report), nullptr);
  EXPECT_TRUE(contains(report.problems, "not a valid wasm module"));
  std::string empty;
  EXPECT_EQ(Vm::load(span(empty), {}, &report), nullptr);
}

TEST(HostLoad, WasiTier2OnlyWhenConfigured) {
  std::string bytes = moduleBytes("wasi_tier2");
  LoadReport report;
  EXPECT_EQ(Vm::load(span(bytes), {}, &report), nullptr);
  EXPECT_TRUE(contains(report.problems, "missing import: wasi_snapshot_preview1.sched_yield"));
  VmOptions tier2;
  tier2.wasi_tier = WasiTier::kTier2;
  EXPECT_NE(Vm::load(span(bytes), tier2, &report), nullptr);
}

TEST(HostLoad, AbiVersionDecidesWhichImportsExist) {
  std::string old_abi = moduleBytes("abi_0_1_0");
  LoadReport report;
  EXPECT_NE(Vm::load(span(old_abi), {}, &report), nullptr);
  EXPECT_EQ(report.abi_version, "0_1_0");
  std::string new_abi = moduleBytes("abi_0_2_1_old_import");
  EXPECT_EQ(Vm::load(span(new_abi), {}, &report), nullptr);
  EXPECT_TRUE(contains(report.problems, "missing import: env.proxy_get_configuration"));
}

TEST(HostFaults, TrapFailsVmFailClosed) {
  auto vm = startedVm("trap_on_connection");
  ASSERT_TRUE(vm);
  uint32_t first = vm->newConnection("10.0.0.1:1000", "10.0.0.9:443");
  EXPECT_FALSE(vm->connection(first)->closed_by_filter);
  uint32_t second = vm->newConnection("10.0.0.2:1000", "10.0.0.9:443");
  ASSERT_TRUE(vm->failed());
  EXPECT_EQ(vm->failure()->callback, "proxy_on_new_connection");
  EXPECT_NE(vm->failure()->message.find("unreachable"), std::string::npos)
      << vm->failure()->message;
  EXPECT_TRUE(vm->connection(second)->closed_by_filter);
  EXPECT_FALSE(vm->connection(second)->tcp_proxy_started);
  uint32_t third = vm->newConnection("10.0.0.3:1000", "10.0.0.9:443");
  EXPECT_TRUE(vm->connection(third)->closed_by_filter);
  // The connection opened before the failure is closed on its next event.
  EXPECT_EQ(vm->downstreamData(first, "x", false), Action::kPause);
  EXPECT_TRUE(vm->connection(first)->closed_by_filter);
}

TEST(HostFaults, TrapFailsVmFailOpen) {
  VmOptions options;
  options.fail_open = true;
  auto vm = startedVm("trap_on_connection", options);
  ASSERT_TRUE(vm);
  vm->newConnection("10.0.0.1:1000", "10.0.0.9:443");
  uint32_t failing = vm->newConnection("10.0.0.2:1000", "10.0.0.9:443");
  ASSERT_TRUE(vm->failed());
  EXPECT_FALSE(vm->connection(failing)->closed_by_filter);
  EXPECT_TRUE(vm->connection(failing)->tcp_proxy_started);
  uint32_t after = vm->newConnection("10.0.0.3:1000", "10.0.0.9:443");
  EXPECT_TRUE(vm->connection(after)->filter_skipped);
  EXPECT_EQ(vm->downstreamData(after, "hello", false), Action::kContinue);
  EXPECT_EQ(vm->connection(after)->forwarded_upstream, "hello");
}

TEST(HostFaults, InfiniteLoopStoppedByBudget) {
  VmOptions options;
  options.instruction_budget = 100000;
  auto vm = startedVm("infinite_loop", options);
  ASSERT_TRUE(vm);
  uint32_t id = vm->newConnection("10.0.0.1:1000", "10.0.0.9:443");
  ASSERT_TRUE(vm->failed());
  EXPECT_EQ(vm->failure()->callback, "proxy_on_new_connection");
  EXPECT_NE(vm->failure()->message.find("budget"), std::string::npos);
  EXPECT_GE(vm->lastCallbackInstructions(), 100000u);
  EXPECT_LE(vm->lastCallbackInstructions(), 100001u);
  EXPECT_TRUE(vm->connection(id)->closed_by_filter);
}

TEST(HostMemory, OutOfBoundsPointersGetInvalidMemoryAccess) {
  auto vm = startedVm("bad_pointers");
  ASSERT_TRUE(vm);
  vm->newConnection("10.0.0.1:1000", "10.0.0.9:443");
  EXPECT_FALSE(vm->failed());
  EXPECT_EQ(vm->metricValue("log_status"), 6);
  EXPECT_EQ(vm->metricValue("property_path_status"), 6);
  EXPECT_EQ(vm->metricValue("property_result_status"), 6);
}

TEST(HostMemory, MallocReentryFromHostCall) {
  auto vm = startedVm("malloc_reentry");
  ASSERT_TRUE(vm);
  vm->newConnection("10.0.0.7:1234", "10.0.0.9:443");
  ASSERT_FALSE(vm->failed());
  auto lines = vm->logLines();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], "malloc called");
  EXPECT_EQ(lines[1], "10.0.0.7:1234");
}

TEST(HostMemory, HostCallsRestrictedInsideAllocator) {
  auto vm = startedVm("malloc_restricted");
  ASSERT_TRUE(vm);
  vm->newConnection("10.0.0.7:1234", "10.0.0.9:443");
  ASSERT_TRUE(vm->failed());
  EXPECT_NE(vm->failure()->message.find("restricted_callback"), std::string::npos)
      << vm->failure()->message;
}

TEST(HostMemory, MemoryGrowthDuringHostCall) {
  auto vm = startedVm("memory_growth");
  ASSERT_TRUE(vm);
  uint64_t before = vm->memoryBytes();
  vm->newConnection("[2001:db8::5]:4321", "10.0.0.9:443");
  ASSERT_FALSE(vm->failed());
  EXPECT_EQ(vm->memoryBytes(), before + uint64_t{4} * 65536);
  auto lines = vm->logLines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0], "[2001:db8::5]:4321");
}

TEST(HostStartup, RestrictedCallInInitializeFailsVm) {
  std::string bytes = moduleBytes("startup_restricted");
  auto vm = Vm::load(span(bytes), {}, nullptr);
  ASSERT_TRUE(vm);
  EXPECT_FALSE(vm->start());
  ASSERT_TRUE(vm->failed());
  EXPECT_EQ(vm->failure()->callback, "_initialize");
  EXPECT_NE(vm->failure()->message.find("restricted_callback"), std::string::npos);
  EXPECT_EQ(vm->startPlugin({"x", "", "x", "", {}}), Vm::PluginStatus::kFailed);
}

}  // namespace
}  // namespace tcpsteer::host
