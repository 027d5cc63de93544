// libFuzzer target: any module bytes through the host's load checks and, when they pass, a load,
// start-up and one short connection lifecycle under a small budget. Nothing a module does may
// crash, hang or exhaust the host (the harness's -rss_limit_mb and -timeout enforce the last two).
#include <cstddef>
#include <cstdint>
#include <span>

#include "tcpsteer/host/vm.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using tcpsteer::host::Vm;
  std::span<const uint8_t> module(data, size);
  if (!Vm::inspect(module).ok) return 0;
  tcpsteer::host::VmOptions options;
  options.instruction_budget = 200'000;
  auto vm = Vm::load(module, options, nullptr);
  if (!vm || !vm->start()) return 0;
  if (vm->startPlugin({"fuzz", R"({"targets": ["a", "b"]})", "fuzz", "", {}}) !=
      Vm::PluginStatus::kOk)
    return 0;
  uint32_t id = vm->newConnection("10.0.0.3:1234", "[2001:db8::1]:443");
  vm->downstreamData(id, "hello", false);
  vm->upstreamData(id, "world", true);
  vm->closeDownstream(id, tcpsteer::host::PeerType::kRemote);
  vm->forgetConnection(id);
  return 0;
}
