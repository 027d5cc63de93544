#include "filter/core/workload.h"

namespace tcpsteer {
namespace {

bool anyEquals(const std::vector<std::string>& allowed, const std::optional<std::string>& value) {
  if (allowed.empty()) return true;
  if (!value) return false;
  for (const std::string& item : allowed) {
    if (item == *value) return true;
  }
  return false;
}

}  // namespace

const std::string* WorkloadIdentity::label(std::string_view key) const {
  for (const auto& [name, value] : labels) {
    if (name == key) return &value;
  }
  return nullptr;
}

bool selects(const WorkloadSelector& selector, const WorkloadIdentity& identity) {
  if (!anyEquals(selector.namespaces, identity.namespace_name) ||
      !anyEquals(selector.workloads, identity.workload_name) ||
      !anyEquals(selector.service_accounts, identity.service_account)) {
    return false;
  }
  for (const auto& [key, value] : selector.labels) {
    const std::string* actual = identity.label(key);
    if (actual == nullptr || *actual != value) return false;
  }
  return true;
}

}  // namespace tcpsteer
