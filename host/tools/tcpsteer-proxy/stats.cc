#include "host/tools/tcpsteer-proxy/stats.h"

#include <cctype>

#include "host/tools/tcpsteer-proxy/output.h"

namespace tcpsteer::proxy {

void Stats::snapshot(const std::string& key, const host::Vm& vm) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto& values = per_vm_[key];
  for (const auto& [id, metric] : vm.metrics()) values[metric.name] = metric.value;
}

std::string Stats::prometheus() const {
  std::map<std::string, int64_t> sums;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& [key, values] : per_vm_) {
      for (const auto& [name, value] : values) sums[name] += value;
    }
  }
  std::string out;
  auto add = [&out](std::string name, int64_t value, const char* type) {
    for (char& c : name) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') c = '_';
    }
    out += "# TYPE " + name + " " + type + "\n" + name + " " + std::to_string(value) + "\n";
  };
  // Envoy strips the wasmcustom. namespace of filter metrics in Prometheus output.
  for (const auto& [name, value] : sums) add(name, value, "counter");
  add("envoy_tcpsteer_proxy_downstream_cx_total", downstream_cx_total, "counter");
  add("envoy_tcpsteer_proxy_downstream_cx_active", downstream_cx_active, "gauge");
  add("envoy_tcpsteer_proxy_downstream_cx_overflow", downstream_cx_overflow, "counter");
  add("envoy_tcpsteer_proxy_upstream_cx_connect_fail", upstream_cx_connect_fail, "counter");
  add("envoy_tcpsteer_proxy_idle_timeout", idle_timeout, "counter");
  add("envoy_tcpsteer_proxy_no_cluster", no_cluster, "counter");
  add("envoy_tcpsteer_proxy_closed_by_filter", closed_by_filter, "counter");
  add("envoy_tcpsteer_proxy_session_errors", session_errors, "counter");
  add("envoy_tcpsteer_proxy_output_lines_dropped", static_cast<int64_t>(droppedOutputLines()),
      "counter");
  return out;
}

}  // namespace tcpsteer::proxy
