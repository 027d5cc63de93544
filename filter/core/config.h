// The filter's configuration: parsed once per onConfigure from the plugin configuration bytes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "filter/core/address.h"
#include "filter/core/rule.h"
#include "filter/core/text.h"
#include "filter/core/workload.h"

namespace tcpsteer {

// Longest template, and longest rendered name ("{port}" becomes at most five digits).
inline constexpr size_t kMaxClusterTemplate = 255;
inline constexpr size_t kMaxClusterName = kMaxClusterTemplate;
using ClusterName = FixedText<kMaxClusterName>;

// A cluster-name template, split once at its "{port}" placeholder so rendering is two copies.
struct ClusterTemplate {
  std::string prefix;
  std::string suffix;
  bool has_port = false;

  void renderInto(uint16_t port, ClusterName& out) const;
  std::string render(uint16_t port) const;
  std::string text() const;  // the template as written
};

struct Target {
  Target();
  ~Target();
  Target(Target&&) noexcept;
  Target(const Target&);
  Target& operator=(Target&&) noexcept;
  Target& operator=(const Target&);

  std::string name;  // used in logs and metric names
  ClusterTemplate cluster;
  // A fallback list ("target": ["egress1", "egress2"] in a rule): the members, in order. The
  // cluster is then the aggregate cluster that fails over between the members' clusters.
  std::vector<size_t> members;
};

enum class Mode : uint8_t { kRoute, kDryRun };
enum class OnUnroutable : uint8_t { kPassthrough, kClose };

// proxy-wasm log levels (trace 0 .. critical 5).
enum class LogLevel : uint8_t { kTrace = 0, kDebug, kInfo, kWarn, kError, kCritical };

struct PortMapping {
  uint16_t from;
  uint16_t to;
};

struct Config {
  // Out-of-line special members keep the many early-return paths of the parser from each inlining a
  // full destructor (the wasm module's size budget is tight).
  Config();
  ~Config();
  Config(Config&&) noexcept;
  Config& operator=(Config&&) noexcept;
  Config(const Config&);
  Config& operator=(const Config&);

  std::vector<Target> targets;
  // The targets of the configuration (or preset), first in `targets`; the aggregates of fallback
  // lists follow them. The last octet picks among these only.
  size_t configured_targets = 0;
  std::vector<Rule> rules;
  // The rules that can match this proxy (their workload conditions hold), in order: the only ones
  // tried per connection. parseConfig leaves the rules without workload conditions; bindWorkload
  // sets it for a proxy's identity.
  std::vector<uint16_t> active_rules;
  std::vector<RuleProbe> probes;  // the active rules as the per-connection scan reads them
  // Rules that can never match (an earlier rule matches every connection they would): one line
  // each, logged at configure time.
  std::vector<std::string> warnings;
  std::vector<PortMapping> port_map;  // sorted by `from`, unique
  std::vector<uint16_t> match_ports;  // sorted, unique; empty = every port
  Mode mode = Mode::kRoute;
  OnUnroutable on_unroutable = OnUnroutable::kPassthrough;
  LogLevel log_level = LogLevel::kInfo;  // level of the per-connection decision lines

  // Derived from the active rules and the targets (parseConfig, bindWorkload): what a connection
  // must be asked for. Kept rather than computed, as every connection asks.
  bool needs_destination_port = false;     // match_ports, "{port}" or a ports condition
  bool needs_destination_address = false;  // destination_cidr / destination_except
  bool needs_server_name = false;          // sni
  // Some rule has workload conditions or spreads by workload or namespace: bindWorkload needs the
  // proxy's identity.
  bool needs_workload = false;

  uint16_t mapPort(uint16_t destination_port) const;
  bool matchesPort(uint16_t destination_port) const;
  bool needsDestinationPort() const { return needs_destination_port; }
};

struct ConfigError {
  std::string field;     // "targets[1]", "rules[0].source_cidr", "" for the document itself
  std::string problem;   // what is wrong
  std::string expected;  // the accepted form, with an example

  std::string message() const;  // one line naming all three
};

struct ConfigResult {
  ConfigResult();
  ~ConfigResult();
  ConfigResult(ConfigResult&&) noexcept;
  ConfigResult& operator=(ConfigResult&&) noexcept;

  std::optional<Config> config;
  ConfigError error;  // meaningful when !config
};

inline constexpr size_t kMaxTargets = 64;  // fallback lists included
inline constexpr size_t kMaxRules = 256;

// Longest configuration we accept; Envoy passes at most the ConfigMap-sized JSON.
inline constexpr size_t kMaxConfigBytes = size_t{64} * 1024;

// Accepts: empty or "istio" (the seed's Istio cluster names), "standalone" (clusters
// egress1/egress2), either word as a JSON string, or a JSON object (schema in filter/README.md).
ConfigResult parseConfig(std::string_view bytes);

// Binds a parsed configuration to the proxy it runs in: keeps the rules whose workload conditions
// hold, resolves spreads by workload or namespace. Refuses (as an invalid configuration) a rule
// that asks about metadata this proxy does not have. Returns the error, or nothing.
std::optional<ConfigError> bindWorkload(Config& config, const WorkloadIdentity& identity);

// The label keys the rules test: what a host reads from node.metadata.LABELS.
std::vector<std::string> labelKeys(const Config& config);

// The built-in presets; "istio" is the seed's behaviour.
Config istioPreset();
Config standalonePreset();

const char* logLevelName(LogLevel level);

}  // namespace tcpsteer
