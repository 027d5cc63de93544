// A routing rule: the conditions a connection must meet (all that are given) and where it goes.
// Workload conditions are constant for a proxy and are evaluated once per configuration
// (workload.h); the others are read per connection.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "filter/core/address.h"

namespace tcpsteer {

struct PortRange {
  uint16_t low = 0;  // inclusive
  uint16_t high = 0;
};

// An SNI condition: "api.example.com" exactly, or "*.example.com" for any name below example.com
// (not example.com itself). Stored lowercase, the wildcard as its suffix ".example.com".
struct ServerNamePattern {
  std::string text;
  bool wildcard = false;

  bool matches(std::string_view server_name) const;   // server_name as the client sent it
  bool covers(const ServerNamePattern& other) const;  // every name other matches, this matches
  std::string display() const;                        // as written, lowercase
};

// Who the proxy is (Istio node metadata); a rule's workload conditions test it once per
// configuration.
struct WorkloadSelector {
  std::vector<std::string> namespaces;  // any of (empty = no condition)
  std::vector<std::string> workloads;
  std::vector<std::string> service_accounts;
  std::vector<std::pair<std::string, std::string>> labels;  // all of

  bool empty() const {
    return namespaces.empty() && workloads.empty() && service_accounts.empty() && labels.empty();
  }
};

// How a spreading rule picks among its targets: by which key, with which weights.
enum class SpreadKey : uint8_t { kNone, kSourceIp, kWorkload, kNamespace };

struct WeightedTarget {
  size_t target = 0;       // index into Config::targets
  uint32_t weight = 1;     // 1..kMaxWeight
  uint64_t name_hash = 0;  // of the target's name: the spread follows names, not list positions
};

inline constexpr uint32_t kMaxWeight = 10000;
inline constexpr size_t kMaxSpreadTargets = 16;
inline constexpr size_t kMaxFallbackTargets = 8;
inline constexpr size_t kMaxConditionItems = 64;  // entries of one list condition (CIDRs, SNIs…)

struct Rule {
  Rule();
  ~Rule();
  Rule(Rule&&) noexcept;
  Rule(const Rule&);
  Rule& operator=(Rule&&) noexcept;
  Rule& operator=(const Rule&);

  std::string name;  // "name" as configured, or "rule<i>"

  WorkloadSelector workload;
  std::vector<IpPrefix> source_cidrs;  // any of
  bool has_last_octet = false;
  uint8_t octet_min = 0;  // inclusive
  uint8_t octet_max = 255;
  std::vector<IpPrefix> destination_cidrs;      // any of (empty: no condition)
  std::vector<IpPrefix> destination_except;     // none of
  std::vector<PortRange> ports;                 // any of
  std::vector<ServerNamePattern> server_names;  // any of

  // Where a match goes: `target`, or one of `spread` by `spread_key`. A spread by workload or
  // namespace is resolved into `target` once per configuration.
  size_t target = 0;  // index into Config::targets
  SpreadKey spread_key = SpreadKey::kNone;
  std::vector<WeightedTarget> spread;

  // The per-connection conditions, in parts: the scan in decide reads a RuleProbe and calls a part
  // only for the conditions the rule has.
  bool matchesSource(const IpAddress& source) const;
  bool matchesPort(uint16_t port) const;                        // ports not empty
  bool matchesDestination(const IpAddress* destination) const;  // destination conditions
  bool matchesServerName(std::string_view server_name) const;   // server_names not empty

  bool needsDestinationAddress() const {
    return !destination_cidrs.empty() || !destination_except.empty();
  }
  bool needsServerName() const { return !server_names.empty(); }
  bool spreadsPerConnection() const { return spread_key == SpreadKey::kSourceIp; }

  // Every connection `later` matches, this rule matches too (conservative: false when unsure).
  bool covers(const Rule& later) const;
};

// What the per-connection scan reads of an active rule, packed: most rules test one source CIDR
// and/or a last-octet range, so those live here and the rule itself is read only for the rest.
struct RuleProbe {
  enum Flag : uint8_t {
    kOneSource = 1,         // `source` is the rule's only source CIDR
    kManySources = 2,       // the rule has several: Rule::matchesSource
    kLastOctet = 4,         // octet_min..octet_max
    kPorts = 8,             // Rule::matchesPort
    kDestination = 16,      // Rule::matchesDestination
    kServerName = 32,       // Rule::matchesServerName
    kOnePort = 64,          // `ports` is the rule's only port range
    kOneDestination = 128,  // `destination` is its only destination condition
  };
  IpPrefix source;
  IpPrefix destination;
  PortRange ports;
  uint8_t flags = 0;
  uint8_t octet_min = 0;
  uint8_t octet_max = 255;
  uint16_t rule = 0;  // index into Config::rules

  static RuleProbe of(const Rule& rule, uint16_t index);
};

// Weighted rendezvous hashing: the target with the highest weight / -ln(hash(key, target)) wins,
// so each target gets its weight's share of keys and adding one of N targets moves only the keys
// it wins (about 1/N). Returns an index into `targets` (not empty).
size_t rendezvousPick(const std::vector<WeightedTarget>& targets, std::string_view key);

uint64_t hashText(std::string_view text);

}  // namespace tcpsteer
