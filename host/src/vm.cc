// Envoy's side of the proxy-wasm ABI over a WasmEngine: load checks, call order, the host
// functions, properties, foreign functions, metrics, logs and the fail policy.
#include "tcpsteer/host/vm.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <deque>
#include <functional>
#include <random>
#include <utility>

#include "host/src/host_functions.h"
#include "host/src/precompiled_engine.h"
#include "host/src/wasm_engine.h"

namespace tcpsteer::host {
namespace {

enum Status : uint32_t {
  kOk = 0,
  kNotFound = 1,
  kBadArgument = 2,
  kInvalidMemoryAccess = 6,
  kEmpty = 7,
  kCasMismatch = 8,
  kInternalFailure = 10,
  kUnimplemented = 12,
};

enum WasiErrno : uint32_t {
  kWasiSuccess = 0,
  kWasiBadf = 8,
  kWasiFault = 21,
  kWasiInval = 28,
  kWasiNoent = 44,
  kWasiNosys = 52,
  kWasiNotsup = 58
};

constexpr const char* kAbiMarkers[] = {"proxy_abi_version_0_1_0", "proxy_abi_version_0_2_0",
                                       "proxy_abi_version_0_2_1"};

std::string wasiModuleName(std::string_view module) {
  return module == "wasi_snapshot_preview1" || module == "wasi_unstable" ? "wasi"
                                                                         : std::string(module);
}

const HostFunctionSpec* findSpec(const ImportDesc& import) {
  std::string module = wasiModuleName(import.module);
  for (const HostFunctionSpec& spec : kHostFunctions) {
    if (spec.module == module && spec.name == import.name) return &spec;
  }
  return nullptr;
}

bool specAvailable(const HostFunctionSpec& spec, std::string_view abi, WasiTier tier) {
  if (spec.wasi_tier > static_cast<int>(tier)) return false;
  switch (spec.abi) {
    case 1:
      return abi == "0_1_0";
    case 2:
      return abi == "0_2_0" || abi == "0_2_1";
    case 21:
      return abi == "0_2_1";
    default:
      return true;
  }
}

std::string encodeInt64(int64_t value) {
  std::string out(8, '\0');
  std::memcpy(out.data(), &value, 8);
  return out;
}

// "10.1.2.3:80" / "[::1]:80" -> 80; -1 if no port.
int64_t portOf(const std::string& address) {
  size_t colon = address.rfind(':');
  size_t bracket = address.rfind(']');
  if (colon == std::string::npos || (bracket != std::string::npos && colon < bracket)) return -1;
  if (address.front() != '[' && address.find(':') != colon) return -1;  // bare IPv6
  int64_t port = 0;
  for (size_t i = colon + 1; i < address.size(); ++i) {
    if (address[i] < '0' || address[i] > '9' || port > 65535) return -1;
    port = port * 10 + (address[i] - '0');
  }
  return colon + 1 < address.size() ? port : -1;
}

bool validUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += n;
  }
  return true;
}

// SetEnvoyFilterStateArguments: path = 1, value = 2, span = 3; unknown fields skipped as protobuf
// does.
bool decodeFilterStateArguments(std::string_view bytes, std::string* path, std::string* value) {
  size_t pos = 0;
  auto varint = [&](uint64_t* out) {
    uint64_t result = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos >= bytes.size()) return false;
      auto b = static_cast<uint8_t>(bytes[pos++]);
      result |= static_cast<uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) {
        *out = result;
        return true;
      }
    }
    return false;
  };
  while (pos < bytes.size()) {
    uint64_t tag = 0;
    if (!varint(&tag) || (tag >> 3) == 0) return false;
    uint64_t wire_type = tag & 7;
    uint64_t field = tag >> 3;
    if (wire_type == 0) {
      uint64_t ignored = 0;
      if (!varint(&ignored)) return false;
    } else if (wire_type == 2) {
      uint64_t length = 0;
      if (!varint(&length) || length > bytes.size() - pos) return false;
      std::string_view data = bytes.substr(pos, length);
      pos += length;
      if (field == 1 || field == 2) {
        if (!validUtf8(data)) return false;  // proto3 strings must be UTF-8
        (field == 1 ? *path : *value) = std::string(data);
      }
    } else if (wire_type == 1) {
      if (bytes.size() - pos < 8) return false;
      pos += 8;
    } else if (wire_type == 5) {
      if (bytes.size() - pos < 4) return false;
      pos += 4;
    } else {
      return false;
    }
  }
  return true;
}

}  // namespace

const char* logLevelName(LogLevel level) {
  static constexpr const char* kNames[] = {"trace", "debug", "info", "warn", "error", "critical"};
  auto index = static_cast<size_t>(level);
  return index < 6 ? kNames[index] : "unknown";
}

// ---------------------------------------------------------------------------------------------------
// The host functions.

class Vm::Abi {
 public:
  explicit Abi(Vm& vm) : vm_(vm) {}

  using Handler =
      std::function<uint64_t(std::span<const uint64_t> a, bool* trap, std::string* message)>;

  HostFunction bind(const HostFunctionSpec& spec) {
    Handler handler = handlerFor(spec.name, spec.module == "wasi");
    bool startup_ok = spec.allowed_at_startup ||
                      (spec.name == "fd_fdstat_get" && vm_.options_.wasi_tier >= WasiTier::kTier2);
    bool allocator_ok = spec.allowed_in_allocator;
    bool has_result = !spec.signature.ends_with("-> ()");
    std::string name(spec.name);
    return [this, handler, startup_ok, allocator_ok, has_result, name](
               std::span<const uint64_t> args, std::span<uint64_t> results, std::string* trap) {
      if ((vm_.window_ == Window::kStartup && !startup_ok) ||
          (vm_.window_ == Window::kAllocator && !allocator_ok)) {
        *trap = "restricted_callback: " + name + " is not allowed " +
                (vm_.window_ == Window::kStartup ? "during start-up" : "inside the allocator");
        return false;
      }
      bool trapped = false;
      uint64_t result = handler(args, &trapped, trap);
      if (trapped) return false;
      if (has_result && !results.empty()) results[0] = result;
      return true;
    };
  }

 private:
  // --- guest memory, bounds-checked on every access ---
  bool inBounds(uint64_t ptr, uint64_t size) const {
    uint64_t memory = vm_.engine_->memorySize();
    return ptr <= memory && size <= memory - ptr;
  }
  bool read(uint64_t ptr, uint64_t size, std::string* out) {
    if (!inBounds(ptr, size)) return false;
    out->assign(reinterpret_cast<const char*>(vm_.engine_->memoryData() + ptr), size);
    return true;
  }
  bool write(uint64_t ptr, std::string_view data) {
    if (!inBounds(ptr, data.size())) return false;
    if (!data.empty()) std::memcpy(vm_.engine_->memoryData() + ptr, data.data(), data.size());
    return true;
  }
  bool writeU32(uint64_t ptr, uint32_t value) {
    return write(ptr, std::string_view(reinterpret_cast<const char*>(&value), 4));
  }
  bool writeU64(uint64_t ptr, uint64_t value) {
    return write(ptr, std::string_view(reinterpret_cast<const char*>(&value), 8));
  }

  // The host's copyToPointerSize: malloc in the guest, copy, write pointer and size. Empty values
  // allocate nothing and write 0/0.
  uint32_t copyOut(std::string_view data, uint64_t ptr_ptr, uint64_t size_ptr, bool* trap,
                   std::string* message) {
    uint32_t address = 0;
    if (!data.empty()) {
      Window saved = vm_.window_;
      vm_.window_ = Window::kAllocator;
      CallOutcome outcome =
          vm_.engine_->call(vm_.malloc_export_, std::array<uint64_t, 1>{data.size()});
      vm_.window_ = saved;
      if (!outcome.ok()) {
        *trap = true;
        *message = outcome.status == CallOutcome::Status::kBudgetExhausted
                       ? outcome.message
                       : vm_.malloc_export_ + ": " + outcome.message;
        return kInternalFailure;
      }
      address = static_cast<uint32_t>(outcome.results.empty() ? 0 : outcome.results[0]);
      if (address == 0 || !write(address, data)) return kInvalidMemoryAccess;
    }
    if (!writeU32(ptr_ptr, address) || !writeU32(size_ptr, static_cast<uint32_t>(data.size()))) {
      return kInvalidMemoryAccess;
    }
    return kOk;
  }

  Connection* currentConnection() {
    auto it = vm_.connections_.find(vm_.current_context_);
    return it == vm_.connections_.end() ? nullptr : &it->second;
  }

  std::optional<std::string> property(const std::string& path) {
    Connection* connection = currentConnection();
    if (connection != nullptr) {
      if (auto it = connection->properties.find(path); it != connection->properties.end())
        return it->second;
      if (path.starts_with("filter_state.")) {
        if (auto it = connection->filter_state.find(path.substr(13));
            it != connection->filter_state.end()) {
          return it->second;
        }
      }
      if (auto it = connection->filter_state.find("wasm." + path);
          it != connection->filter_state.end()) {
        return it->second;
      }
    }
    if (path == "plugin_root_id") return vm_.plugin_.root_id;
    if (path == "plugin_name") return vm_.plugin_.name;
    if (path == "plugin_vm_id") return vm_.plugin_.vm_id;
    if (path == "xds.listener_direction" || path == "listener_direction")
      return encodeInt64(2);  // OUTBOUND
    if (auto it = root_properties_.find("wasm." + path); it != root_properties_.end())
      return it->second;
    return std::nullopt;
  }

  Handler handlerFor(std::string_view name, bool wasi) {
    using A = std::span<const uint64_t>;
    auto u32 = [](uint64_t v) { return static_cast<uint32_t>(v); };
    if (wasi) return wasiHandler(name);
    if (name == "proxy_log") {
      return [this, u32](A a, bool*, std::string*) -> uint64_t {
        if (a[0] > 5) return kBadArgument;
        std::string message;
        if (!read(u32(a[1]), u32(a[2]), &message)) return kInvalidMemoryAccess;
        vm_.addLog(static_cast<LogLevel>(a[0]), std::move(message));
        return kOk;
      };
    }
    if (name == "proxy_get_log_level") {
      return [this, u32](A a, bool*, std::string*) -> uint64_t {
        return writeU32(u32(a[0]), static_cast<uint32_t>(vm_.options_.log_level))
                   ? kOk
                   : kInvalidMemoryAccess;
      };
    }
    if (name == "proxy_get_status") {
      return [this, u32](A a, bool* trap, std::string* message) -> uint64_t {
        if (!writeU32(u32(a[0]), 0)) return kInvalidMemoryAccess;
        return copyOut("", u32(a[1]), u32(a[2]), trap, message);
      };
    }
    if (name == "proxy_get_property") {
      return [this, u32](A a, bool* trap, std::string* message) -> uint64_t {
        std::string raw;
        if (!read(u32(a[0]), u32(a[1]), &raw)) return kInvalidMemoryAccess;
        // NUL-separated segments; empty trailing segments are ignored.
        std::string path;
        size_t start = 0;
        while (start <= raw.size()) {
          size_t end = raw.find('\0', start);
          if (end == std::string::npos) end = raw.size();
          if (end > start) {
            if (!path.empty()) path += '.';
            path.append(raw, start, end - start);
          }
          start = end + 1;
        }
        auto value = property(path);
        if (!value) return kNotFound;
        return copyOut(*value, u32(a[2]), u32(a[3]), trap, message);
      };
    }
    if (name == "proxy_set_property") {
      return [this, u32](A a, bool*, std::string*) -> uint64_t {
        std::string key;
        std::string value;
        if (!read(u32(a[0]), u32(a[1]), &key) || !read(u32(a[2]), u32(a[3]), &value))
          return kInvalidMemoryAccess;
        Connection* connection = currentConnection();
        (connection != nullptr ? connection->filter_state : root_properties_)["wasm." + key] =
            value;
        return kOk;
      };
    }
    if (name == "proxy_get_buffer_status") {
      return [this, u32](A a, bool*, std::string*) -> uint64_t {
        if (a[0] > 8) return kBadArgument;
        const std::string* buffer = bufferFor(u32(a[0]));
        if (buffer == nullptr) return kNotFound;
        return writeU32(u32(a[1]), static_cast<uint32_t>(buffer->size())) && writeU32(u32(a[2]), 0)
                   ? kOk
                   : kInvalidMemoryAccess;
      };
    }
    if (name == "proxy_get_buffer_bytes") {
      return [this, u32](A a, bool* trap, std::string* message) -> uint64_t {
        if (a[0] > 8) return kBadArgument;
        const std::string* buffer = bufferFor(u32(a[0]));
        if (buffer == nullptr) return kNotFound;
        uint64_t start = u32(a[1]);
        uint64_t length = u32(a[2]);
        if (start + length > UINT32_MAX)
          return kBadArgument;  // start + length overflows in the guest
        start = std::min<uint64_t>(start, buffer->size());
        length = std::min<uint64_t>(length, buffer->size() - start);
        return copyOut(std::string_view(*buffer).substr(start, length), u32(a[3]), u32(a[4]), trap,
                       message);
      };
    }
    if (name == "proxy_set_buffer_bytes") {
      return [this, u32](A a, bool*, std::string*) -> uint64_t {
        if (a[0] > 8) return kBadArgument;
        std::string* buffer = mutableBufferFor(u32(a[0]));
        if (buffer == nullptr) return kBadArgument;
        std::string data;
        if (!read(u32(a[3]), u32(a[4]), &data)) return kInvalidMemoryAccess;
        uint64_t start = u32(a[1]);
        uint64_t length = u32(a[2]);
        if (start == 0) {
          buffer->replace(0, std::min<uint64_t>(length, buffer->size()), data);
        } else if (start >= buffer->size()) {
          buffer->append(data);
        } else {
          return kBadArgument;  // Envoy cannot insert in the middle
        }
        return kOk;
      };
    }
    if (name == "proxy_call_foreign_function") return foreignFunction();
    if (name == "proxy_define_metric") {
      return [this, u32](A a, bool*, std::string*) -> uint64_t {
        if (a[0] > 2) return kBadArgument;
        std::string metric_name;
        if (!read(u32(a[1]), u32(a[2]), &metric_name)) return kInvalidMemoryAccess;
        auto type = static_cast<MetricType>(a[0]);
        uint32_t id = 0;
        for (const auto& [existing_id, metric] : vm_.metrics_) {
          if (metric.name == metric_name && metric.type == type) id = existing_id;
        }
        if (id == 0) {
          id = (vm_.next_metric_index_[a[0]]++ << 2) | u32(a[0]);
          vm_.metrics_[id] = Metric{type, metric_name, 0, {}};
        }
        return writeU32(u32(a[3]), id) ? kOk : kInvalidMemoryAccess;
      };
    }
    if (name == "proxy_increment_metric" || name == "proxy_record_metric") {
      bool increment = name == "proxy_increment_metric";
      return [this, u32, increment](A a, bool*, std::string*) -> uint64_t {
        auto it = vm_.metrics_.find(u32(a[0]));
        if (it == vm_.metrics_.end()) return kNotFound;
        Metric& metric = it->second;
        auto value = static_cast<int64_t>(a[1]);
        switch (metric.type) {
          case MetricType::kCounter:
            if (increment && value <= 0) return kBadArgument;
            metric.value += value;
            return kOk;
          case MetricType::kGauge:
            metric.value = increment ? metric.value + value : value;
            return kOk;
          case MetricType::kHistogram:
            if (increment) return kBadArgument;
            metric.values.push_back(a[1]);
            return kOk;
        }
        return kBadArgument;
      };
    }
    if (name == "proxy_get_metric") {
      return [this, u32](A a, bool*, std::string*) -> uint64_t {
        auto it = vm_.metrics_.find(u32(a[0]));
        if (it == vm_.metrics_.end()) return kNotFound;
        if (it->second.type == MetricType::kHistogram) return kBadArgument;
        return writeU64(u32(a[1]), static_cast<uint64_t>(it->second.value)) ? kOk
                                                                            : kInvalidMemoryAccess;
      };
    }
    if (name == "proxy_get_current_time_nanoseconds") {
      return [this, u32](A a, bool*, std::string*) -> uint64_t {
        return writeU64(u32(a[0]), vm_.now()) ? kOk : kInvalidMemoryAccess;
      };
    }
    if (name == "proxy_set_tick_period_milliseconds") {
      return [this, u32](A a, bool*, std::string*) -> uint64_t {
        if (vm_.current_context_ != vm_.root_context_id_) return kBadArgument;
        vm_.tick_period_ms_ = u32(a[0]);
        return kOk;
      };
    }
    if (name == "proxy_set_effective_context") {
      return [this, u32](A a, bool*, std::string*) -> uint64_t {
        uint32_t id = u32(a[0]);
        if (id != vm_.root_context_id_ && vm_.connections_.count(id) == 0) return kBadArgument;
        vm_.current_context_ = id;
        return kOk;
      };
    }
    if (name == "proxy_done") {
      return [this](A, bool*, std::string*) -> uint64_t {
        return vm_.current_context_ == vm_.root_context_id_ ? kOk : kNotFound;
      };
    }
    if (name == "proxy_continue_stream" || name == "proxy_close_stream") {
      bool close = name == "proxy_close_stream";
      return [this, u32, close](A a, bool*, std::string*) -> uint64_t {
        uint32_t type = u32(a[0]);
        if (type > 3) return kBadArgument;
        Connection* connection = currentConnection();
        if (connection == nullptr || type < 2)
          return kBadArgument;  // HTTP stream types on an L4 filter
        if (close) {
          close_requested_.insert(connection->context_id);
          return kOk;
        }
        if (type == 3) return kUnimplemented;  // Envoy cannot resume the upstream direction
        continue_requested_.insert(connection->context_id);
        return kOk;
      };
    }
    if (name == "proxy_get_configuration") {  // ABI 0.1.0
      return [this, u32](A a, bool* trap, std::string* message) -> uint64_t {
        if (!vm_.in_configure_) return kNotFound;
        return copyOut(vm_.plugin_.configuration, u32(a[0]), u32(a[1]), trap, message);
      };
    }
    if (name == "proxy_continue_request" || name == "proxy_continue_response" ||
        name == "proxy_clear_route_cache") {
      return [](A, bool*, std::string*) -> uint64_t { return kOk; };
    }
    if (name == "proxy_get_shared_data") {
      return [this, u32](A a, bool* trap, std::string* message) -> uint64_t {
        std::string key;
        if (!read(u32(a[0]), u32(a[1]), &key)) return kInvalidMemoryAccess;
        auto it = vm_.shared_data_.find(key);
        if (it == vm_.shared_data_.end()) return kNotFound;
        if (!writeU32(u32(a[4]), it->second.second)) return kInvalidMemoryAccess;
        return copyOut(it->second.first, u32(a[2]), u32(a[3]), trap, message);
      };
    }
    if (name == "proxy_set_shared_data") {
      return [this, u32](A a, bool*, std::string*) -> uint64_t {
        std::string key;
        std::string value;
        if (!read(u32(a[0]), u32(a[1]), &key) || !read(u32(a[2]), u32(a[3]), &value))
          return kInvalidMemoryAccess;
        auto& entry = vm_.shared_data_[key];
        if (u32(a[4]) != 0 && u32(a[4]) != entry.second) return kCasMismatch;
        entry = {value, entry.second + 1};
        return kOk;
      };
    }
    if (name == "proxy_register_shared_queue" || name == "proxy_resolve_shared_queue") {
      bool resolve = name == "proxy_resolve_shared_queue";
      return [this, u32, resolve](A a, bool*, std::string*) -> uint64_t {
        std::string queue_name;
        uint64_t name_ptr = resolve ? a[2] : a[0];
        uint64_t name_size = resolve ? a[3] : a[1];
        if (!read(u32(name_ptr), u32(name_size), &queue_name)) return kInvalidMemoryAccess;
        auto it = std::find(queue_names_.begin(), queue_names_.end(), queue_name);
        if (it == queue_names_.end()) {
          if (resolve) return kNotFound;
          queue_names_.push_back(queue_name);
          queues_.emplace_back();
          it = queue_names_.end() - 1;
        }
        auto token = static_cast<uint32_t>(it - queue_names_.begin() + 1);
        return writeU32(u32(resolve ? a[4] : a[2]), token) ? kOk : kInvalidMemoryAccess;
      };
    }
    if (name == "proxy_enqueue_shared_queue") {
      return [this, u32](A a, bool*, std::string*) -> uint64_t {
        if (u32(a[0]) == 0 || u32(a[0]) > queues_.size()) return kNotFound;
        std::string data;
        if (!read(u32(a[1]), u32(a[2]), &data)) return kInvalidMemoryAccess;
        queues_[u32(a[0]) - 1].push_back(std::move(data));
        return kOk;
      };
    }
    if (name == "proxy_dequeue_shared_queue") {
      return [this, u32](A a, bool* trap, std::string* message) -> uint64_t {
        if (u32(a[0]) == 0 || u32(a[0]) > queues_.size()) return kNotFound;
        auto& queue = queues_[u32(a[0]) - 1];
        if (queue.empty()) return kEmpty;
        std::string data = std::move(queue.front());
        queue.pop_front();
        return copyOut(data, u32(a[1]), u32(a[2]), trap, message);
      };
    }
    if (name.find("header_map") != std::string_view::npos) {
      return [u32](A a, bool*, std::string*) -> uint64_t {
        return u32(a[0]) > 7 ? kBadArgument : kNotFound;
      };
    }
    if (name == "proxy_http_call" || name == "proxy_grpc_call" || name == "proxy_grpc_stream" ||
        name == "envoy_resolve_dns") {
      return [](A, bool*, std::string*) -> uint64_t {
        return kBadArgument;
      };  // no clusters / resolver here
    }
    if (name == "proxy_grpc_close" || name == "proxy_grpc_cancel" || name == "proxy_grpc_send" ||
        name == "proxy_send_local_response") {
      return [](A, bool*, std::string*) -> uint64_t { return kNotFound; };
    }
    if (name == "pthread_equal") {
      return [](A a, bool*, std::string*) -> uint64_t { return a[0] == a[1] ? 1 : 0; };
    }
    return [](A, bool*, std::string*) -> uint64_t { return 0; };  // emscripten_notify_memory_growth
  }

  Handler foreignFunction() {
    return [this](std::span<const uint64_t> a, bool*, std::string*) -> uint64_t {
      auto u32 = [](uint64_t v) { return static_cast<uint32_t>(v); };
      std::string function;
      std::string arguments;
      if (!read(u32(a[0]), u32(a[1]), &function) || !read(u32(a[2]), u32(a[3]), &arguments)) {
        return kInvalidMemoryAccess;
      }
      if (function != "set_envoy_filter_state") return kNotFound;
      uint32_t status = kOk;
      std::string path;
      std::string value;
      Connection* connection = currentConnection();
      if (!decodeFilterStateArguments(arguments, &path, &value)) {
        status = kBadArgument;
      } else if (vm_.options_.filter_state_keys.count(path) == 0 || connection == nullptr) {
        status = kNotFound;  // no object factory for the key, or no stream info (root context)
      } else {
        connection->filter_state[path] = value;
      }
      // The function returns nothing: the host writes 0/0 when the guest asked for results.
      if (status == kOk && u32(a[4]) != 0 && (!writeU32(u32(a[4]), 0) || !writeU32(u32(a[5]), 0))) {
        return kInvalidMemoryAccess;
      }
      return status;
    };
  }

  Handler wasiHandler(std::string_view name) {
    using A = std::span<const uint64_t>;
    auto u32 = [](uint64_t v) { return static_cast<uint32_t>(v); };
    if (name == "fd_write") {
      return [this, u32](A a, bool*, std::string*) -> uint64_t {
        uint32_t fd = u32(a[0]);
        if (fd != 1 && fd != 2) return kWasiBadf;
        std::string text;
        for (uint32_t i = 0; i < u32(a[2]); ++i) {
          std::string iov;
          if (!read(u32(a[1]) + 8ULL * i, 8, &iov)) return kWasiFault;
          uint32_t base = 0;
          uint32_t length = 0;
          std::memcpy(&base, iov.data(), 4);
          std::memcpy(&length, iov.data() + 4, 4);
          std::string part;
          if (!read(base, length, &part)) return kWasiFault;
          text += part;
        }
        if (!writeU32(u32(a[3]), static_cast<uint32_t>(text.size()))) return kWasiFault;
        if (!text.empty() && text.back() == '\n') text.pop_back();
        vm_.addLog(fd == 1 ? LogLevel::kInfo : LogLevel::kError, std::move(text));
        return kWasiSuccess;
      };
    }
    if (name == "fd_fdstat_get") {
      return [this, u32](A a, bool*, std::string*) -> uint64_t {
        if (u32(a[0]) != 1 && u32(a[0]) != 2) return kWasiBadf;
        std::string stat(24, '\0');
        stat[8] = 64;  // rights_base = FD_WRITE
        return write(u32(a[1]), stat) ? kWasiSuccess : kWasiFault;
      };
    }
    if (name == "environ_sizes_get" || name == "environ_get") {
      bool sizes = name == "environ_sizes_get";
      return [this, u32, sizes](A a, bool*, std::string*) -> uint64_t {
        uint32_t count = 0;
        uint32_t bytes = 0;
        uint32_t pointer_slot = u32(a[0]);
        uint32_t buffer = u32(a[1]);
        for (const auto& [key, value] : vm_.options_.environment) {
          std::string entry = key;
          entry += '=';
          entry += value;
          entry.push_back('\0');
          if (!sizes) {
            if (!writeU32(pointer_slot + 4ULL * count, buffer + bytes) ||
                !write(buffer + bytes, entry)) {
              return kWasiFault;
            }
          }
          ++count;
          bytes += static_cast<uint32_t>(entry.size());
        }
        if (sizes && (!writeU32(u32(a[0]), count) || !writeU32(u32(a[1]), bytes)))
          return kWasiFault;
        return kWasiSuccess;
      };
    }
    if (name == "args_sizes_get") {
      return [this, u32](A a, bool*, std::string*) -> uint64_t {
        return writeU32(u32(a[0]), 0) && writeU32(u32(a[1]), 0) ? kWasiSuccess : kWasiFault;
      };
    }
    if (name == "clock_time_get") {
      return [this, u32](A a, bool*, std::string*) -> uint64_t {
        if (a[0] > 1) return kWasiNotsup;
        return writeU64(u32(a[2]), vm_.now()) ? kWasiSuccess : kWasiFault;
      };
    }
    if (name == "random_get") {
      return [this, u32](A a, bool*, std::string*) -> uint64_t {
        if (u32(a[1]) > 65536) return kWasiInval;
        std::string bytes(u32(a[1]), '\0');
        for (char& c : bytes) c = static_cast<char>(random_());
        return write(u32(a[0]), bytes) ? kWasiSuccess : kWasiFault;
      };
    }
    if (name == "fd_read" || name == "fd_prestat_dir_name" || name == "poll_oneoff" ||
        name == "fd_fdstat_set_flags") {
      return [](A, bool*, std::string*) -> uint64_t { return kWasiNosys; };
    }
    if (name == "path_open") return [](A, bool*, std::string*) -> uint64_t { return kWasiNoent; };
    if (name == "fd_prestat_get")
      return [](A, bool*, std::string*) -> uint64_t { return kWasiBadf; };
    // fd_seek, fd_close, args_get, proc_exit (logs only: it neither traps nor exits), sched_yield.
    return [](A, bool*, std::string*) -> uint64_t { return kWasiSuccess; };
  }

  const std::string* bufferFor(uint32_t type) {
    if (type == 6) return &vm_.options_.vm_configuration;
    if (type == 7) return vm_.in_configure_ ? &vm_.plugin_.configuration : nullptr;
    if (type == 2 || type == 3) {
      static const std::string kEmpty;
      Connection* connection = currentConnection();
      if (connection == nullptr || vm_.buffer_callback_ != static_cast<int>(type)) return &kEmpty;
      return type == 2 ? &connection->downstream_buffer : &connection->upstream_buffer;
    }
    return nullptr;
  }

  std::string* mutableBufferFor(uint32_t type) {
    Connection* connection = currentConnection();
    if (connection == nullptr || vm_.buffer_callback_ != static_cast<int>(type)) return nullptr;
    return type == 2 ? &connection->downstream_buffer : &connection->upstream_buffer;
  }

 public:
  std::set<uint32_t> close_requested_;
  std::set<uint32_t> continue_requested_;

 private:
  Vm& vm_;
  std::map<std::string, std::string> root_properties_;
  std::vector<std::string> queue_names_;
  std::vector<std::deque<std::string>> queues_;
  std::mt19937 random_{std::random_device{}()};
};

// ---------------------------------------------------------------------------------------------------
// Loading.

LoadReport Vm::inspect(std::span<const uint8_t> module) {
  LoadReport report;
  report.module_bytes = module.size();
  std::string error;
  auto engine = WasmEngine::parse(module, &error);
  if (!engine) {
    report.problems.push_back(error);
    return report;
  }
  for (const char* marker : kAbiMarkers) {
    for (const ExportDesc& e : engine->exports()) {
      if (e.name == marker && e.kind == ExternKind::kFunc)
        report.abi_version = std::string(marker).substr(18);
    }
  }
  if (report.abi_version.empty()) {
    report.problems.push_back(
        "no ABI version marker: export one function named proxy_abi_version_0_2_1 (or 0_2_0, "
        "0_1_0)");
  }
  for (const ImportDesc& import : engine->imports()) {
    std::string text = import.module + "." + import.name;
    if (import.kind != ExternKind::kFunc) {
      text += import.kind == ExternKind::kMemory ? " (memory)" : " (non-function)";
      report.imports.push_back(text);
      if (import.kind != ExternKind::kMemory) {
        report.unknown_imports.push_back(text);
        report.problems.push_back("missing import " + text +
                                  ": the host provides no globals or tables");
      }
      continue;
    }
    text += " " + import.sig.text();
    report.imports.push_back(text);
    const HostFunctionSpec* spec = findSpec(import);
    if (spec == nullptr || !specAvailable(*spec, report.abi_version, WasiTier::kTier1)) {
      report.unknown_imports.push_back(text);
      report.problems.push_back("Failed to load Wasm module due to a missing import: " +
                                import.module + "." + import.name);
    } else if (spec->signature != import.sig.text()) {
      report.problems.push_back("Failed to load Wasm module due to an import type mismatch: " +
                                import.module + "." + import.name + ", want: " + import.sig.text() +
                                ", but host exports: " + std::string(spec->signature));
    }
  }
  bool has_memory = false;
  bool has_allocator = false;
  for (const ExportDesc& e : engine->exports()) {
    if (e.kind == ExternKind::kMemory) {
      has_memory = true;
      report.exports.push_back(e.name + " (memory)");
      continue;
    }
    if (e.kind != ExternKind::kFunc) continue;
    report.exports.push_back(e.name + " " + e.sig.text());
    for (const ExportSpec& spec : kExportSpecs) {
      if (e.name != spec.name) continue;
      std::string want = report.abi_version == "0_1_0" && spec.signature_0_1_0 != nullptr
                             ? spec.signature_0_1_0
                             : spec.signature;
      if (e.sig.text() != want) {
        report.problems.push_back("Bad function signature for: " + e.name + " (" + e.sig.text() +
                                  ", expected " + want + ")");
      } else if (e.name == "malloc" || e.name == "proxy_on_memory_allocate") {
        has_allocator = true;
      }
    }
  }
  for (const ImportDesc& import : engine->imports())
    has_memory |= import.kind == ExternKind::kMemory;
  if (!has_memory) report.problems.push_back("the module has no linear memory (export \"memory\")");
  if (!has_allocator)
    report.problems.push_back("Wasm module is missing malloc function (export malloc)");
  report.ok = report.problems.empty();
  return report;
}

Vm::Vm(std::unique_ptr<WasmEngine> engine, VmOptions options)
    : engine_(std::move(engine)),
      abi_(std::make_unique<Abi>(*this)),
      options_(std::move(options)) {}

Vm::~Vm() = default;

std::unique_ptr<Vm> Vm::load(std::span<const uint8_t> module, VmOptions options,
                             LoadReport* report) {
  LoadReport local;
  LoadReport& out = report != nullptr ? *report : local;
  out = inspect(module);
  // WASI tier 2 hosts accept more imports: re-check those against the configured tier.
  if (!out.ok && options.wasi_tier == WasiTier::kTier2) {
    std::vector<std::string> problems;
    for (const std::string& problem : out.problems) {
      bool tier2_import = false;
      for (const HostFunctionSpec& spec : kHostFunctions) {
        if (spec.wasi_tier == 2 &&
            problem.find("." + std::string(spec.name)) != std::string::npos &&
            problem.find("missing import") != std::string::npos) {
          tier2_import = true;
        }
      }
      if (!tier2_import) problems.push_back(problem);
    }
    out.problems = problems;
    out.ok = problems.empty();
  }
  if (!out.ok) return nullptr;
  std::string error;
  // Precompiled when asked for or (auto) when this is the built module; else the interpreter.
  std::unique_ptr<WasmEngine> engine;
  if (options.engine != EngineChoice::kInterpreter) engine = makePrecompiledEngine(module, &error);
  const bool precompiled = engine != nullptr;
  if (!engine && options.engine != EngineChoice::kPrecompiled) {
    engine = WasmEngine::parse(module, &error);
  }
  if (!engine) {
    out.ok = false;
    out.problems.push_back(error);
    return nullptr;
  }
  std::unique_ptr<Vm> vm(new Vm(std::move(engine), std::move(options)));
  vm->precompiled_ = precompiled;
  vm->abi_version_ = out.abi_version;
  std::vector<HostFunction> functions;
  for (const ImportDesc& import : vm->engine_->imports()) {
    const HostFunctionSpec* spec = import.kind == ExternKind::kFunc ? findSpec(import) : nullptr;
    functions.push_back(spec != nullptr ? vm->abi_->bind(*spec) : HostFunction());
  }
  if (!vm->engine_->instantiate(functions, &error)) {
    out.ok = false;
    out.problems.push_back(error);
    return nullptr;
  }
  vm->malloc_export_ = vm->engine_->hasFunction("malloc") ? "malloc" : "proxy_on_memory_allocate";
  vm->engine_->setInstructionBudget(vm->options_.instruction_budget);
  return vm;
}

// ---------------------------------------------------------------------------------------------------
// Calls and the fail policy.

void Vm::addLog(LogLevel level, std::string message) {
  if (level < options_.log_level) return;
  logs_.push_back(LogEntry{level, current_context_, std::move(message)});
}

uint64_t Vm::now() const {
  if (now_ns_ != 0) return now_ns_;
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

void Vm::fail(const std::string& callback, const std::string& message) {
  if (!failure_) failure_ = Failure{callback, message};
  logs_.push_back(LogEntry{LogLevel::kCritical, current_context_,
                           "wasm VM failed in " + callback + ": " + message});
}

bool Vm::invoke(const char* name, std::initializer_list<uint64_t> args, uint64_t* result,
                uint32_t context) {
  if (failure_) return false;
  if (!engine_->hasFunction(name)) return false;
  current_context_ = context;
  CallOutcome outcome = engine_->call(name, std::span<const uint64_t>(args.begin(), args.size()));
  last_instructions_ = outcome.instructions;
  if (auto it = connections_.find(context); it != connections_.end())
    it->second.instructions += outcome.instructions;
  if (!outcome.ok()) {
    fail(name, outcome.message);
    return false;
  }
  if (result != nullptr) *result = outcome.results.empty() ? 0 : outcome.results[0];
  return true;
}

bool Vm::start() {
  window_ = Window::kStartup;
  bool ok = true;
  if (engine_->hasFunction("_initialize")) {
    ok = invoke("_initialize", {}, nullptr, 0);
    if (ok && engine_->hasFunction("main")) ok = invoke("main", {0, 0}, nullptr, 0);
  } else if (engine_->hasFunction("_start")) {
    ok = invoke("_start", {}, nullptr, 0);
  }
  window_ = Window::kNone;
  return ok && !failure_;
}

Vm::PluginStatus Vm::startPlugin(const PluginOptions& plugin) {
  plugin_ = plugin;
  if (failure_) return PluginStatus::kFailed;
  root_context_id_ = next_context_id_++;
  invoke("proxy_on_context_create", {root_context_id_, 0}, nullptr, root_context_id_);
  uint64_t started = 1;
  if (engine_->hasFunction("proxy_on_vm_start") &&
      !invoke("proxy_on_vm_start", {root_context_id_, options_.vm_configuration.size()}, &started,
              root_context_id_)) {
    return PluginStatus::kFailed;
  }
  if (failure_) return PluginStatus::kFailed;
  if (started == 0) return PluginStatus::kVmStartFailed;
  return reconfigure(plugin.configuration);
}

Vm::PluginStatus Vm::reconfigure(const std::string& configuration) {
  plugin_.configuration = configuration;
  if (failure_) return PluginStatus::kFailed;
  uint64_t configured = 1;
  in_configure_ = true;
  bool ok = !engine_->hasFunction("proxy_on_configure") ||
            invoke("proxy_on_configure", {root_context_id_, configuration.size()}, &configured,
                   root_context_id_);
  in_configure_ = false;
  if (!ok || failure_) return PluginStatus::kFailed;
  return configured == 0 ? PluginStatus::kConfigRejected : PluginStatus::kOk;
}

void Vm::startTcpProxy(Connection& connection) {
  if (connection.tcp_proxy_started || connection.downstream_closed) return;
  connection.tcp_proxy_started = true;
  connection.paused = false;
  if (auto it = connection.filter_state.find("envoy.tcp_proxy.cluster");
      it != connection.filter_state.end()) {
    connection.cluster_at_start = it->second;
  }
}

Action Vm::invokeAction(const char* name, std::initializer_list<uint64_t> args,
                        Connection& connection) {
  if (failure_) {
    if (options_.fail_open) return Action::kContinue;
    connection.closed_by_filter = true;  // fail closed: both directions closed once
    return Action::kPause;
  }
  uint64_t result = 0;
  if (!invoke(name, args, &result, connection.context_id)) {
    if (!failure_) return Action::kContinue;  // callback not exported
    if (options_.fail_open) return Action::kContinue;
    connection.closed_by_filter = true;
    return Action::kPause;
  }
  return result == 0 ? Action::kContinue : Action::kPause;
}

void Vm::applyDeferred(Connection& connection) {
  uint32_t id = connection.context_id;
  if (abi_->continue_requested_.erase(id) > 0 && connection.paused) {
    startTcpProxy(connection);
    connection.forwarded_upstream += connection.downstream_buffer;
    connection.downstream_buffer.clear();
  }
  if (abi_->close_requested_.erase(id) > 0 ||
      (connection.closed_by_filter && !connection.downstream_closed)) {
    connection.closed_by_filter = true;
    closeDownstream(id, PeerType::kLocal);
  }
}

uint32_t Vm::newConnection(const std::string& source_address,
                           const std::string& destination_address,
                           const std::map<std::string, std::string>& extra_properties) {
  uint32_t id = next_context_id_++;
  Connection& connection = connections_[id];
  connection.context_id = id;
  auto& p = connection.properties;
  p["source.address"] = source_address;
  p["destination.address"] = destination_address;
  if (int64_t port = portOf(source_address); port >= 0) p["source.port"] = encodeInt64(port);
  if (int64_t port = portOf(destination_address); port >= 0)
    p["destination.port"] = encodeInt64(port);
  p["connection.id"] = encodeInt64(id);
  p["connection_id"] = encodeInt64(id);
  p["connection.mtls"] = std::string(1, '\0');
  p["connection.requested_server_name"] = "";
  for (const auto& [key, value] : extra_properties) {
    if (value == kUnsetProperty) {
      p.erase(key);
    } else {
      p[key] = value;
    }
  }
  if (failure_) {
    // Envoy's createFilter on a failed VM: fail-open leaves the filter out, fail-closed closes.
    if (options_.fail_open) {
      connection.filter_skipped = true;
      startTcpProxy(connection);
    } else {
      connection.closed_by_filter = true;
      connection.downstream_closed = true;
    }
    return id;
  }
  invoke("proxy_on_context_create", {id, root_context_id_}, nullptr, id);
  Action action = invokeAction("proxy_on_new_connection", {id}, connection);
  if (action == Action::kContinue) {
    startTcpProxy(connection);
  } else {
    connection.paused = true;
  }
  applyDeferred(connection);
  return id;
}

Action Vm::downstreamData(uint32_t id, const std::string& bytes, bool end_of_stream) {
  auto it = connections_.find(id);
  if (it == connections_.end() || it->second.downstream_closed) return Action::kContinue;
  Connection& connection = it->second;
  connection.downstream_buffer += bytes;
  if (connection.filter_skipped) {
    connection.forwarded_upstream += connection.downstream_buffer;
    connection.downstream_buffer.clear();
    return Action::kContinue;
  }
  buffer_callback_ = 2;
  Action action =
      invokeAction("proxy_on_downstream_data",
                   {id, connection.downstream_buffer.size(), end_of_stream ? 1u : 0u}, connection);
  buffer_callback_ = -1;
  if (action == Action::kContinue) {
    startTcpProxy(connection);  // a paused chain resumes: tcp_proxy picks its cluster now
    connection.forwarded_upstream += connection.downstream_buffer;
    connection.downstream_buffer.clear();
  } else {
    connection.paused = true;
  }
  applyDeferred(connection);
  return action;
}

Action Vm::upstreamData(uint32_t id, const std::string& bytes, bool end_of_stream) {
  auto it = connections_.find(id);
  if (it == connections_.end() || it->second.downstream_closed) return Action::kContinue;
  Connection& connection = it->second;
  connection.upstream_buffer += bytes;
  Action action = Action::kContinue;
  if (!connection.filter_skipped) {
    buffer_callback_ = 3;
    action =
        invokeAction("proxy_on_upstream_data",
                     {id, connection.upstream_buffer.size(), end_of_stream ? 1u : 0u}, connection);
    buffer_callback_ = -1;
  }
  if (action == Action::kContinue) {
    connection.forwarded_downstream += connection.upstream_buffer;
    connection.upstream_buffer.clear();
  }
  if (end_of_stream && !connection.upstream_closed) {
    connection.upstream_closed = true;
    if (!connection.filter_skipped)
      invoke("proxy_on_upstream_connection_close", {id, 0}, nullptr, id);
  }
  applyDeferred(connection);
  return action;
}

void Vm::closeDownstream(uint32_t id, PeerType peer) {
  auto it = connections_.find(id);
  if (it == connections_.end() || it->second.downstream_closed) return;
  Connection& connection = it->second;
  connection.downstream_closed = true;
  if (connection.filter_skipped || failure_) return;
  invoke("proxy_on_downstream_connection_close", {id, static_cast<uint64_t>(peer)}, nullptr, id);
  invoke("proxy_on_done", {id}, nullptr, id);
  invoke("proxy_on_log", {id}, nullptr, id);
  invoke("proxy_on_delete", {id}, nullptr, id);
  abi_->close_requested_.erase(id);
  abi_->continue_requested_.erase(id);
}

const Connection* Vm::connection(uint32_t id) const {
  auto it = connections_.find(id);
  return it == connections_.end() ? nullptr : &it->second;
}

void Vm::forgetConnection(uint32_t id) {
  connections_.erase(id);
}

std::string Vm::takeForwardedUpstream(uint32_t id) {
  auto it = connections_.find(id);
  return it == connections_.end() ? std::string()
                                  : std::exchange(it->second.forwarded_upstream, std::string());
}

std::string Vm::takeForwardedDownstream(uint32_t id) {
  auto it = connections_.find(id);
  return it == connections_.end() ? std::string()
                                  : std::exchange(it->second.forwarded_downstream, std::string());
}

std::vector<std::string> Vm::logLines(LogLevel at_least) const {
  std::vector<std::string> lines;
  for (const LogEntry& entry : logs_) {
    if (entry.level >= at_least) lines.push_back(entry.message);
  }
  return lines;
}

std::optional<int64_t> Vm::metricValue(const std::string& name) const {
  for (const auto& [id, metric] : metrics_) {
    if (metric.name == name) return metric.value;
  }
  return std::nullopt;
}

void Vm::enableProfile() {
  engine_->enableProfile();
}
std::vector<std::pair<uint32_t, uint64_t>> Vm::profile() const {
  return engine_->profile();
}

uint64_t Vm::totalInstructions() const {
  return engine_->instructionsExecuted();
}
uint64_t Vm::memoryBytes() const {
  return engine_->memorySize();
}

}  // namespace tcpsteer::host
