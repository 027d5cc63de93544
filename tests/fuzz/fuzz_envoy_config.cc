// libFuzzer target: tcpsteer-proxy's reader of Envoy's bootstrap YAML never crashes or throws on
// any text, and what it accepts satisfies the checks it promises (IP literals, unique names, one
// listener per address, clusters that exist, positive timeouts).
#include <arpa/inet.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>

#include "tcpsteer/host/envoy_config.h"

namespace {
bool isIp(const std::string& text) {
  unsigned char buffer[16];
  return inet_pton(AF_INET, text.c_str(), buffer) == 1 ||
         inet_pton(AF_INET6, text.c_str(), buffer) == 1;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto config = tcpsteer::host::parseEnvoyConfig(
      std::string(reinterpret_cast<const char*>(data), size), "fuzz.yaml");
  if (!config) return 0;
  std::set<std::string> names;
  std::set<std::pair<std::string, uint16_t>> addresses;
  for (const auto& listener : config->listeners) {
    if (!isIp(listener.address.address) || !names.insert(listener.name).second ||
        !addresses.insert({listener.address.address, listener.address.port}).second ||
        config->clusters.count(listener.cluster) == 0) {
      std::abort();
    }
  }
  for (const auto& [name, cluster] : config->clusters) {
    if (cluster.endpoints.empty() || cluster.connect_timeout_ms == 0) std::abort();
    for (const auto& endpoint : cluster.endpoints) {
      if (!isIp(endpoint.address)) std::abort();
    }
  }
  return 0;
}
