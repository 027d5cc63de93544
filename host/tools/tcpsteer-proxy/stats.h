// The proxy's statistics, served by the admin endpoint in Prometheus text: the filter's own
// metrics (summed over the workers' VMs, under their Prometheus names) and the proxy's counters,
// named after Envoy's listener and tcp_proxy stats.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "tcpsteer/host/vm.h"

namespace tcpsteer::proxy {

struct Stats {
  std::atomic<int64_t> downstream_cx_total{0};
  std::atomic<int64_t> downstream_cx_active{0};
  std::atomic<int64_t> downstream_cx_overflow{0};  // accept failed: out of fds or memory
  std::atomic<int64_t> upstream_cx_connect_fail{0};
  std::atomic<int64_t> idle_timeout{0};
  std::atomic<int64_t> no_cluster{0};
  std::atomic<int64_t> closed_by_filter{0};
  std::atomic<int64_t> session_errors{0};  // a connection or admin session ended by an exception

  // Replaces one VM's metric values (key: worker and listener).
  void snapshot(const std::string& key, const host::Vm& vm);
  std::string prometheus() const;

 private:
  mutable std::mutex mutex_;
  std::map<std::string, std::map<std::string, int64_t>> per_vm_;
};

}  // namespace tcpsteer::proxy
