#include "host/src/metrics.h"

#include "host/src/limits.h"

namespace tcpsteer::host {

using proxy_wasm::WasmResult;

WasmResult Metrics::define(MetricType type, std::string_view name, uint32_t* id) {
  if (name.size() > limits::kMaxMetricNameBytes) return limits::kHostLimitStatus;  // not copied
  auto key = std::make_pair(type, std::string(name));
  if (auto it = by_name_.find(key); it != by_name_.end()) {
    *id = it->second;
    return WasmResult::kOk;
  }
  if (by_id_.size() >= limits::kMaxMetrics || name.size() > limits::kMaxMetricNameBytes)
    return limits::kHostLimitStatus;
  auto kind = static_cast<uint32_t>(type);
  uint32_t new_id = (next_index_[kind]++ << 2) | kind;
  by_id_[new_id] = Metric{type, std::string(name), 0, {}};
  by_name_.emplace(std::move(key), new_id);
  *id = new_id;
  return WasmResult::kOk;
}

WasmResult Metrics::increment(uint32_t id, int64_t offset) {
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return WasmResult::kNotFound;
  Metric& metric = it->second;
  switch (metric.type) {
    case MetricType::kCounter:
      if (offset <= 0) return WasmResult::kBadArgument;
      metric.value = static_cast<int64_t>(static_cast<uint64_t>(metric.value) +
                                          static_cast<uint64_t>(offset));  // wraps, as Envoy's
      return WasmResult::kOk;
    case MetricType::kGauge:
      metric.value =
          static_cast<int64_t>(static_cast<uint64_t>(metric.value) + static_cast<uint64_t>(offset));
      return WasmResult::kOk;
    case MetricType::kHistogram:
      return WasmResult::kBadArgument;
  }
  return WasmResult::kBadArgument;
}

WasmResult Metrics::record(uint32_t id, uint64_t value) {
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return WasmResult::kNotFound;
  Metric& metric = it->second;
  switch (metric.type) {
    case MetricType::kCounter:
      metric.value =
          static_cast<int64_t>(static_cast<uint64_t>(metric.value) + value);  // Envoy adds
      return WasmResult::kOk;
    case MetricType::kGauge:
      metric.value = static_cast<int64_t>(value);
      return WasmResult::kOk;
    case MetricType::kHistogram:
      // Envoy's histograms keep buckets, not samples: beyond the cap, samples are not retained.
      if (metric.values.size() < limits::kMaxHistogramValues) metric.values.push_back(value);
      return WasmResult::kOk;
  }
  return WasmResult::kBadArgument;
}

WasmResult Metrics::get(uint32_t id, uint64_t* value) const {
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return WasmResult::kNotFound;
  if (it->second.type == MetricType::kHistogram) return WasmResult::kBadArgument;
  *value = static_cast<uint64_t>(it->second.value);
  return WasmResult::kOk;
}

std::optional<int64_t> Metrics::valueOf(std::string_view name) const {
  for (const auto& [id, metric] : by_id_) {
    if (metric.name == name) return metric.value;
  }
  return std::nullopt;
}

}  // namespace tcpsteer::host
