// The context registry and every proxy_on_* export of an L4 module. An unknown context id is logged
// and ignored: the SDK never traps on what the host sends.
#include "proxy_wasm/context.h"

#include <algorithm>
#include <vector>

#include "proxy_wasm/api.h"

#if defined(__wasm__)
#define PROXY_WASM_EXPORT(name) __attribute__((export_name(#name)))
#else
#define PROXY_WASM_EXPORT(name)
#endif

namespace proxy_wasm {

class Registry {
 public:
  struct Factories {
    std::string_view root_id;  // RegisterContextFactory takes a string with static storage
    StreamFactory stream = nullptr;
    RootFactory root = nullptr;
  };
  static constexpr size_t kMaxFactories = 8;

  static Registry& get() {
    static Registry registry;  // no destructor runs: -fno-c++-static-destructors in the wasm build
    return registry;
  }

  // A raw owning pointer: entries are trivially copied as the vector grows and shrinks (a
  // unique_ptr's moves and destructor calls are instructions on every connection). insert takes
  // ownership; erase deletes.
  struct Entry {
    uint32_t id = 0;
    ContextBase* context = nullptr;
  };

  Factories factories[kMaxFactories] = {};
  size_t factory_count = 0;
  // Sorted by id. Hosts hand out increasing ids, so insertion is an append and lookup a binary
  // search; this is kilobytes smaller in the module than std::unordered_map.
  std::vector<Entry> contexts;
  // The newest stream context, also in contexts: find answers its callbacks first.
  uint32_t newest_stream_id_ = 0;
  Context* newest_stream_ = nullptr;  // null: erased, or none yet

  std::vector<Entry>::iterator lowerBound(uint32_t id) {
    // Fast path: the newest context (the usual target of a callback) is last.
    if (!contexts.empty() && contexts.back().id == id) return contexts.end() - 1;
    if (contexts.empty() || contexts.back().id < id) return contexts.end();
    return std::lower_bound(contexts.begin(), contexts.end(), id,
                            [](const Entry& entry, uint32_t key) { return entry.id < key; });
  }

  void insert(uint32_t id, std::unique_ptr<ContextBase> context) {
    if (contexts.empty() || contexts.back().id < id) {  // the usual case: a new, higher id
      contexts.push_back(Entry{id, context.release()});
      return;
    }
    auto it = lowerBound(id);
    if (it != contexts.end() && it->id == id) {
      if (id == newest_stream_id_) newest_stream_ = nullptr;
      delete it->context;  // a host reusing a live id replaces the old context
      it->context = context.release();
      return;
    }
    // Append, then move into place: one growth path in the module instead of vector::insert's.
    size_t position = static_cast<size_t>(it - contexts.begin());
    contexts.push_back(Entry{id, context.release()});
    for (size_t i = contexts.size() - 1; i > position; --i) std::swap(contexts[i], contexts[i - 1]);
  }

  void erase(uint32_t id) {
    if (id == newest_stream_id_) newest_stream_ = nullptr;
    if (!contexts.empty() && contexts.back().id == id) {  // the usual case: the newest context
      ContextBase* context = contexts.back().context;
      context->onDelete();
      contexts.pop_back();
      delete context;
      return;
    }
    auto it = lowerBound(id);
    if (it == contexts.end() || it->id != id) return;
    ContextBase* context = it->context;
    context->onDelete();
    contexts.erase(it);
    delete context;
  }

  const Factories* factoriesFor(std::string_view root_id) const {
    const Factories* fallback = nullptr;
    for (size_t i = 0; i < factory_count; ++i) {
      const Factories& f = factories[i];
      if (f.root_id == root_id) return &f;
      if (f.root_id.empty()) fallback = &f;
    }
    return fallback;
  }

  // The newest stream context answers a connection's callbacks, which come one after another
  // for one id, without touching the vector; then the newest context is checked inline before any
  // search.
  ContextBase* find(uint32_t id) {
    if (id == newest_stream_id_ && newest_stream_ != nullptr) return newest_stream_;
    size_t count = contexts.size();
    if (count != 0 && contexts[count - 1].id == id) return contexts[count - 1].context;
    auto it = lowerBound(id);
    return it != contexts.end() && it->id == id ? it->context : nullptr;
  }

  RootContext* findRoot(uint32_t id) {
    ContextBase* base = find(id);
    return base != nullptr && base->isRoot() ? static_cast<RootContext*>(base) : nullptr;
  }

  Context* findStream(uint32_t id) {
    ContextBase* base = find(id);
    return base != nullptr && !base->isRoot() ? static_cast<Context*>(base) : nullptr;
  }

  void createRoot(uint32_t id) {
    auto root_id_property = getProperty(PropertyPath("plugin_root_id"));
    std::string root_id(root_id_property.ok() ? root_id_property.value.view() : std::string_view());
    const Factories* f = factoriesFor(root_id);
    bool registered = f != nullptr && f->root != nullptr;
    if (!registered) {
      std::string message = "proxy-wasm sdk: no root context registered for root_id '";
      message += root_id;
      message += std::string_view("'; the plugin will do nothing");
      log(LogLevel::kWarn, message);
    }
    std::unique_ptr<RootContext> root =
        registered ? f->root(id, root_id) : std::make_unique<RootContext>(id, root_id);
    root->stream_factory_ = f != nullptr ? f->stream : nullptr;
    insert(id, std::move(root));
  }

  void createStream(uint32_t id, uint32_t parent_id) {
    RootContext* root = findRoot(parent_id);
    if (root == nullptr) {
      log(LogLevel::kError, "proxy-wasm sdk: stream context with unknown root; ignored");
      return;
    }
    std::unique_ptr<Context> stream = root->stream_factory_ != nullptr
                                          ? root->stream_factory_(id, root)
                                          : std::make_unique<Context>(id, root);
    Context* created = stream.get();
    insert(id, std::move(stream));
    newest_stream_id_ = id;
    newest_stream_ = created;
  }
};

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

using proxy_wasm::FilterStatus;
using proxy_wasm::PeerType;
using proxy_wasm::Registry;

namespace {

uint32_t statusOf(FilterStatus status) {
  return static_cast<uint32_t>(status);
}

}  // namespace

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

PROXY_WASM_EXPORT(proxy_on_delete) void proxy_on_delete(uint32_t id) {
  Registry::get().erase(id);
}

}  // extern "C"
