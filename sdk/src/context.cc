// The exports every L4 module needs: the ABI marker, context creation and deletion, start,
// configuration and the new-connection callback. The callbacks of a connection's later life (data,
// closes, done, log) are in stream_callbacks.cc, linked only by a filter that uses them: Envoy
// enters the VM for every callback a module exports, and each entry costs the proxy CPU on every
// connection (bench/README.md). An unknown context id is logged and ignored: the SDK never traps on
// what the host sends.
#include "proxy_wasm/context.h"

#include "proxy_wasm/api.h"
#include "sdk/src/export.h"
#include "sdk/src/registry.h"

namespace proxy_wasm {
RegisterContextFactory::RegisterContextFactory(StreamFactory stream_factory,
                                               RootFactory root_factory, std::string_view root_id) {
  Registry& registry = Registry::get();
  if (registry.factory_count == Registry::kMaxFactories)
    __builtin_trap();  // at start-up, a build error
  registry.factories[registry.factory_count++] = {root_id, stream_factory, root_factory};
}

size_t liveContextCount() {
  return Registry::get().contexts.size();
}

}  // namespace proxy_wasm

using proxy_wasm::Registry;
using proxy_wasm::statusOf;

extern "C" {

PROXY_WASM_EXPORT(proxy_abi_version_0_2_1) void proxy_abi_version_0_2_1() {}

PROXY_WASM_EXPORT(proxy_on_context_create)
void proxy_on_context_create(uint32_t id, uint32_t parent_id) {
  if (parent_id == 0) {
    Registry::get().createRoot(id);
  } else {
    Registry::get().createStream(id, parent_id);
  }
}

PROXY_WASM_EXPORT(proxy_on_vm_start)
uint32_t proxy_on_vm_start(uint32_t root_id, uint32_t vm_configuration_size) {
  auto* root = Registry::get().findRoot(root_id);
  return root != nullptr && root->onStart(vm_configuration_size) ? 1 : 0;
}

PROXY_WASM_EXPORT(proxy_on_configure)
uint32_t proxy_on_configure(uint32_t root_id, uint32_t configuration_size) {
  auto* root = Registry::get().findRoot(root_id);
  return root != nullptr && root->onConfigure(configuration_size) ? 1 : 0;
}

PROXY_WASM_EXPORT(proxy_on_new_connection) uint32_t proxy_on_new_connection(uint32_t id) {
  auto* stream = Registry::get().findStream(id);
  return stream != nullptr ? statusOf(stream->onNewConnection()) : 0;
}

PROXY_WASM_EXPORT(proxy_on_delete) void proxy_on_delete(uint32_t id) {
  Registry::get().erase(id);
}

}  // extern "C"
