#include "filter/core/config.h"

#include <algorithm>

#include "filter/core/json.h"
#include "filter/core/text.h"

namespace tcpsteer {
namespace {

constexpr size_t kMaxNameLength = 32;
constexpr std::string_view kPortPlaceholder = "{port}";

// Where an error is: "rules[2].target" is Field{"rules", 2, ".target"}. Built only on failure.
struct Field {
  std::string_view name;
  size_t index = SIZE_MAX;
  std::string_view suffix;

  Field(const char* field_name) : name(field_name) {}  // NOLINT(google-explicit-constructor)
  Field(std::string_view field_name, size_t item, std::string_view field_suffix = {})
      : name(field_name), index(item), suffix(field_suffix) {}

  std::string text() const {
    std::string out(name);
    if (index != SIZE_MAX) {
      out += '[';
      appendDecimal(out, index);
      out += ']';
    }
    out += suffix;
    return out;
  }
};

// One out-of-line constructor for every error path: call sites pass pointers, not string
// temporaries.
[[gnu::noinline]] ConfigResult failure(std::string_view field, std::string_view problem,
                                       std::string_view expected) {
  ConfigResult result;
  result.error = ConfigError{std::string(field), std::string(problem), std::string(expected)};
  return result;
}

// Insertion sort: the lists are short (ports), and std::sort would add kilobytes to the module.
template <typename T, typename Less>
void sortSmall(std::vector<T>& items, Less less) {
  for (size_t i = 1; i < items.size(); ++i) {
    T item = items[i];
    size_t j = i;
    for (; j > 0 && less(item, items[j - 1]); --j) items[j] = items[j - 1];
    items[j] = item;
  }
}

bool isNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

bool isValidName(std::string_view name) {
  return !name.empty() && name.size() <= kMaxNameLength &&
         std::all_of(name.begin(), name.end(), isNameChar);
}

// Envoy cluster names are free-form, but a template with spaces, braces other than "{port}" or
// control characters is certainly a mistake.
std::optional<ClusterTemplate> compileTemplate(std::string_view text, std::string* problem) {
  if (text.empty() || text.size() > kMaxClusterTemplate) {
    *problem = "cluster template must be 1 to 255 characters";
    return std::nullopt;
  }
  size_t placeholder = text.find(kPortPlaceholder);
  std::string_view prefix = text.substr(0, placeholder);
  std::string_view suffix = placeholder == std::string_view::npos
                                ? std::string_view()
                                : text.substr(placeholder + kPortPlaceholder.size());
  for (std::string_view part : {prefix, suffix}) {
    for (char c : part) {
      if (c <= ' ' || c > '~' || c == '{' || c == '}') {
        *problem = "cluster template must be printable ASCII, no spaces, '{port}' at most once";
        return std::nullopt;
      }
    }
  }
  ClusterTemplate compiled;
  compiled.prefix.assign(prefix);
  compiled.suffix.assign(suffix);
  compiled.has_port = placeholder != std::string_view::npos;
  return compiled;
}

// "outbound|{port}||egress1.default.svc.cluster.local" -> "egress1"; "egress2" -> "egress2".
std::string deriveTargetName(std::string_view text, size_t index) {
  size_t bar = text.rfind('|');
  std::string_view host = bar == std::string_view::npos ? text : text.substr(bar + 1);
  host = host.substr(0, host.find('.'));
  if (isValidName(host)) return std::string(host);
  std::string name = "target";
  appendDecimal(name, index);
  return name;
}

std::optional<uint16_t> portValue(const json::Value& value) {
  auto integer = value.asInteger();
  if (!integer || *integer < 1 || *integer > 65535) return std::nullopt;
  return static_cast<uint16_t>(*integer);
}

// Kubernetes object names (namespaces, workloads, service accounts): DNS subdomains.
bool isValidObjectName(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
  });
}

bool isLabelChar(char c) {
  return isNameChar(c) || c == '.';
}

// "app", "app.kubernetes.io/name": an optional DNS prefix and '/', then a name of at most 63.
bool isValidLabelKey(std::string_view key) {
  size_t slash = key.find('/');
  std::string_view name = slash == std::string_view::npos ? key : key.substr(slash + 1);
  if (slash != std::string_view::npos &&
      (slash == 0 || slash > 253 || !isValidObjectName(key.substr(0, slash)))) {
    return false;
  }
  return !name.empty() && name.size() <= 63 && std::all_of(name.begin(), name.end(), isLabelChar);
}

bool isValidLabelValue(std::string_view value) {
  return value.size() <= 63 && std::all_of(value.begin(), value.end(), isLabelChar);
}

// "api.example.com" or "*.example.com": labels of a-z 0-9 - (any case), no empty label.
std::optional<ServerNamePattern> serverNamePattern(std::string_view text) {
  ServerNamePattern pattern;
  if (text.size() > 2 && text[0] == '*' && text[1] == '.') {
    pattern.wildcard = true;
    text.remove_prefix(1);  // keeps the dot: ".example.com"
  }
  if (text.empty() || text.size() > 253) return std::nullopt;
  char previous = pattern.wildcard ? '.' : 0;
  for (size_t i = pattern.wildcard ? 1 : 0; i < text.size(); ++i) {
    char c = text[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    bool label_char = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    if (!label_char && (c != '.' || previous == '.' || previous == 0)) return std::nullopt;
    previous = c;
  }
  if (previous == '.') return std::nullopt;
  pattern.text.reserve(text.size());
  for (char c : text)
    pattern.text.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c);
  return pattern;
}

// "rules[3] (name)": how warnings and errors name a rule.
std::string ruleLabel(const Config& config, size_t index) {
  std::string label = "rules[";
  appendDecimal(label, index);
  label += "] (";
  label += config.rules[index].name;
  label += ')';
  return label;
}

// A rule that an earlier rule covers can never match: say so once, at configure time.
void findShadowedRules(Config& config) {
  for (size_t later = 1; later < config.rules.size(); ++later) {
    for (size_t earlier = 0; earlier < later; ++earlier) {
      if (config.rules[earlier].covers(config.rules[later])) {
        config.warnings.push_back(
            concat({ruleLabel(config, later), " can never match: ", ruleLabel(config, earlier),
                    " matches every connection it would"}));
        break;
      }
    }
  }
}

bool spreadsByWorkload(const Rule& rule) {
  return rule.spread_key == SpreadKey::kWorkload || rule.spread_key == SpreadKey::kNamespace;
}

// The rules this proxy tries per connection, and what they need read. Without an identity (not
// bound yet) only the rules that do not depend on one.
void activate(Config& config, const WorkloadIdentity* identity) {
  config.active_rules.clear();
  config.probes.clear();
  config.needs_workload = false;
  config.needs_destination_port = !config.match_ports.empty() ||
                                  std::any_of(config.targets.begin(), config.targets.end(),
                                              [](const Target& t) { return t.cluster.has_port; });
  config.needs_destination_address = false;
  config.needs_server_name = false;
  for (size_t i = 0; i < config.rules.size(); ++i) {
    Rule& rule = config.rules[i];
    bool depends = !rule.workload.empty() || spreadsByWorkload(rule);
    config.needs_workload = config.needs_workload || depends;
    if (identity == nullptr ? depends : !selects(rule.workload, *identity)) continue;
    if (identity != nullptr && spreadsByWorkload(rule)) {
      std::string key = identity->namespace_name.value_or("");
      if (rule.spread_key == SpreadKey::kWorkload)
        key += '/' + identity->workload_name.value_or("");
      rule.target = rule.spread[rendezvousPick(rule.spread, key)].target;
    }
    config.active_rules.push_back(static_cast<uint16_t>(i));
    config.probes.push_back(RuleProbe::of(rule, static_cast<uint16_t>(i)));
    config.needs_destination_port = config.needs_destination_port || !rule.ports.empty();
    config.needs_destination_address =
        config.needs_destination_address || rule.needsDestinationAddress();
    config.needs_server_name = config.needs_server_name || rule.needsServerName();
  }
}

constexpr const char* kDocumentExpected =
    "\"istio\", \"standalone\" or a JSON object such as {\"targets\": [\"egress1\", \"egress2\"]}";
constexpr const char* kPortExpected = "an integer port from 1 to 65535, e.g. 443";

class ConfigReader {
 public:
  ConfigResult read(const json::Value& root) {
    Config config;
    ConfigResult result;
    if (readDocument(root, config)) {
      findShadowedRules(config);
      activate(config, nullptr);
      result.config.emplace(std::move(config));
    } else {
      result.error = std::move(error_);
    }
    return result;
  }

 private:
  static constexpr std::string_view kIstioTargets =
      R"(["outbound|{port}||egress1.default.svc.cluster.local","outbound|{port}||egress2.default.svc.cluster.local"])";
  static constexpr std::string_view kStandaloneTargets = R"(["egress1","egress2"])";

  // Every error path sets error_ through here and returns false: one out-of-line call per site.
  [[gnu::noinline]] bool fail(const Field& field, std::string_view problem,
                              std::string_view expected) {
    error_ = ConfigError{field.text(), std::string(problem), std::string(expected)};
    return false;
  }

  bool readDocument(const json::Value& root, Config& config) {
    if (root.type == json::Value::Type::kString) return applyPreset(root.text, "", config);
    if (root.type != json::Value::Type::kObject) {
      return fail("", "configuration must be a JSON object or a preset name", kDocumentExpected);
    }
    // One pass names every member (the parser has refused duplicate keys): no lookup per field.
    enum Key : uint8_t {
      kPreset,
      kTargets,
      kRules,
      kPortMap,
      kMatchPorts,
      kMode,
      kOnUnroutable,
      kLogLevel,
      kKeyCount
    };
    static constexpr std::string_view kKnown[kKeyCount] = {"preset",        "targets",     "rules",
                                                           "port_map",      "match_ports", "mode",
                                                           "on_unroutable", "log_level"};
    const json::Value* fields[kKeyCount] = {};
    for (const json::Member& member : root.members) {
      size_t key = 0;
      while (key < kKeyCount && kKnown[key] != member.key) ++key;
      if (key == kKeyCount) {
        return fail(
            Field(member.key, SIZE_MAX), "unknown field",
            "one of preset, targets, rules, port_map, match_ports, mode, on_unroutable, log_level");
      }
      fields[key] = &member.value;
    }
    const json::Value* preset = fields[kPreset];
    const json::Value* targets = fields[kTargets];
    if (preset != nullptr && targets != nullptr) {
      return fail("preset", "preset and targets are both set",
                  "either \"preset\" or \"targets\", not both");
    }
    if (preset != nullptr && preset->type != json::Value::Type::kString) {
      return fail("preset", "must be a string", "\"istio\" or \"standalone\"");
    }
    if (!applyPreset(preset != nullptr ? std::string_view(preset->text) : "istio", "preset",
                     config)) {
      return false;
    }
    if (targets != nullptr) {
      if (!readTargets(*targets, config)) return false;
    }
    if (const json::Value* rules = fields[kRules]) {
      config.configured_targets = config.targets.size();
      if (!readRules(*rules, config)) return false;
    }
    if (const json::Value* port_map = fields[kPortMap]) {
      if (!readPortMap(*port_map, config)) return false;
    }
    if (const json::Value* match_ports = fields[kMatchPorts]) {
      if (!readMatchPorts(*match_ports, config)) return false;
    }
    if (const json::Value* mode = fields[kMode]) {
      auto index = readEnum(*mode, {"route", "dry-run"});
      if (!index) return fail("mode", "unknown mode", "\"route\" or \"dry-run\"");
      config.mode = static_cast<Mode>(*index);
    }
    if (const json::Value* on_unroutable = fields[kOnUnroutable]) {
      auto index = readEnum(*on_unroutable, {"passthrough", "close"});
      if (!index) return fail("on_unroutable", "unknown policy", "\"passthrough\" or \"close\"");
      config.on_unroutable = static_cast<OnUnroutable>(*index);
    }
    if (const json::Value* log_level = fields[kLogLevel]) {
      auto index = readEnum(*log_level, {"trace", "debug", "info", "warn", "error", "critical"});
      if (!index) {
        return fail("log_level", "unknown log level",
                    "one of trace, debug, info, warn, error, critical");
      }
      config.log_level = static_cast<LogLevel>(*index);
    }
    return true;
  }

  // Presets are target lists in JSON, read by the same code as user targets.
  bool applyPreset(std::string_view name, const char* field, Config& config) {
    std::string_view targets;
    if (name == "istio") {
      targets = kIstioTargets;
    } else if (name == "standalone") {
      targets = kStandaloneTargets;
    } else {
      return fail(field, "unknown preset", "\"istio\" (Istio cluster names) or \"standalone\"");
    }
    auto document = json::parse(targets, nullptr);
    return document && readTargets(*document, config);
  }

  static std::optional<size_t> readEnum(const json::Value& value,
                                        std::initializer_list<std::string_view> names) {
    if (value.type != json::Value::Type::kString) return std::nullopt;
    size_t index = 0;
    for (std::string_view name : names) {
      if (value.text == name) return index;
      ++index;
    }
    return std::nullopt;
  }

  bool readTargets(const json::Value& value, Config& config) {
    constexpr const char* kExpected =
        "[\"outbound|{port}||egress1.default.svc.cluster.local\", {\"name\": \"e2\", \"cluster\": "
        "\"egress2\"}]";
    if (value.type != json::Value::Type::kArray || value.items.empty() ||
        value.items.size() > kMaxTargets) {
      return fail("targets", "must be an array of 1 to 64 targets", kExpected);
    }
    config.targets.clear();
    config.configured_targets = value.items.size();
    for (size_t i = 0; i < value.items.size(); ++i) {
      const json::Value& item = value.items[i];
      Field field("targets", i);
      Target target;
      std::string_view template_text;  // a view: no string copy code in the module
      if (item.type == json::Value::Type::kString) {
        template_text = item.text;
        target.name = deriveTargetName(item.text, i);
      } else if (item.type == json::Value::Type::kObject) {
        const json::Value* name = item.find("name");
        const json::Value* cluster = item.find("cluster");
        if (name == nullptr || cluster == nullptr || item.members.size() != 2 ||
            name->type != json::Value::Type::kString ||
            cluster->type != json::Value::Type::kString) {
          return fail(field, "a target object takes string fields name and cluster only",
                      "{\"name\": \"egress1\", \"cluster\": "
                      "\"outbound|{port}||egress1.default.svc.cluster.local\"}");
        }
        if (!isValidName(name->text)) {
          return fail(Field("targets", i, ".name"), "invalid target name",
                      "1 to 32 characters of A-Z a-z 0-9 _ -");
        }
        target.name.assign(name->text);
        template_text = cluster->text;
        field.suffix = ".cluster";
      } else {
        return fail(field, "must be a string or an object", kExpected);
      }
      std::string problem;
      auto compiled = compileTemplate(template_text, &problem);
      if (!compiled)
        return fail(field, problem, "e.g. \"outbound|{port}||egress1.default.svc.cluster.local\"");
      target.cluster = std::move(*compiled);
      for (const Target& existing : config.targets) {
        if (existing.name == target.name) {
          return fail(Field("targets", i, ".name"), "two targets have the same name",
                      "distinct names (object form: {\"name\": ..., \"cluster\": ...})");
        }
      }
      config.targets.push_back(std::move(target));
    }
    return true;
  }

  // A configured target (not a fallback list's aggregate), by name or index.
  static std::optional<size_t> resolveTarget(const json::Value& value, const Config& config) {
    if (value.type == json::Value::Type::kString) {
      for (size_t i = 0; i < config.configured_targets; ++i) {
        if (config.targets[i].name == value.text) return i;
      }
      return std::nullopt;
    }
    auto index = value.asInteger();
    if (!index || *index < 0 || static_cast<size_t>(*index) >= config.configured_targets)
      return std::nullopt;
    return static_cast<size_t>(*index);
  }

  static constexpr const char* kRuleExpected =
      "{\"name\": \"billing\", \"namespace\": \"billing\", \"sni\": \"*.example.com\", "
      "\"target\": \"egress1\"} (filter/README.md lists every field)";

  bool readRules(const json::Value& value, Config& config) {
    if (value.type != json::Value::Type::kArray || value.items.size() > kMaxRules) {
      return fail("rules", "must be an array of at most 256 rules", kRuleExpected);
    }
    for (size_t i = 0; i < value.items.size(); ++i) {
      Rule rule;
      if (!readRule(value.items[i], i, config, rule)) return false;
      for (const Rule& earlier : config.rules) {
        if (earlier.name == rule.name) {
          return fail(Field("rules", i, ".name"), "two rules have the same name",
                      "distinct rule names");
        }
      }
      config.rules.push_back(std::move(rule));
    }
    return true;
  }

  // One rule: every member is a condition, the name, or where it goes.
  bool readRule(const json::Value& item, size_t i, Config& config, Rule& rule) {
    if (item.type != json::Value::Type::kObject)
      return fail(Field("rules", i), "a rule must be an object", kRuleExpected);
    enum Key : uint8_t {
      kName,
      kNamespace,
      kWorkload,
      kServiceAccount,
      kLabels,
      kSourceCidr,
      kLastOctet,
      kDestinationCidr,
      kDestinationExcept,
      kPorts,
      kSni,
      kTarget,
      kSpread,
      kKeyCount
    };
    static constexpr std::string_view kKnown[kKeyCount] = {"name",
                                                           "namespace",
                                                           "workload",
                                                           "service_account",
                                                           "labels",
                                                           "source_cidr",
                                                           "last_octet",
                                                           "destination_cidr",
                                                           "destination_except",
                                                           "ports",
                                                           "sni",
                                                           "target",
                                                           "spread"};
    const json::Value* fields[kKeyCount] = {};
    for (const json::Member& member : item.members) {
      size_t key = 0;
      while (key < kKeyCount && kKnown[key] != member.key) ++key;
      if (key == kKeyCount) {
        return fail(Field("rules", i, "."), concat({"unknown field '", member.key, "'"}),
                    "name, namespace, workload, service_account, labels, source_cidr, last_octet, "
                    "destination_cidr, destination_except, ports, sni, and target or spread");
      }
      fields[key] = &member.value;
    }
    rule.name = "rule";
    appendDecimal(rule.name, i);
    if (const json::Value* name = fields[kName]) {
      if (name->type != json::Value::Type::kString || !isValidName(name->text) ||
          name->text == "default") {
        return fail(Field("rules", i, ".name"), "invalid rule name",
                    "1 to 32 characters of A-Z a-z 0-9 _ - (not \"default\")");
      }
      rule.name = name->text;
    }
    if (!readNames(fields[kNamespace], Field("rules", i, ".namespace"), isValidObjectName,
                   rule.workload.namespaces) ||
        !readNames(fields[kWorkload], Field("rules", i, ".workload"), isValidObjectName,
                   rule.workload.workloads) ||
        !readNames(fields[kServiceAccount], Field("rules", i, ".service_account"),
                   isValidObjectName, rule.workload.service_accounts) ||
        !readLabels(fields[kLabels], Field("rules", i, ".labels"), rule.workload.labels) ||
        !readPrefixes(fields[kSourceCidr], Field("rules", i, ".source_cidr"), rule.source_cidrs) ||
        !readPrefixes(fields[kDestinationCidr], Field("rules", i, ".destination_cidr"),
                      rule.destination_cidrs) ||
        !readPrefixes(fields[kDestinationExcept], Field("rules", i, ".destination_except"),
                      rule.destination_except) ||
        !readPorts(fields[kPorts], Field("rules", i, ".ports"), rule.ports) ||
        !readServerNames(fields[kSni], Field("rules", i, ".sni"), rule.server_names)) {
      return false;
    }
    if (const json::Value* octet = fields[kLastOctet]) {
      std::optional<int64_t> low;
      std::optional<int64_t> high;
      if (octet->type == json::Value::Type::kArray && octet->items.size() == 2) {
        low = octet->items[0].asInteger();
        high = octet->items[1].asInteger();
      } else {
        low = high = octet->asInteger();
      }
      if (!low || !high || *low < 0 || *high > 255 || *low > *high) {
        return fail(Field("rules", i, ".last_octet"), "not a last-octet range",
                    "[min, max] within 0-255, or one integer");
      }
      rule.has_last_octet = true;
      rule.octet_min = static_cast<uint8_t>(*low);
      rule.octet_max = static_cast<uint8_t>(*high);
    }
    const json::Value* target = fields[kTarget];
    const json::Value* spread = fields[kSpread];
    if ((target == nullptr) == (spread == nullptr)) {
      return fail(Field("rules", i), "a rule takes exactly one of target and spread",
                  kRuleExpected);
    }
    if (target != nullptr)
      return readRuleTarget(*target, Field("rules", i, ".target"), config, rule);
    return readSpread(*spread, Field("rules", i, ".spread"), config, rule);
  }

  // "egress1", 0, or a fallback list ["egress1", "egress2"].
  bool readRuleTarget(const json::Value& value, const Field& field, Config& config, Rule& rule) {
    if (value.type != json::Value::Type::kArray) {
      auto index = resolveTarget(value, config);
      if (!index)
        return fail(field, "names no configured target", "a target name or its 0-based index");
      rule.target = *index;
      return true;
    }
    if (value.items.size() < 2 || value.items.size() > kMaxFallbackTargets) {
      return fail(field, "a fallback list takes 2 to 8 targets", "[\"egress1\", \"egress2\"]");
    }
    std::vector<size_t> members;
    for (const json::Value& item : value.items) {
      auto index = resolveTarget(item, config);
      if (!index || !config.targets[*index].members.empty()) {
        return fail(field, "a fallback list entry names no configured target",
                    "names or indices of targets, e.g. [\"egress1\", \"egress2\"]");
      }
      if (std::find(members.begin(), members.end(), *index) != members.end())
        return fail(field, "a target is twice in the fallback list", "each target once");
      members.push_back(*index);
    }
    auto index = fallbackTarget(members, config);
    if (!index) {
      return fail(field, "too many targets with fallback lists",
                  "at most 64 targets, fallback lists included");
    }
    rule.target = *index;
    return true;
  }

  // The target a fallback list routes to: the aggregate cluster "tcpsteer-failover|{port}|a+b"
  // (without "{port}|" when no member's cluster has one). One per distinct list.
  static std::optional<size_t> fallbackTarget(const std::vector<size_t>& members, Config& config) {
    for (size_t i = 0; i < config.targets.size(); ++i) {
      if (config.targets[i].members == members) return i;
    }
    if (config.targets.size() >= kMaxTargets) return std::nullopt;
    Target target;
    bool has_port = false;
    for (size_t member : members) {
      if (!target.name.empty()) target.name += '+';
      target.name += config.targets[member].name;
      has_port = has_port || config.targets[member].cluster.has_port;
    }
    target.cluster.prefix = has_port ? "tcpsteer-failover|" : "tcpsteer-failover|" + target.name;
    if (has_port) target.cluster.suffix = "|" + target.name;
    target.cluster.has_port = has_port;
    target.members = members;
    config.targets.push_back(std::move(target));
    return config.targets.size() - 1;
  }

  // {"by": "source_ip" | "workload" | "namespace", "targets": {"egress1": 1, "egress2": 3}}; the
  // targets may also be a list of names (weight 1 each).
  bool readSpread(const json::Value& value, const Field& field, Config& config, Rule& rule) {
    constexpr const char* kExpected =
        "{\"by\": \"workload\", \"targets\": {\"egress1\": 1, \"egress2\": 3}} (by source_ip, "
        "workload or namespace; weights 1 to 10000)";
    const json::Value* by = value.type == json::Value::Type::kObject ? value.find("by") : nullptr;
    const json::Value* targets =
        value.type == json::Value::Type::kObject ? value.find("targets") : nullptr;
    if (by == nullptr || targets == nullptr || value.members.size() != 2)
      return fail(field, "a spread takes by and targets", kExpected);
    auto key = readEnum(*by, {"source_ip", "workload", "namespace"});
    if (!key) return fail(field, "unknown spread key", kExpected);
    rule.spread_key = static_cast<SpreadKey>(*key + 1);
    auto add = [&](const json::Value& name, const json::Value* weight) {
      auto index = resolveTarget(name, config);
      if (!index || !config.targets[*index].members.empty()) return false;
      WeightedTarget entry;
      entry.target = *index;
      if (weight != nullptr) {
        auto number = weight->asInteger();
        if (!number || *number < 1 || *number > kMaxWeight) return false;
        entry.weight = static_cast<uint32_t>(*number);
      }
      entry.name_hash = hashText(config.targets[*index].name);
      for (const WeightedTarget& existing : rule.spread) {
        if (existing.target == entry.target) return false;
      }
      rule.spread.push_back(entry);
      return true;
    };
    if (targets->type == json::Value::Type::kObject) {
      for (const json::Member& member : targets->members) {
        json::Value name;
        name.type = json::Value::Type::kString;
        name.text = member.key;
        if (rule.spread.size() >= kMaxSpreadTargets || !add(name, &member.value))
          return fail(field, "a spread target is unknown, repeated or badly weighted", kExpected);
      }
    } else if (targets->type == json::Value::Type::kArray) {
      for (const json::Value& name : targets->items) {
        if (rule.spread.size() >= kMaxSpreadTargets || !add(name, nullptr))
          return fail(field, "a spread target is unknown or repeated", kExpected);
      }
    }
    if (rule.spread.size() < 2) return fail(field, "a spread takes 2 to 16 targets", kExpected);
    rule.target = rule.spread[0].target;
    return true;
  }

  // The form of every list condition: one item, or an array of 1..64 items, each accepted by
  // `one` (which also stores it).
  template <typename One>
  static bool oneOrList(const json::Value& value, One one) {
    if (value.type != json::Value::Type::kArray) return one(value);
    if (value.items.empty() || value.items.size() > kMaxConditionItems) return false;
    for (const json::Value& item : value.items) {
      if (!one(item)) return false;
    }
    return true;
  }

  // A string or an array of 1..64 strings, each accepted by `valid`.
  bool readNames(const json::Value* value, const Field& field, bool (*valid)(std::string_view),
                 std::vector<std::string>& out) {
    if (value == nullptr) return true;
    auto one = [&](const json::Value& item) {
      if (item.type != json::Value::Type::kString || !valid(item.text)) return false;
      out.push_back(item.text);
      return true;
    };
    if (!oneOrList(*value, one)) {
      return fail(
          field, "not a Kubernetes name or a list of 1 to 64 of them",
          "lowercase a-z 0-9 - . (at most 253), e.g. \"billing\" or [\"billing\", \"shop\"]");
    }
    return true;
  }

  bool readLabels(const json::Value* value, const Field& field,
                  std::vector<std::pair<std::string, std::string>>& out) {
    if (value == nullptr) return true;
    bool ok = value->type == json::Value::Type::kObject && !value->members.empty() &&
              value->members.size() <= kMaxConditionItems;
    if (ok) {
      for (const json::Member& member : value->members) {
        ok = ok && isValidLabelKey(member.key) && member.value.type == json::Value::Type::kString &&
             isValidLabelValue(member.value.text);
        if (ok) out.emplace_back(member.key, member.value.text);
      }
    }
    if (!ok) {
      return fail(field, "not a label selector",
                  "an object of 1 to 64 Kubernetes labels, e.g. {\"app\": \"billing\"}");
    }
    return true;
  }

  bool readPrefixes(const json::Value* value, const Field& field, std::vector<IpPrefix>& out) {
    if (value == nullptr) return true;
    auto one = [&](const json::Value& item) {
      auto prefix = item.type == json::Value::Type::kString ? parsePrefix(item.text) : std::nullopt;
      if (prefix) out.push_back(*prefix);
      return prefix.has_value();
    };
    if (!oneOrList(*value, one)) {
      // The words of the single-CIDR rules that came first (docs and logs quote them); a list
      // of 1 to 64 prefixes is accepted too.
      return fail(field, "not a valid CIDR (host bits must be zero)",
                  "an IPv4 or IPv6 prefix such as \"10.244.0.0/16\" or \"fd00::/8\"");
    }
    return true;
  }

  // 443, "8000-8099", or a list of those.
  bool readPorts(const json::Value* value, const Field& field, std::vector<PortRange>& out) {
    if (value == nullptr) return true;
    auto one = [&](const json::Value& item) {
      std::optional<uint16_t> low;
      std::optional<uint16_t> high;
      if (item.type == json::Value::Type::kString) {
        std::string_view text = item.text;
        size_t dash = text.find('-');
        low = parsePort(text.substr(0, dash));
        high = dash == std::string_view::npos ? low : parsePort(text.substr(dash + 1));
      } else {
        low = high = portValue(item);
      }
      if (!low || !high || *low == 0 || *low > *high) return false;
      out.push_back(PortRange{*low, *high});
      return true;
    };
    if (!oneOrList(*value, one)) {
      return fail(field, "not a port, a port range or a list of them",
                  "443, \"8000-8099\", or a list such as [443, \"8000-8099\"] (ports 1-65535)");
    }
    return true;
  }

  bool readServerNames(const json::Value* value, const Field& field,
                       std::vector<ServerNamePattern>& out) {
    if (value == nullptr) return true;
    auto one = [&](const json::Value& item) {
      if (item.type != json::Value::Type::kString) return false;
      auto pattern = serverNamePattern(item.text);
      if (pattern) out.push_back(std::move(*pattern));
      return pattern.has_value();
    };
    if (!oneOrList(*value, one)) {
      return fail(
          field, "not a server name or a list of 1 to 64 of them",
          "a DNS name such as \"api.example.com\" or \"*.example.com\" (any name below it)");
    }
    return true;
  }

  bool readPortMap(const json::Value& value, Config& config) {
    if (value.type != json::Value::Type::kObject) {
      return fail("port_map", "must be an object", "{\"443\": 8080, \"80\": 8081}");
    }
    for (const json::Member& member : value.members) {
      auto from = parsePort(member.key);
      if (!from || *from == 0) {
        return fail(Field("port_map.", SIZE_MAX, member.key), "key is not a port",
                    "keys are ports in quotes, e.g. \"443\"");
      }
      auto to = portValue(member.value);
      if (!to)
        return fail(Field("port_map.", SIZE_MAX, member.key), "value is not a port", kPortExpected);
      config.port_map.push_back(PortMapping{*from, *to});
    }
    sortSmall(config.port_map,
              [](const PortMapping& a, const PortMapping& b) { return a.from < b.from; });
    for (size_t i = 1; i < config.port_map.size(); ++i) {
      if (config.port_map[i].from == config.port_map[i - 1].from) {
        return fail("port_map", "a port is mapped twice", "each port once (\"0443\" is \"443\")");
      }
    }
    return true;
  }

  bool readMatchPorts(const json::Value& value, Config& config) {
    if (value.type != json::Value::Type::kArray || value.items.empty()) {
      return fail("match_ports", "must be a non-empty array of ports", "[443, 8080]");
    }
    for (size_t i = 0; i < value.items.size(); ++i) {
      auto port = portValue(value.items[i]);
      if (!port) return fail(Field("match_ports", i), "not a port", kPortExpected);
      config.match_ports.push_back(*port);
    }
    sortSmall(config.match_ports, [](uint16_t a, uint16_t b) { return a < b; });
    config.match_ports.erase(std::unique(config.match_ports.begin(), config.match_ports.end()),
                             config.match_ports.end());
    return true;
  }

  ConfigError error_;
};

}  // namespace

Target::Target() = default;
Target::~Target() = default;
Target::Target(Target&&) noexcept = default;
Target::Target(const Target&) = default;
Target& Target::operator=(Target&&) noexcept = default;
Target& Target::operator=(const Target&) = default;
Config::Config() = default;
Config::~Config() = default;
Config::Config(Config&&) noexcept = default;
Config& Config::operator=(Config&&) noexcept = default;
Config::Config(const Config&) = default;
Config& Config::operator=(const Config&) = default;
ConfigResult::ConfigResult() = default;
ConfigResult::~ConfigResult() = default;
ConfigResult::ConfigResult(ConfigResult&&) noexcept = default;
ConfigResult& ConfigResult::operator=(ConfigResult&&) noexcept = default;

void ClusterTemplate::renderInto(uint16_t port, ClusterName& out) const {
  out.append(prefix);
  if (has_port) {
    out.appendDecimal(port);
    out.append(suffix);
  }
}

std::string ClusterTemplate::render(uint16_t port) const {
  ClusterName name;
  renderInto(port, name);
  return std::string(name.view());
}

std::string ClusterTemplate::text() const {
  return has_port ? prefix + std::string(kPortPlaceholder) + suffix : prefix;
}

uint16_t Config::mapPort(uint16_t destination_port) const {
  // A few mappings (the usual map) are scanned: cheaper per connection than a binary search.
  if (port_map.size() <= 4) {
    for (const PortMapping& mapping : port_map) {
      if (mapping.from == destination_port) return mapping.to;
    }
    return destination_port;
  }
  auto it = std::lower_bound(port_map.begin(), port_map.end(), destination_port,
                             [](const PortMapping& m, uint16_t port) { return m.from < port; });
  return it != port_map.end() && it->from == destination_port ? it->to : destination_port;
}

bool Config::matchesPort(uint16_t destination_port) const {
  return match_ports.empty() ||
         std::binary_search(match_ports.begin(), match_ports.end(), destination_port);
}

std::string ConfigError::message() const {
  return concat({"invalid configuration", field.empty() ? "" : " at '", field,
                 field.empty() ? "" : "'", ": ", problem, "; expected ", expected});
}

// The preset texts are constants that always parse (the unit tests prove it).
Config istioPreset() {
  return std::move(*parseConfig("istio").config);  // NOLINT(bugprone-unchecked-optional-access)
}

Config standalonePreset() {
  return std::move(
      *parseConfig("standalone").config);  // NOLINT(bugprone-unchecked-optional-access)
}

ConfigResult parseConfig(std::string_view bytes) {
  if (bytes.size() > kMaxConfigBytes) {
    return failure("", "configuration is larger than 64 KiB",
                   "a JSON object of at most 65536 bytes");
  }
  // Plain words, as the seed's EnvoyFilter passes them (a StringValue without JSON quoting).
  size_t first = bytes.find_first_not_of(" \t\r\n");
  std::string_view trimmed =
      first == std::string_view::npos
          ? std::string_view()
          : bytes.substr(first, bytes.find_last_not_of(" \t\r\n") - first + 1);
  if (trimmed.empty() || trimmed == "istio" || trimmed == "standalone") {
    json::Value word;
    word.type = json::Value::Type::kString;
    word.text.assign(trimmed.empty() ? std::string_view("istio") : trimmed);  // none: the default
    return ConfigReader().read(word);
  }
  json::ParseError parse_error;
  auto document = json::parse(bytes, &parse_error);
  if (!document) {
    std::string problem =
        (parse_error.limit ? "beyond the configuration reader's limits: " : "not valid JSON: ") +
        parse_error.message + " at byte ";
    appendDecimal(problem, parse_error.offset);
    return failure(
        "", problem,
        parse_error.limit ? "a document within the limits of filter/README.md" : kDocumentExpected);
  }
  return ConfigReader().read(*document);
}

const char* logLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kTrace:
      return "trace";
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
    case LogLevel::kCritical:
      return "critical";
  }
  return "info";
}

std::optional<ConfigError> bindWorkload(Config& config, const WorkloadIdentity& identity) {
  constexpr const char* kExpected =
      "a proxy with Istio's node metadata (a sidecar or gateway), or no workload conditions";
  for (size_t i = 0; i < config.rules.size(); ++i) {
    const Rule& rule = config.rules[i];
    auto missing = [&](const char* field, const char* key) {
      std::string where = "rules[";
      appendDecimal(where, i);
      where += "].";
      where += field;
      return ConfigError{where, concat({"this proxy has no node.metadata.", key}), kExpected};
    };
    bool by_namespace = spreadsByWorkload(rule);
    if ((!rule.workload.namespaces.empty() || by_namespace) && !identity.namespace_name)
      return missing(by_namespace ? "spread" : "namespace", "NAMESPACE");
    if ((!rule.workload.workloads.empty() || rule.spread_key == SpreadKey::kWorkload) &&
        !identity.workload_name) {
      return missing(rule.workload.workloads.empty() ? "spread" : "workload", "WORKLOAD_NAME");
    }
    if (!rule.workload.service_accounts.empty() && !identity.service_account)
      return missing("service_account", "SERVICE_ACCOUNT");
    if (!rule.workload.labels.empty() && !identity.has_labels) return missing("labels", "LABELS");
  }
  activate(config, &identity);
  return std::nullopt;
}

std::vector<std::string> labelKeys(const Config& config) {
  std::vector<std::string> keys;
  for (const Rule& rule : config.rules) {
    for (const auto& label : rule.workload.labels) {
      if (std::find(keys.begin(), keys.end(), label.first) == keys.end())
        keys.push_back(label.first);
    }
  }
  return keys;
}

}  // namespace tcpsteer
