// Envoy's side of proxy_define_metric / increment / record / get: ids carry the type in their low
// two bits as in Envoy; metrics are indexed by (type, name), so defining is O(log n), and their
// number is capped (limits::kMaxMetrics).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "proxy_wasm/abi_types.h"
#include "tcpsteer/host/vm.h"

namespace tcpsteer::host {

class Metrics {
 public:
  proxy_wasm::WasmResult define(MetricType type, std::string_view name, uint32_t* id);
  proxy_wasm::WasmResult increment(uint32_t id, int64_t offset);
  proxy_wasm::WasmResult record(uint32_t id, uint64_t value);
  proxy_wasm::WasmResult get(uint32_t id, uint64_t* value) const;

  const std::map<uint32_t, Metric>& all() const { return by_id_; }
  std::optional<int64_t> valueOf(std::string_view name) const;

 private:
  std::map<uint32_t, Metric> by_id_;
  std::map<std::pair<MetricType, std::string>, uint32_t, std::less<>> by_name_;
  uint32_t next_index_[3] = {1, 1, 1};
};

}  // namespace tcpsteer::host
