// The SDK's stream callbacks are opt-in: tcpsteer.wasm exports none of them (Envoy enters the VM
// for each exported callback on every connection), and a module that links
// proxy_wasm_sdk_stream_callbacks (sdk_stream_callbacks_probe.cc) exports them all and gets each
// one.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "tcpsteer/host/vm.h"
#include "tests/host/test_modules.h"

namespace tcpsteer::host {
namespace {

const char* kLaterCallbacks[] = {"proxy_on_downstream_data",
                                 "proxy_on_upstream_data",
                                 "proxy_on_downstream_connection_close",
                                 "proxy_on_upstream_connection_close",
                                 "proxy_on_done",
                                 "proxy_on_log"};

using test_modules::fileBytes;
using test_modules::span;

bool exports(const LoadReport& report, const std::string& name) {
  for (const std::string& line : report.exports)
    if (line.rfind(name + " ", 0) == 0) return true;
  return false;
}

TEST(SdkStreamCallbacks, TcpsteerExportsNoneOfThem) {
  std::string bytes = fileBytes(TCPSTEER_WASM_MODULE);
  LoadReport report = Vm::inspect(span(bytes));
  ASSERT_TRUE(report.ok);
  EXPECT_TRUE(exports(report, "proxy_on_new_connection"));
  EXPECT_TRUE(exports(report, "proxy_on_delete"));  // the stream context is freed
  for (const char* name : kLaterCallbacks) EXPECT_FALSE(exports(report, name)) << name;
}

TEST(SdkStreamCallbacks, AModuleThatLinksThemGetsEachOne) {
  std::filesystem::path probe =
      std::filesystem::path(TCPSTEER_WASM_MODULE).parent_path().parent_path() / "sdk" /
      "sdk_stream_callbacks_probe.wasm";
  std::string bytes = fileBytes(probe.string());
  LoadReport report;
  auto vm = Vm::load(span(bytes), {}, &report);
  ASSERT_TRUE(vm);
  for (const char* name : kLaterCallbacks) EXPECT_TRUE(exports(report, name)) << name;
  ASSERT_TRUE(vm->start());
  ASSERT_EQ(vm->startPlugin({"probe", "", "probe", "", {}}), Vm::PluginStatus::kOk);
  uint32_t id = vm->newConnection("10.0.0.1:1", "10.0.0.2:443");
  vm->downstreamData(id, "hello", false);
  vm->upstreamData(id, "world", false);
  vm->closeDownstream(id, PeerType::kRemote);
  ASSERT_FALSE(vm->failed());
  // A downstream close runs close, done, log and delete; the upstream close callback needs the
  // upstream to close first (its export is checked above).
  for (const char* gauge : {"probe.downstream_data", "probe.upstream_data",
                            "probe.downstream_close", "probe.done", "probe.log"}) {
    EXPECT_EQ(vm->metricValue(gauge).value_or(0), 1) << gauge;
  }
}

}  // namespace
}  // namespace tcpsteer::host
