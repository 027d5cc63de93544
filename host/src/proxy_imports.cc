// The env.proxy_* imports: read the arguments out of guest memory, call Envoy's side (EnvoyHost),
// write the results back. No semantics of their own beyond the ABI's argument checks.
#include <algorithm>

#include "host/src/import_functions.h"
#include "host/src/limits.h"

namespace tcpsteer::host::proxy {
namespace {

using proxy_wasm::BufferType;
using proxy_wasm::StreamType;
using proxy_wasm::WasmResult;

uint32_t status(WasmResult result) {
  return static_cast<uint32_t>(result);
}
constexpr uint32_t kOk = static_cast<uint32_t>(WasmResult::kOk);
constexpr uint32_t kNotFound = static_cast<uint32_t>(WasmResult::kNotFound);
constexpr uint32_t kBadArgument = static_cast<uint32_t>(WasmResult::kBadArgument);
constexpr uint32_t kInvalidMemoryAccess = static_cast<uint32_t>(WasmResult::kInvalidMemoryAccess);

// Reads argument pair (ptr, size) at index as a view of guest memory (valid until a guest call).
bool viewArg(ImportCall& call, size_t index, std::string_view* out) {
  return call.memory.view(call.u32(index), call.u32(index + 1), out);
}

// data is host-owned (never a view of guest memory, which the guest's allocator may move).
uint32_t copyOut(ImportCall& call, std::string_view data, size_t ptr_index) {
  return status(
      call.memory.copyOut(data, call.u32(ptr_index), call.u32(ptr_index + 1), &call.trap));
}

uint32_t headerMapUnsupported(ImportCall& call) {
  return call.u32(0) > proxy_wasm::kMaxHeaderMapType ? kBadArgument : kNotFound;
}

}  // namespace

uint32_t proxy_log(ImportCall& call) {
  if (call.u32(0) > proxy_wasm::kMaxLogLevel) return kBadArgument;
  std::string_view message;
  if (!viewArg(call, 1, &message)) return kInvalidMemoryAccess;
  call.envoy.log(static_cast<LogLevel>(call.u32(0)), message);  // the store copies at most its cap
  return kOk;
}

uint32_t proxy_get_log_level(ImportCall& call) {
  return call.memory.writeU32(call.u32(0), static_cast<uint32_t>(call.envoy.options.log_level))
             ? kOk
             : kInvalidMemoryAccess;
}

uint32_t proxy_get_status(ImportCall& call) {
  if (!call.memory.writeU32(call.u32(0), 0)) return kInvalidMemoryAccess;
  return copyOut(call, "", 1);
}

uint32_t proxy_get_property(ImportCall& call) {
  std::string_view raw;
  if (!viewArg(call, 0, &raw)) return kInvalidMemoryAccess;
  if (raw.size() > limits::kMaxPropertyPathBytes) return kNotFound;  // not copied: no such path
  auto value = call.envoy.property(joinPropertyPath(raw));
  if (!value) return kNotFound;
  return copyOut(call, *value, 2);
}

uint32_t proxy_set_property(ImportCall& call) {
  std::string_view key;
  std::string_view value;
  if (!viewArg(call, 0, &key) || !viewArg(call, 2, &value)) return kInvalidMemoryAccess;
  return status(call.envoy.setProperty(key, value));
}

uint32_t proxy_get_buffer_status(ImportCall& call) {
  if (call.u32(0) > proxy_wasm::kMaxBufferType) return kBadArgument;
  const std::string* buffer = call.envoy.buffer(static_cast<BufferType>(call.u32(0)));
  if (buffer == nullptr) return kNotFound;
  return call.memory.writeU32(call.u32(1), static_cast<uint32_t>(buffer->size())) &&
                 call.memory.writeU32(call.u32(2), 0)
             ? kOk
             : kInvalidMemoryAccess;
}

uint32_t proxy_get_buffer_bytes(ImportCall& call) {
  if (call.u32(0) > proxy_wasm::kMaxBufferType) return kBadArgument;
  const std::string* buffer = call.envoy.buffer(static_cast<BufferType>(call.u32(0)));
  if (buffer == nullptr) return kNotFound;
  uint64_t start = call.u32(1);
  uint64_t length = call.u32(2);
  if (start + length > UINT32_MAX) return kBadArgument;  // start + length overflows in the guest
  start = std::min<uint64_t>(start, buffer->size());
  length = std::min<uint64_t>(length, buffer->size() - start);
  return copyOut(call, std::string_view(*buffer).substr(start, length), 3);
}

uint32_t proxy_set_buffer_bytes(ImportCall& call) {
  if (call.u32(0) > proxy_wasm::kMaxBufferType) return kBadArgument;
  std::string* buffer = call.envoy.mutableBuffer(static_cast<BufferType>(call.u32(0)));
  if (buffer == nullptr) return kBadArgument;
  std::string_view data;
  if (!viewArg(call, 3, &data)) return kInvalidMemoryAccess;
  uint64_t start = call.u32(1);
  uint64_t length = call.u32(2);
  uint64_t replaced = start == 0 ? std::min<uint64_t>(length, buffer->size()) : 0;
  if (buffer->size() - replaced + data.size() > limits::kMaxStreamBufferBytes)
    return status(limits::kHostLimitStatus);
  if (start == 0) {
    buffer->replace(0, replaced, data);
  } else if (start >= buffer->size()) {
    buffer->append(data);
  } else {
    return kBadArgument;  // Envoy cannot insert in the middle
  }
  return kOk;
}

uint32_t proxy_call_foreign_function(ImportCall& call) {
  std::string_view name;
  std::string_view arguments;
  if (!viewArg(call, 0, &name) || !viewArg(call, 2, &arguments)) return kInvalidMemoryAccess;
  WasmResult result = call.envoy.callForeignFunction(name, arguments);
  // The function returns nothing: the host writes 0/0 when the guest asked for results.
  if (result == WasmResult::kOk && call.u32(4) != 0 &&
      (!call.memory.writeU32(call.u32(4), 0) || !call.memory.writeU32(call.u32(5), 0))) {
    return kInvalidMemoryAccess;
  }
  return status(result);
}

uint32_t proxy_define_metric(ImportCall& call) {
  if (call.u32(0) > proxy_wasm::kMaxMetricType) return kBadArgument;
  std::string_view name;
  if (!viewArg(call, 1, &name)) return kInvalidMemoryAccess;
  uint32_t id = 0;
  WasmResult result = call.envoy.metrics.define(static_cast<MetricType>(call.u32(0)), name, &id);
  if (result != WasmResult::kOk) return status(result);
  return call.memory.writeU32(call.u32(3), id) ? kOk : kInvalidMemoryAccess;
}

uint32_t proxy_increment_metric(ImportCall& call) {
  return status(call.envoy.metrics.increment(call.u32(0), static_cast<int64_t>(call.args[1])));
}

uint32_t proxy_record_metric(ImportCall& call) {
  return status(call.envoy.metrics.record(call.u32(0), call.args[1]));
}

uint32_t proxy_get_metric(ImportCall& call) {
  uint64_t value = 0;
  WasmResult result = call.envoy.metrics.get(call.u32(0), &value);
  if (result != WasmResult::kOk) return status(result);
  return call.memory.writeU64(call.u32(1), value) ? kOk : kInvalidMemoryAccess;
}

uint32_t proxy_get_current_time_nanoseconds(ImportCall& call) {
  return call.memory.writeU64(call.u32(0), call.envoy.now()) ? kOk : kInvalidMemoryAccess;
}

uint32_t proxy_set_tick_period_milliseconds(ImportCall& call) {
  if (!call.envoy.isRootContext()) return kBadArgument;
  call.envoy.tick_period_ms = call.u32(0);
  return kOk;
}

uint32_t proxy_set_effective_context(ImportCall& call) {
  return status(call.envoy.setEffectiveContext(call.u32(0)));
}

uint32_t proxy_done(ImportCall& call) {
  return call.envoy.isRootContext() ? kOk : kNotFound;
}

uint32_t proxy_continue_stream(ImportCall& call) {
  if (call.u32(0) > proxy_wasm::kMaxStreamType) return kBadArgument;
  return status(call.envoy.continueStream(static_cast<StreamType>(call.u32(0))));
}

uint32_t proxy_close_stream(ImportCall& call) {
  if (call.u32(0) > proxy_wasm::kMaxStreamType) return kBadArgument;
  return status(call.envoy.closeStream(static_cast<StreamType>(call.u32(0))));
}

uint32_t proxy_get_configuration(ImportCall& call) {  // ABI 0.1.0
  if (!call.envoy.in_configure) return kNotFound;
  return copyOut(call, call.envoy.plugin.configuration, 0);
}

// ABI 0.1.0 HTTP stream controls: nothing to do on an L4 filter.
uint32_t proxy_continue_request(ImportCall& /*call*/) {
  return kOk;
}
uint32_t proxy_continue_response(ImportCall& /*call*/) {
  return kOk;
}
uint32_t proxy_clear_route_cache(ImportCall& /*call*/) {
  return kOk;
}

uint32_t proxy_get_shared_data(ImportCall& call) {
  std::string_view key;
  if (!viewArg(call, 0, &key)) return kInvalidMemoryAccess;
  std::string_view value;
  uint32_t cas = 0;
  WasmResult result = call.envoy.shared_data.get(key, &value, &cas);
  if (result != WasmResult::kOk) return status(result);
  if (!call.memory.writeU32(call.u32(4), cas)) return kInvalidMemoryAccess;
  return copyOut(call, value, 2);
}

uint32_t proxy_set_shared_data(ImportCall& call) {
  std::string_view key;
  std::string_view value;
  if (!viewArg(call, 0, &key) || !viewArg(call, 2, &value)) return kInvalidMemoryAccess;
  return status(call.envoy.shared_data.set(key, value, call.u32(4)));
}

uint32_t proxy_register_shared_queue(ImportCall& call) {
  std::string_view name;
  if (!viewArg(call, 0, &name)) return kInvalidMemoryAccess;
  uint32_t token = 0;
  WasmResult result = call.envoy.shared_queues.registerQueue(name, &token);
  if (result != WasmResult::kOk) return status(result);
  return call.memory.writeU32(call.u32(2), token) ? kOk : kInvalidMemoryAccess;
}

uint32_t proxy_resolve_shared_queue(ImportCall& call) {
  std::string_view name;  // arguments 0-1 name the VM, which is always this one here
  if (!viewArg(call, 2, &name)) return kInvalidMemoryAccess;
  uint32_t token = 0;
  WasmResult result = call.envoy.shared_queues.resolve(name, &token);
  if (result != WasmResult::kOk) return status(result);
  return call.memory.writeU32(call.u32(4), token) ? kOk : kInvalidMemoryAccess;
}

uint32_t proxy_enqueue_shared_queue(ImportCall& call) {
  std::string_view data;
  if (!viewArg(call, 1, &data)) return kInvalidMemoryAccess;
  return status(call.envoy.shared_queues.enqueue(call.u32(0), data));
}

uint32_t proxy_dequeue_shared_queue(ImportCall& call) {
  std::string data;
  WasmResult result = call.envoy.shared_queues.dequeue(call.u32(0), &data);
  if (result != WasmResult::kOk) return status(result);
  return copyOut(call, data, 1);
}

// HTTP header maps do not exist on an L4 filter.
uint32_t proxy_get_header_map_value(ImportCall& call) {
  return headerMapUnsupported(call);
}
uint32_t proxy_add_header_map_value(ImportCall& call) {
  return headerMapUnsupported(call);
}
uint32_t proxy_replace_header_map_value(ImportCall& call) {
  return headerMapUnsupported(call);
}
uint32_t proxy_remove_header_map_value(ImportCall& call) {
  return headerMapUnsupported(call);
}
uint32_t proxy_get_header_map_pairs(ImportCall& call) {
  return headerMapUnsupported(call);
}
uint32_t proxy_set_header_map_pairs(ImportCall& call) {
  return headerMapUnsupported(call);
}
uint32_t proxy_get_header_map_size(ImportCall& call) {
  return headerMapUnsupported(call);
}

// No clusters and no resolver here: calls out are refused as Envoy refuses an unknown cluster.
uint32_t proxy_http_call(ImportCall& /*call*/) {
  return kBadArgument;
}
uint32_t proxy_grpc_call(ImportCall& /*call*/) {
  return kBadArgument;
}
uint32_t proxy_grpc_stream(ImportCall& /*call*/) {
  return kBadArgument;
}
uint32_t envoy_resolve_dns(ImportCall& /*call*/) {
  return kBadArgument;
}
// ... so there is never a call or stream token to act on.
uint32_t proxy_grpc_close(ImportCall& /*call*/) {
  return kNotFound;
}
uint32_t proxy_grpc_cancel(ImportCall& /*call*/) {
  return kNotFound;
}
uint32_t proxy_grpc_send(ImportCall& /*call*/) {
  return kNotFound;
}
uint32_t proxy_send_local_response(ImportCall& /*call*/) {
  return kNotFound;
}

// Emscripten runtime helpers Envoy provides.
uint32_t pthread_equal(ImportCall& call) {
  return call.args[0] == call.args[1] ? 1 : 0;
}
uint32_t emscripten_notify_memory_growth(ImportCall& /*call*/) {
  return 0;
}

}  // namespace tcpsteer::host::proxy
