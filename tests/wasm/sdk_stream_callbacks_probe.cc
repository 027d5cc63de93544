// A module built with the SDK's opt-in stream callbacks (proxy_wasm_sdk_stream_callbacks): its
// stream context counts each callback of a connection's later life in a gauge of its own, so
// sdk_stream_callbacks_test.cc can see that linking the target exports them and that they arrive.
#include <cstdint>
#include <memory>
#include <string_view>

#include "proxy_wasm/api.h"
#include "proxy_wasm/context.h"

namespace {

using proxy_wasm::FilterStatus;
using proxy_wasm::MetricType;
using proxy_wasm::PeerType;

void count(std::string_view name) {
  auto id = proxy_wasm::defineMetric(MetricType::kGauge, name);
  if (id.ok()) proxy_wasm::incrementMetric(id.value, 1);
}

class ProbeStream : public proxy_wasm::Context {
 public:
  using Context::Context;
  FilterStatus onDownstreamData(size_t /*size*/, bool /*end*/) override {
    count("probe.downstream_data");
    return FilterStatus::kContinue;
  }
  FilterStatus onUpstreamData(size_t /*size*/, bool /*end*/) override {
    count("probe.upstream_data");
    return FilterStatus::kContinue;
  }
  void onDownstreamConnectionClose(PeerType /*peer*/) override { count("probe.downstream_close"); }
  void onUpstreamConnectionClose(PeerType /*peer*/) override { count("probe.upstream_close"); }
  void onDone() override { count("probe.done"); }
  void onLog() override { count("probe.log"); }
};

std::unique_ptr<proxy_wasm::Context> newStream(uint32_t id, proxy_wasm::RootContext* root) {
  return std::make_unique<ProbeStream>(id, root);
}

std::unique_ptr<proxy_wasm::RootContext> newRoot(uint32_t id, std::string_view root_id) {
  return std::make_unique<proxy_wasm::RootContext>(id, root_id);
}

const proxy_wasm::RegisterContextFactory kRegistration(newStream, newRoot);

}  // namespace
