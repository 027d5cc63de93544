// envoy.filters.network.wasm for the relay: one connection of a worker's VM, driven through the
// NetworkFilter seam. The VM's ConnectionObserver events become the relay's callbacks.
#pragma once

#include <memory>
#include <string>

#include "host/tools/tcpsteer-proxy/network_filter.h"
#include "host/tools/tcpsteer-proxy/stats.h"
#include "tcpsteer/host/vm.h"

namespace tcpsteer::proxy {

// One listener's VM on one worker thread.
struct WasmRuntime {
  std::string listener;
  std::string stats_key;
  std::unique_ptr<host::Vm> vm;

  void flushLogs();  // the VM's log lines to the proxy's output
};

class WasmNetworkFilter final : public NetworkFilter, private host::ConnectionObserver {
 public:
  WasmNetworkFilter(WasmRuntime& runtime, Stats& stats, NetworkFilterCallbacks& callbacks)
      : runtime_(runtime), stats_(stats), callbacks_(callbacks) {}
  ~WasmNetworkFilter() override;
  WasmNetworkFilter(const WasmNetworkFilter&) = delete;
  WasmNetworkFilter& operator=(const WasmNetworkFilter&) = delete;

  void onNewConnection(const std::string& source, const std::string& destination) override;
  void onDownstreamData(std::string_view bytes, bool end_of_stream) override;
  void onUpstreamData(std::string_view bytes, bool end_of_stream) override;
  void onClose() override;
  size_t heldDownstreamBytes() const override;

 private:
  void onTcpProxyStart(const std::optional<std::string>& cluster) override {
    callbacks_.continueToTcpProxy(cluster);
  }
  void onReleaseUpstream(std::string_view bytes, bool end_of_stream) override {
    callbacks_.writeUpstream(bytes, end_of_stream);
  }
  void onReleaseDownstream(std::string_view bytes, bool end_of_stream) override {
    callbacks_.writeDownstream(bytes, end_of_stream);
  }
  void onCloseByFilter() override {
    ++stats_.closed_by_filter;
    callbacks_.closeConnection();
  }

  WasmRuntime& runtime_;
  Stats& stats_;
  NetworkFilterCallbacks& callbacks_;
  uint32_t id_ = 0;
  bool open_ = false;
};

}  // namespace tcpsteer::proxy
