// The subset of Envoy's static bootstrap that tcpsteer-proxy runs: listeners whose one filter chain
// is [envoy.filters.network.wasm] + envoy.filters.network.tcp_proxy, STATIC clusters, and admin.
// Anything outside the subset is rejected with the path of the offending field, so a file that
// loads here also means the same thing to `envoy -c`.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "tcpsteer/host/result.h"

namespace tcpsteer::host {

struct SocketAddressConfig {
  std::string address;
  uint16_t port = 0;
};

struct WasmFilterConfig {
  std::string name;
  std::string root_id;
  std::string vm_id;
  std::string configuration;  // config.configuration: a google.protobuf.StringValue's value
  std::string filename;       // vm_config.code.local.filename (relative: to the working directory)
  bool fail_open = false;
};

struct ListenerConfig {
  std::string name;
  SocketAddressConfig address;
  std::optional<WasmFilterConfig> wasm;  // absent: tcp_proxy alone
  std::string stat_prefix;
  std::string cluster;  // tcp_proxy's own cluster
  // tcp_proxy idle_timeout: a connection with no bytes either way for this long is closed.
  // Envoy's default is 1 hour; 0 disables it.
  uint64_t idle_timeout_ms = 3'600'000;
};

struct ClusterConfig {
  std::string name;
  std::vector<SocketAddressConfig> endpoints;
  uint32_t connect_timeout_ms = 5000;  // Envoy's default
};

struct EnvoyConfig {
  std::optional<SocketAddressConfig> admin;
  std::vector<ListenerConfig> listeners;
  std::map<std::string, ClusterConfig> clusters;
};

// Reads and checks the file (a regular file within limits::kMaxConfigFileBytes). Errors are one
// line: "FILE: field.path: problem; expected ...". Addresses must be IP literals (a STATIC
// cluster resolves nothing), durations positive, listener and cluster names unique, and no two
// listeners may share an address.
Result<EnvoyConfig> loadEnvoyConfig(const std::string& path);
// The same checks on YAML text; `origin` names it in errors.
Result<EnvoyConfig> parseEnvoyConfig(const std::string& text, const std::string& origin);

}  // namespace tcpsteer::host
