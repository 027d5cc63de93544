#include "host/tools/tcpsteer-proxy/wasm_network_filter.h"

#include "host/tools/tcpsteer-proxy/output.h"

namespace tcpsteer::proxy {

void WasmRuntime::flushLogs() {
  for (const auto& entry : vm->logs()) {
    emit(std::string("[wasm ") + host::logLevelName(entry.level) + "] " + listener + ": " +
         entry.message);
  }
  vm->clearLogs();
}

WasmNetworkFilter::~WasmNetworkFilter() {
  onClose();
}

void WasmNetworkFilter::onNewConnection(const std::string& source, const std::string& destination) {
  open_ = true;
  id_ = runtime_.vm->newConnection(source, destination, {}, this);
  runtime_.flushLogs();
}

void WasmNetworkFilter::onDownstreamData(std::string_view bytes, bool end_of_stream) {
  if (!open_) return;
  runtime_.vm->downstreamData(id_, bytes, end_of_stream);
  runtime_.flushLogs();
}

void WasmNetworkFilter::onUpstreamData(std::string_view bytes, bool end_of_stream) {
  if (!open_) return;
  runtime_.vm->upstreamData(id_, bytes, end_of_stream);
  runtime_.flushLogs();
}

void WasmNetworkFilter::onClose() {
  if (!open_) return;
  open_ = false;
  runtime_.vm->closeDownstream(id_, host::PeerType::kRemote);
  runtime_.vm->forgetConnection(id_);
  runtime_.flushLogs();
  stats_.snapshot(runtime_.stats_key, *runtime_.vm);
}

size_t WasmNetworkFilter::heldDownstreamBytes() const {
  return open_ ? runtime_.vm->bufferedDownstreamBytes(id_) : 0;
}

}  // namespace tcpsteer::proxy
