// The SDK's context registry: the contexts the host created, by id, and the factories plugins
// registered. Internal to the SDK: the export files (context.cc and the opt-in
// stream_callbacks.cc) answer the host's callbacks through it.
#pragma once

#include <algorithm>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "proxy_wasm/api.h"
#include "proxy_wasm/context.h"

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

}  // namespace proxy_wasm
