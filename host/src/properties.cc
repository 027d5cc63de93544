#include "host/src/properties.h"

#include <cstring>

#include "host/src/envoy_host.h"
#include "host/src/limits.h"

namespace tcpsteer::host {
namespace {

constexpr int64_t kListenerDirectionOutbound = 2;  // envoy.config.core.v3.TrafficDirection

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

}  // namespace

std::string encodeInt64(int64_t value) {
  std::string out(sizeof value, '\0');
  std::memcpy(out.data(), &value, sizeof value);
  return out;
}

std::string joinPropertyPath(std::string_view raw) {
  std::string path;
  size_t start = 0;
  while (start <= raw.size()) {
    size_t end = raw.find('\0', start);
    if (end == std::string_view::npos) end = raw.size();
    if (end > start) {
      if (!path.empty()) path += '.';
      path.append(raw.substr(start, end - start));
    }
    start = end + 1;
  }
  return path;
}

std::map<std::string, std::string> connectionProperties(const std::string& source_address,
                                                        const std::string& destination_address,
                                                        uint32_t connection_id) {
  std::map<std::string, std::string> p;
  p["source.address"] = source_address;
  p["destination.address"] = destination_address;
  if (int64_t port = portOf(source_address); port >= 0) p["source.port"] = encodeInt64(port);
  if (int64_t port = portOf(destination_address); port >= 0)
    p["destination.port"] = encodeInt64(port);
  p["connection.id"] = encodeInt64(connection_id);
  p["connection_id"] = encodeInt64(connection_id);
  p["connection.mtls"] = std::string(1, '\0');
  p["connection.requested_server_name"] = "";
  return p;
}

std::optional<std::string> EnvoyHost::property(std::string_view path_view) {
  std::string path(path_view);
  if (Connection* connection = currentConnection(); connection != nullptr) {
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
  // Envoy 1.33 and later: xds.node.metadata.* only (the top-level node.* is gone).
  if (path.starts_with("xds.node.metadata.")) {
    std::string_view key = std::string_view(path).substr(18);
    if (auto it = plugin.node_metadata.find(std::string(key)); it != plugin.node_metadata.end())
      return it->second;
    // A map (LABELS) exists when one of its keys does; Envoy returns it as a map, which a
    // filter only tests for presence.
    std::string prefix = std::string(key) + ".";
    if (auto it = plugin.node_metadata.lower_bound(prefix);
        it != plugin.node_metadata.end() && it->first.starts_with(prefix)) {
      return std::string();
    }
    return std::nullopt;
  }
  if (path == "plugin_root_id") return plugin.root_id;
  if (path == "plugin_name") return plugin.name;
  if (path == "plugin_vm_id") return plugin.vm_id;
  if (path == "xds.listener_direction" || path == "listener_direction")
    return encodeInt64(kListenerDirectionOutbound);
  if (auto it = root_properties.find("wasm." + path); it != root_properties.end())
    return it->second;
  return std::nullopt;
}

proxy_wasm::WasmResult EnvoyHost::setProperty(std::string_view key, std::string_view value) {
  // Sized before anything is copied.
  if (key.size() + value.size() > limits::kMaxPropertyBytes) return limits::kHostLimitStatus;
  std::string name = "wasm." + std::string(key);
  Connection* connection = currentConnection();
  if (connection != nullptr) {
    auto& state = connection->filter_state;
    if ((state.count(name) == 0 && state.size() >= limits::kMaxProperties) ||
        name.size() + value.size() > limits::kMaxPropertyBytes)
      return limits::kHostLimitStatus;
    state[name] = value;
  } else {
    if ((root_properties.count(name) == 0 && root_properties.size() >= limits::kMaxProperties) ||
        name.size() + value.size() > limits::kMaxPropertyBytes)
      return limits::kHostLimitStatus;
    root_properties[name] = value;
  }
  return proxy_wasm::WasmResult::kOk;
}

}  // namespace tcpsteer::host
