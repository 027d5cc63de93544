// Root and stream contexts, shaped like the upstream proxy-wasm C++ SDK, for L4 (network) filters.
//
// A plugin registers one RegisterContextFactory per root_id. The host creates one root context per
// plugin (parent id 0) and one stream context per connection (parent = the root's id); the SDK
// keeps them in a registry keyed by context id and routes every proxy_on_* export to the right
// object.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "proxy_wasm/abi.h"

namespace proxy_wasm {

class ContextBase {
 public:
  ContextBase(uint32_t id, bool is_root) : id_(id), is_root_(is_root) {}
  virtual ~ContextBase() = default;
  ContextBase(const ContextBase&) = delete;
  ContextBase& operator=(const ContextBase&) = delete;

  uint32_t id() const { return id_; }
  // A field, not a virtual: the registry asks on every callback.
  bool isRoot() const { return is_root_; }

  virtual void onDone() {}
  virtual void onLog() {}
  virtual void onDelete() {}

 private:
  uint32_t id_;
  bool is_root_;
};

class Context;
class RootContext;

using RootFactory = std::unique_ptr<RootContext> (*)(uint32_t id, std::string_view root_id);
using StreamFactory = std::unique_ptr<Context> (*)(uint32_t id, RootContext* root);

class RootContext : public ContextBase {
 public:
  RootContext(uint32_t id, std::string_view root_id)
      : ContextBase(id, /*is_root=*/true), root_id_(root_id) {}
  std::string_view rootId() const { return root_id_; }

  // Return false to fail the VM start / reject the configuration (Envoy then refuses the plugin).
  virtual bool onStart(size_t /*vm_configuration_size*/) { return true; }
  virtual bool onConfigure(size_t /*plugin_configuration_size*/) { return true; }

 private:
  friend struct RegisterContextFactory;
  friend class Registry;
  std::string root_id_;
  StreamFactory stream_factory_ = nullptr;
};

class Context : public ContextBase {
 public:
  Context(uint32_t id, RootContext* root) : ContextBase(id, /*is_root=*/false), root_(root) {}
  RootContext* root() const { return root_; }

  virtual FilterStatus onNewConnection() { return FilterStatus::kContinue; }
  virtual FilterStatus onDownstreamData(size_t /*data_size*/, bool /*end_of_stream*/) {
    return FilterStatus::kContinue;
  }
  virtual FilterStatus onUpstreamData(size_t /*data_size*/, bool /*end_of_stream*/) {
    return FilterStatus::kContinue;
  }
  virtual void onDownstreamConnectionClose(PeerType /*peer*/) {}
  virtual void onUpstreamConnectionClose(PeerType /*peer*/) {}

 private:
  RootContext* root_;
};

// Registers the factories for one root_id (a string literal: it is kept by reference). An empty
// root_id registers the fallback used for any root_id without an exact registration, so a filter
// can run under whatever name a deployment uses. At most 8 registrations per module.
struct RegisterContextFactory {
  RegisterContextFactory(StreamFactory stream_factory, RootFactory root_factory,
                         std::string_view root_id = "");
};

// Live contexts (tests and diagnostics).
size_t liveContextCount();

}  // namespace proxy_wasm
