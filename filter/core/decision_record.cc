#include "filter/core/decision_record.h"

#include "filter/core/text.h"

namespace tcpsteer {

std::string DecisionRecords::text(const Config& config, size_t target, std::string_view rule) {
  return concat({"target=", config.targets[target].name, " rule=", rule,
                 config.mode == Mode::kDryRun ? " dry-run" : ""});
}

void DecisionRecords::build(const Config& config) {
  // All texts in one string, then views into it (a view costs a connection less than a
  // std::string's short/long test in the module).
  std::vector<size_t> ends;
  texts_.clear();
  for (size_t i = 0; i < config.targets.size(); ++i) {
    texts_ += text(config, i, "default");
    ends.push_back(texts_.size());
  }
  for (const Rule& rule : config.rules) {
    if (!rule.spreadsPerConnection()) texts_ += text(config, rule.target, rule.name);
    ends.push_back(texts_.size());
  }
  std::string_view all = texts_;
  default_.clear();
  rule_.clear();
  size_t start = 0;
  for (size_t i = 0; i < ends.size(); ++i) {
    (i < config.targets.size() ? default_ : rule_).push_back(all.substr(start, ends[i] - start));
    start = ends[i];
  }
}

}  // namespace tcpsteer
