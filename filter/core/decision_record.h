// The text that records a decision for Envoy's access log ("target=egress1 rule=github", with
// " dry-run" in dry-run): what both the wasm module and the dynamic module put in the filter state
// wasm.tcpsteer. Made once per configuration for every (rule, target) a decision can produce, so a
// connection gets a view instead of building a string.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "filter/core/config.h"
#include "filter/core/decision.h"

namespace tcpsteer {

class DecisionRecords {
 public:
  void build(const Config& config);
  // The text for a routed decision. A rule spreading per connection has no fixed target: its text
  // is made into `scratch`, which the view then points into.
  std::string_view of(const Config& config, const Decision& decision, std::string& scratch) const {
    if (decision.rule < 0) return default_[decision.target];
    std::string_view fixed = rule_[static_cast<size_t>(decision.rule)];
    if (!fixed.empty()) return fixed;
    scratch = text(config, decision.target, config.rules[static_cast<size_t>(decision.rule)].name);
    return scratch;
  }

  static std::string text(const Config& config, size_t target, std::string_view rule);

 private:
  std::string texts_;                      // every text below, one after another
  std::vector<std::string_view> default_;  // per target: no rule matched
  std::vector<std::string_view> rule_;     // per rule (empty: a spread per connection)
};

}  // namespace tcpsteer
