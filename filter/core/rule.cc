#include "filter/core/rule.h"

#include <cmath>

namespace tcpsteer {
namespace {

// Eight bytes of text with ASCII capitals made small, all at once: a byte b is a capital when b
// + 0x3f carries into bit 7 ('A' and up) and b + 0x25 does not ('Z' and below), computed on the
// low seven bits so no byte carries into its neighbour; bytes with bit 7 set stay as they are.
uint64_t foldWord(uint64_t word) {
  constexpr uint64_t kLow7 = 0x7f7f7f7f7f7f7f7fULL;
  constexpr uint64_t kHigh = 0x8080808080808080ULL;
  uint64_t low = word & kLow7;
  uint64_t capitals =
      ((low + 0x3f3f3f3f3f3f3f3fULL) & ~(low + 0x2525252525252525ULL)) & ~word & kHigh;
  return word | (capitals >> 2);
}

// text (any case) equals pattern (lowercase), both n bytes: compared a word at a time, as a
// rules scan tries several names per connection.
bool equalsLowercase(const char* text, const char* pattern, size_t n) {
  while (n >= 8) {
    uint64_t a = 0;
    uint64_t b = 0;
    __builtin_memcpy(&a, text, 8);
    __builtin_memcpy(&b, pattern, 8);
    if (foldWord(a) != b) return false;
    text += 8;
    pattern += 8;
    n -= 8;
  }
  for (size_t i = 0; i < n; ++i) {
    char c = text[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != pattern[i]) return false;
  }
  return true;
}

// a covers b: every address in b is in a.
bool prefixCovers(const IpPrefix& a, const IpPrefix& b) {
  return a.base.family == b.base.family && a.length <= b.length && a.contains(b.base);
}

bool prefixesDisjoint(const IpPrefix& a, const IpPrefix& b) {
  return !prefixCovers(a, b) && !prefixCovers(b, a);
}

bool anyContains(const std::vector<IpPrefix>& prefixes, const IpAddress& address) {
  for (const IpPrefix& prefix : prefixes) {
    if (prefix.contains(address)) return true;
  }
  return false;
}

// Each of `later` is inside one of `earlier`; an empty `earlier` is no condition (covers all), an
// empty `later` is no condition (only an empty `earlier` covers it).
template <typename T, typename Covers>
bool listCovers(const std::vector<T>& earlier, const std::vector<T>& later, Covers covers) {
  if (earlier.empty()) return true;
  if (later.empty()) return false;
  for (const T& item : later) {
    bool covered = false;
    for (const T& outer : earlier) covered = covered || covers(outer, item);
    if (!covered) return false;
  }
  return true;
}

bool sameText(const std::string& a, const std::string& b) {
  return a == b;
}

// splitmix64's finaliser: spreads every input bit over the output.
uint64_t mix(uint64_t value) {
  value ^= value >> 30;
  value *= 0xbf58476d1ce4e5b9ULL;
  value ^= value >> 27;
  value *= 0x94d049bb133111ebULL;
  value ^= value >> 31;
  return value;
}

}  // namespace

Rule::Rule() = default;
Rule::~Rule() = default;
Rule::Rule(Rule&&) noexcept = default;
Rule::Rule(const Rule&) = default;
Rule& Rule::operator=(Rule&&) noexcept = default;
Rule& Rule::operator=(const Rule&) = default;

bool ServerNamePattern::matches(std::string_view server_name) const {
  size_t n = text.size();
  if (wildcard ? server_name.size() <= n : server_name.size() != n) return false;
  return equalsLowercase(server_name.data() + server_name.size() - n, text.data(), n);
}

bool ServerNamePattern::covers(const ServerNamePattern& other) const {
  if (!wildcard) return !other.wildcard && other.text == text;
  if (other.text.size() < text.size() ||
      other.text.compare(other.text.size() - text.size(), text.size(), text) != 0)
    return false;
  return other.wildcard || other.text.size() > text.size();
}

std::string ServerNamePattern::display() const {
  return wildcard ? "*" + text : text;
}

bool Rule::matchesSource(const IpAddress& source) const {
  if (!source_cidrs.empty() && !anyContains(source_cidrs, source)) return false;
  if (!has_last_octet) return true;
  uint8_t octet = source.lastOctet();
  return octet >= octet_min && octet <= octet_max;
}

bool Rule::matchesPort(uint16_t port) const {
  for (const PortRange& range : ports) {
    if (port >= range.low && port <= range.high) return true;
  }
  return false;
}

bool Rule::matchesDestination(const IpAddress* destination) const {
  if (destination == nullptr) return false;
  if (!destination_cidrs.empty() && !anyContains(destination_cidrs, *destination)) return false;
  return destination_except.empty() || !anyContains(destination_except, *destination);
}

bool Rule::matchesServerName(std::string_view server_name) const {
  for (const ServerNamePattern& pattern : server_names) {
    if (pattern.matches(server_name)) return true;
  }
  return false;
}

RuleProbe RuleProbe::of(const Rule& rule, uint16_t index) {
  RuleProbe probe;
  probe.rule = index;
  if (rule.source_cidrs.size() == 1) {
    probe.source = rule.source_cidrs[0];
    probe.flags |= kOneSource;
  } else if (!rule.source_cidrs.empty()) {
    probe.flags |= kManySources;
  }
  if (rule.has_last_octet) {
    probe.flags |= kLastOctet;
    probe.octet_min = rule.octet_min;
    probe.octet_max = rule.octet_max;
  }
  if (rule.ports.size() == 1) {
    probe.ports = rule.ports[0];
    probe.flags |= kOnePort;
  } else if (!rule.ports.empty()) {
    probe.flags |= kPorts;
  }
  if (rule.destination_cidrs.size() == 1 && rule.destination_except.empty()) {
    probe.destination = rule.destination_cidrs[0];
    probe.flags |= kOneDestination;
  } else if (rule.needsDestinationAddress()) {
    probe.flags |= kDestination;
  }
  if (!rule.server_names.empty()) probe.flags |= kServerName;
  return probe;
}

bool Rule::covers(const Rule& later) const {
  if (!listCovers(workload.namespaces, later.workload.namespaces, sameText) ||
      !listCovers(workload.workloads, later.workload.workloads, sameText) ||
      !listCovers(workload.service_accounts, later.workload.service_accounts, sameText)) {
    return false;
  }
  for (const auto& label : workload.labels) {  // later must require every label this one does
    bool required = false;
    for (const auto& other : later.workload.labels) required = required || other == label;
    if (!required) return false;
  }
  if (!listCovers(source_cidrs, later.source_cidrs, prefixCovers)) return false;
  if (has_last_octet &&
      (!later.has_last_octet || later.octet_min < octet_min || later.octet_max > octet_max)) {
    return false;
  }
  if (!listCovers(destination_cidrs, later.destination_cidrs, prefixCovers)) return false;
  // Nothing later matches may fall in one of this rule's exclusions.
  for (const IpPrefix& excluded : destination_except) {
    bool excluded_later_too = false;
    for (const IpPrefix& other : later.destination_except)
      excluded_later_too = excluded_later_too || prefixCovers(other, excluded);
    bool outside = !later.destination_cidrs.empty();
    for (const IpPrefix& other : later.destination_cidrs)
      outside = outside && prefixesDisjoint(other, excluded);
    if (!excluded_later_too && !outside) return false;
  }
  if (!listCovers(ports, later.ports, [](const PortRange& outer, const PortRange& inner) {
        return outer.low <= inner.low && inner.high <= outer.high;
      })) {
    return false;
  }
  return listCovers(server_names, later.server_names,
                    [](const ServerNamePattern& outer, const ServerNamePattern& inner) {
                      return outer.covers(inner);
                    });
}

uint64_t hashText(std::string_view text) {
  uint64_t hash = 0xcbf29ce484222325ULL;  // FNV-1a, finished by mix()
  for (char c : text) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 0x100000001b3ULL;
  }
  return mix(hash ^ text.size());
}

size_t rendezvousPick(const std::vector<WeightedTarget>& targets, std::string_view key) {
  uint64_t key_hash = hashText(key);
  size_t best = 0;
  double best_score = -1;
  for (size_t i = 0; i < targets.size(); ++i) {
    uint64_t hash = mix(key_hash ^ mix(targets[i].name_hash + 0x9e3779b97f4a7c15ULL));
    // A uniform draw in (0, 1) from the top 53 bits; -ln of it is exponential, so weight / -ln(u)
    // is the largest for each target with probability weight / total.
    double uniform = (static_cast<double>(hash >> 11) + 0.5) * 0x1.0p-53;
    double score = targets[i].weight / -std::log(uniform);
    if (score > best_score) {
      best_score = score;
      best = i;
    }
  }
  return best;
}

}  // namespace tcpsteer
