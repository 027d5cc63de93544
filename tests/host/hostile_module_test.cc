// Hostile modules: what a module can ask of the host at load and inside one callback. Each case
// was found by hostile-input testing (issue #10) and used to hang, abort or exhaust the host; the
// host must now refuse it at load naming the limit, or fail the one call, and go on.
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "host/src/limits.h"
#include "tcpsteer/host/vm.h"
#include "tests/host/test_modules.h"

namespace tcpsteer::host {
namespace {

using test_modules::contains;
using test_modules::joined;
using test_modules::moduleBytes;
using test_modules::span;
using test_modules::startedVm;

const std::string kHeader("\0asm\x01\0\0\0", 8);

// #1: a start function that never returns is stopped by the budget during instantiation.
TEST(HostileModule, StartFunctionLoopingForeverIsStoppedByTheBudget) {
  std::string bytes = moduleBytes("start_loops_forever");
  VmOptions options;
  options.instruction_budget = 1'000'000;
  LoadReport report;
  auto started = std::chrono::steady_clock::now();
  EXPECT_EQ(Vm::load(span(bytes), options, &report), nullptr);
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(30));
  EXPECT_TRUE(contains(report.problems, "start function: instruction budget of 1000000 exhausted"))
      << joined(report.problems);
}

// #2: a 15-byte module whose data count section declares 2^32-1 segments.
TEST(HostileModule, HugeDataCountIsRefusedNamingTheLimit) {
  std::string bytes = kHeader + std::string("\x0c\x05\xff\xff\xff\xff\x0f", 7);
  LoadReport report = Vm::inspect(span(bytes));
  EXPECT_FALSE(report.ok);
  EXPECT_TRUE(contains(report.problems,
                       "declares 4294967295 data segments (data count section); "
                       "Envoy's engines allow at most 100000"))
      << joined(report.problems);
}

// #3: a table of 2^32-1 elements and a function of 2^31 locals are refused at load.
TEST(HostileModule, HugeTableIsRefusedNamingTheLimit) {
  std::string bytes = kHeader + std::string("\x04\x08\x01\x70\x00\xff\xff\xff\xff\x0f", 10);
  LoadReport report = Vm::inspect(span(bytes));
  EXPECT_TRUE(contains(report.problems, "4294967295 table elements (initial size)"))
      << joined(report.problems);
}

TEST(HostileModule, TooManyLocalsAreRefusedNamingTheLimit) {
  std::string types("\x01\x04\x01\x60\x00\x00", 6);         // one type: () -> ()
  std::string functions("\x03\x02\x01\x00", 4);             // one function of that type
  std::string body("\x01\x80\x80\x80\x80\x08\x7f\x0b", 8);  // 2^31 locals of i32, end
  std::string code = std::string("\x0a\x0a\x01\x08", 4) + body;
  LoadReport report = Vm::inspect(span(kHeader + types + functions + code));
  EXPECT_TRUE(contains(report.problems,
                       "2147483648 locals in function 0; Envoy's engines allow "
                       "at most 50000"))
      << joined(report.problems);
}

TEST(HostileModule, CountsLargerThanTheirSectionAreRefused) {
  // 1,000 imports declared in a 3-byte section.
  std::string bytes = kHeader + std::string("\x02\x03\xe8\x07\x00", 5);
  LoadReport report = Vm::inspect(span(bytes));
  EXPECT_TRUE(contains(report.problems, "malformed imports section")) << joined(report.problems);
}

// #3 (growth) and #5 (memory a page at a time): growth past the caps fails with -1, the VM goes on.
TEST(HostileModule, MemoryAndTableGrowthStopAtTheCaps) {
  auto vm = startedVm("grow_memory_and_table");
  ASSERT_TRUE(vm);
  vm->newConnection("10.0.0.1:1", "10.0.0.2:443");
  ASSERT_FALSE(vm->failed()) << vm->failure()->message;
  EXPECT_EQ(vm->metricValue("status"), 0b111);
  EXPECT_EQ(vm->memoryBytes(), uint64_t{1024} * 65536);
}

// #5: 400 lines of 64 KiB in one callback: the host keeps at most its cap, says it dropped.
TEST(HostileModule, LogFloodIsCapped) {
  auto vm = startedVm("flood_log");
  ASSERT_TRUE(vm);
  vm->newConnection("10.0.0.1:1", "10.0.0.2:443");
  ASSERT_FALSE(vm->failed());
  EXPECT_EQ(vm->metricValue("status"), 0);  // proxy_log itself succeeds, as in Envoy
  size_t bytes = 0;
  for (const LogEntry& entry : vm->logs()) bytes += entry.message.size();
  EXPECT_LE(bytes, limits::kMaxRetainedLogBytes + 1024);
  EXPECT_TRUE(contains(vm->logLines(LogLevel::kWarn), "log lines dropped"));
  vm->clearLogs();  // taking the lines frees the room
  vm->newConnection("10.0.0.1:2", "10.0.0.2:443");
  EXPECT_GT(vm->logs().size(), 100u);
}

// #5: fd_write with 16k iovecs over all memory: EINVAL past IOV_MAX, and a line cut at its cap.
TEST(HostileModule, FdWriteOfAllMemoryIsBounded) {
  auto vm = startedVm("flood_fd_write");
  ASSERT_TRUE(vm);
  vm->newConnection("10.0.0.1:1", "10.0.0.2:443");
  ASSERT_FALSE(vm->failed());
  EXPECT_EQ(vm->metricValue("status"), 28);  // WASI EINVAL
  ASSERT_EQ(vm->logs().size(), 1u);
  EXPECT_LE(vm->logs()[0].message.size(), limits::kMaxLogMessageBytes + 64);
}

// #5: a data buffer grown by appends inside one callback stops at its cap.
TEST(HostileModule, BufferAppendLoopIsCapped) {
  auto vm = startedVm("flood_buffer");
  ASSERT_TRUE(vm);
  uint32_t id = vm->newConnection("10.0.0.1:1", "10.0.0.2:443");
  vm->downstreamData(id, "x", false);
  ASSERT_FALSE(vm->failed());
  EXPECT_EQ(vm->metricValue("status"), static_cast<int64_t>(limits::kHostLimitStatus));
  EXPECT_LE(vm->connection(id)->forwarded_upstream.size(), limits::kMaxStreamBufferBytes);
  EXPECT_GT(vm->connection(id)->forwarded_upstream.size(), limits::kMaxStreamBufferBytes / 2);
}

// #5: ever-new shared-data keys and an enqueue loop stop at their caps.
TEST(HostileModule, SharedDataAndQueuesAreCapped) {
  auto vm = startedVm("flood_shared");
  ASSERT_TRUE(vm);
  uint32_t id = vm->newConnection("10.0.0.1:1", "10.0.0.2:443");
  ASSERT_FALSE(vm->failed());
  const int64_t refused = static_cast<int64_t>(limits::kHostLimitStatus) * 1'000'000;
  EXPECT_EQ(vm->metricValue("status"), refused + limits::kMaxSharedDataEntries + 1);
  vm->closeDownstream(id, PeerType::kRemote);
  EXPECT_EQ(vm->metricValue("status"), refused + limits::kMaxQueuedItems + 1);
}

// #6: 200,000 metric definitions: indexed (fast) and capped.
TEST(HostileModule, MetricDefinitionLoopIsFastAndCapped) {
  auto vm = startedVm("flood_metrics");
  ASSERT_TRUE(vm);
  auto started = std::chrono::steady_clock::now();
  uint32_t id = vm->newConnection("10.0.0.1:1", "10.0.0.2:443");
  vm->closeDownstream(id, PeerType::kRemote);
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(20));
  ASSERT_FALSE(vm->failed());
  EXPECT_EQ(vm->metrics().size(), limits::kMaxMetrics);
  EXPECT_EQ(vm->metricValue("status"), std::nullopt);  // its definition, too, was refused
}

// #7: instantiation failures are load failures (check says so instead of "would load").
TEST(HostileModule, StartTrapAndDataOutOfBoundsFailToLoad) {
  for (const char* name : {"start_traps", "data_out_of_bounds"}) {
    SCOPED_TRACE(name);
    std::string bytes = moduleBytes(name);
    EXPECT_TRUE(Vm::inspect(span(bytes)).ok);  // the static checks pass...
    LoadReport report;
    EXPECT_EQ(Vm::load(span(bytes), {}, &report), nullptr);  // ...instantiation does not
    EXPECT_TRUE(contains(report.problems, "instantiation failed")) << joined(report.problems);
  }
}

// #8: a budget near 2^64 means "practically unlimited", not an immediate failure.
TEST(HostileModule, HugeBudgetDoesNotWrap) {
  VmOptions options;
  options.instruction_budget = std::numeric_limits<uint64_t>::max();
  auto vm = startedVm("bad_pointers", options);
  ASSERT_TRUE(vm);
  vm->newConnection("10.0.0.1:1", "10.0.0.2:443");
  EXPECT_FALSE(vm->failed());
}

// A module whose every call hands the host all 64 MiB of its memory, looping without end (a few
// instructions a call): the host's copying counts against the budget, and no import copies past
// its cap, so the callback ends within the budget in well under a second per import (once it
// ran for days: proxy_log copied each 64 MiB message before cutting it).
TEST(HostileModule, HostWorkOnHugeArgumentsCountsAgainstTheBudget) {
  const char* imports[] = {"proxy_log",
                           "proxy_get_property",
                           "proxy_set_property",
                           "foreign function",
                           "proxy_define_metric",
                           "proxy_set_shared_data",
                           "proxy_get_shared_data",
                           "proxy_register_shared_queue",
                           "proxy_enqueue_shared_queue",
                           "fd_write"};
  std::string bytes = moduleBytes("huge_guest_copies");
  for (size_t which = 1; which <= std::size(imports); ++which) {
    SCOPED_TRACE(imports[which - 1]);
    LoadReport report;
    auto vm = Vm::load(span(bytes), {}, &report);
    ASSERT_TRUE(vm) << joined(report.problems);
    ASSERT_TRUE(vm->start());
    ASSERT_EQ(vm->startPlugin({"test", std::string(which, 'x'), "test", "", {}}),
              Vm::PluginStatus::kOk);
    auto started = std::chrono::steady_clock::now();
    vm->newConnection("10.0.0.1:1", "10.0.0.2:443");
    auto took = std::chrono::steady_clock::now() - started;
    EXPECT_LT(took, std::chrono::seconds(5));
    ASSERT_TRUE(vm->failed());
    EXPECT_NE(vm->failure()->message.find("instruction budget of 50000000 exhausted"),
              std::string::npos)
        << vm->failure()->message;
    size_t kept = 0;
    for (const LogEntry& entry : vm->logs()) kept += entry.message.size();
    EXPECT_LE(kept, limits::kMaxRetainedLogBytes + 1024);
  }
}

}  // namespace
}  // namespace tcpsteer::host
