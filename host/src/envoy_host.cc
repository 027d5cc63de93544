#include "host/src/envoy_host.h"

#include <chrono>

namespace tcpsteer::host {

using proxy_wasm::BufferType;
using proxy_wasm::StreamType;
using proxy_wasm::WasmResult;

Connection* EnvoyHost::currentConnection() {
  auto it = connections.find(current_context);
  return it == connections.end() ? nullptr : &it->second;
}

WasmResult EnvoyHost::setEffectiveContext(uint32_t id) {
  if (id != root_context_id && connections.count(id) == 0) return WasmResult::kBadArgument;
  current_context = id;
  return WasmResult::kOk;
}

void EnvoyHost::log(LogLevel level, std::string_view message) {
  if (level < options.log_level) return;
  logs.add(level, current_context, message);
}

uint64_t EnvoyHost::now() const {
  if (now_ns != 0) return now_ns;
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

const std::string* EnvoyHost::buffer(BufferType type) {
  switch (type) {
    case BufferType::kVmConfiguration:
      return &options.vm_configuration;
    case BufferType::kPluginConfiguration:
      return in_configure ? &plugin.configuration : nullptr;
    case BufferType::kNetworkDownstreamData:
    case BufferType::kNetworkUpstreamData: {
      // Outside its own callback a data buffer reads as empty, as in Envoy.
      static const std::string kEmpty;
      const std::string* data = mutableBuffer(type);
      return data != nullptr ? data : &kEmpty;
    }
    default:
      return nullptr;
  }
}

std::string* EnvoyHost::mutableBuffer(BufferType type) {
  Connection* connection = currentConnection();
  if (connection == nullptr || callback_buffer != type) return nullptr;
  return type == BufferType::kNetworkDownstreamData ? &connection->downstream_buffer
                                                    : &connection->upstream_buffer;
}

WasmResult EnvoyHost::continueStream(StreamType type) {
  Connection* connection = currentConnection();
  if (connection == nullptr || type == StreamType::kRequest || type == StreamType::kResponse)
    return WasmResult::kBadArgument;  // HTTP stream types on an L4 filter
  if (type == StreamType::kUpstream) return WasmResult::kUnimplemented;  // Envoy cannot resume it
  continue_requested.insert(connection->context_id);
  return WasmResult::kOk;
}

WasmResult EnvoyHost::closeStream(StreamType type) {
  Connection* connection = currentConnection();
  if (connection == nullptr || type == StreamType::kRequest || type == StreamType::kResponse)
    return WasmResult::kBadArgument;
  close_requested.insert(connection->context_id);
  return WasmResult::kOk;
}

}  // namespace tcpsteer::host
