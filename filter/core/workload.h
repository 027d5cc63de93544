// The proxy's own identity, as Istio puts it in the node metadata (NAMESPACE, WORKLOAD_NAME,
// SERVICE_ACCOUNT, LABELS). Constant for a proxy: rules are tested against it once per
// configuration, never per connection.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "filter/core/rule.h"

namespace tcpsteer {

struct WorkloadIdentity {
  std::optional<std::string> namespace_name;                // node.metadata.NAMESPACE
  std::optional<std::string> workload_name;                 // node.metadata.WORKLOAD_NAME
  std::optional<std::string> service_account;               // node.metadata.SERVICE_ACCOUNT
  bool has_labels = false;                                  // node.metadata.LABELS exists
  std::vector<std::pair<std::string, std::string>> labels;  // those the rules ask about

  const std::string* label(std::string_view key) const;
};

// The selector's conditions hold for this proxy. A condition on metadata the proxy lacks does not
// hold (bindWorkload refuses such a configuration before asking).
bool selects(const WorkloadSelector& selector, const WorkloadIdentity& identity);

}  // namespace tcpsteer
