// The callbacks of a connection's later life: data each way, both closes, done and log. Opt-in
// (CMake target proxy_wasm_sdk_stream_callbacks): Envoy enters the VM for each callback a module
// exports, on every connection, whether the filter does anything there or not. tcpsteer decides in
// proxy_on_new_connection and does not link this file.
#include "proxy_wasm/context.h"
#include "sdk/src/export.h"
#include "sdk/src/registry.h"

using proxy_wasm::PeerType;
using proxy_wasm::Registry;
using proxy_wasm::statusOf;

extern "C" {

PROXY_WASM_EXPORT(proxy_on_downstream_data)
uint32_t proxy_on_downstream_data(uint32_t id, uint32_t data_size, uint32_t end_of_stream) {
  auto* stream = Registry::get().findStream(id);
  return stream != nullptr ? statusOf(stream->onDownstreamData(data_size, end_of_stream != 0)) : 0;
}

PROXY_WASM_EXPORT(proxy_on_upstream_data)
uint32_t proxy_on_upstream_data(uint32_t id, uint32_t data_size, uint32_t end_of_stream) {
  auto* stream = Registry::get().findStream(id);
  return stream != nullptr ? statusOf(stream->onUpstreamData(data_size, end_of_stream != 0)) : 0;
}

PROXY_WASM_EXPORT(proxy_on_downstream_connection_close)
void proxy_on_downstream_connection_close(uint32_t id, uint32_t peer) {
  if (auto* stream = Registry::get().findStream(id))
    stream->onDownstreamConnectionClose(static_cast<PeerType>(peer));
}

PROXY_WASM_EXPORT(proxy_on_upstream_connection_close)
void proxy_on_upstream_connection_close(uint32_t id, uint32_t peer) {
  if (auto* stream = Registry::get().findStream(id))
    stream->onUpstreamConnectionClose(static_cast<PeerType>(peer));
}

PROXY_WASM_EXPORT(proxy_on_done) uint32_t proxy_on_done(uint32_t id) {
  if (auto* context = Registry::get().find(id)) context->onDone();
  return 1;
}

PROXY_WASM_EXPORT(proxy_on_log) void proxy_on_log(uint32_t id) {
  if (auto* context = Registry::get().find(id)) context->onLog();
}

}  // extern "C"
