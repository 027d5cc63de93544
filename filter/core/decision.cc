#include "filter/core/decision.h"

#include "filter/core/text.h"

namespace tcpsteer {

namespace {

// The decision with the address reader as a parameter: the memos in the plugin, the plain parser
// in decide (a memo kept for one call is only overhead).
// The first active rule that matches sets the decision's rule and target. Out of line: the
// presets never call it.
void applyRules(const Config& config, const IpAddress& source, const IpAddress* destination,
                uint16_t port, std::string_view server_name, Decision& decision) {
  uint8_t octet = source.lastOctet();
  for (const RuleProbe& probe : config.probes) {
    uint8_t flags = probe.flags;
    if ((flags & RuleProbe::kOneSource) != 0 && !probe.source.contains(source)) continue;
    if ((flags & RuleProbe::kLastOctet) != 0 &&
        (octet < probe.octet_min || octet > probe.octet_max)) {
      continue;
    }
    const Rule& rule = config.rules[probe.rule];
    constexpr uint8_t kMoreConditions = RuleProbe::kManySources | RuleProbe::kOnePort |
                                        RuleProbe::kOneDestination | RuleProbe::kPorts |
                                        RuleProbe::kServerName | RuleProbe::kDestination;
    if ((flags & kMoreConditions) != 0) {  // a rule of one CIDR or octet range skips these
      if ((flags & RuleProbe::kManySources) != 0 && !rule.matchesSource(source)) continue;
      if ((flags & RuleProbe::kOnePort) != 0 && (port < probe.ports.low || port > probe.ports.high))
        continue;
      if ((flags & RuleProbe::kOneDestination) != 0 &&
          (destination == nullptr || !probe.destination.contains(*destination))) {
        continue;
      }
      if ((flags & RuleProbe::kPorts) != 0 && !rule.matchesPort(port)) continue;
      if ((flags & RuleProbe::kServerName) != 0 && !rule.matchesServerName(server_name)) continue;
      if ((flags & RuleProbe::kDestination) != 0 && !rule.matchesDestination(destination)) continue;
    }
    decision.rule = probe.rule;
    decision.target = rule.target;
    if (rule.spreadsPerConnection()) {
      std::string_view key(reinterpret_cast<const char*>(source.bytes.data()), source.byteLength());
      decision.target = rule.spread[rendezvousPick(rule.spread, key)].target;
    }
    return;
  }
}

// Two words, not the byte-wise operator== (a memcmp call in the module).
bool sameAddress(const IpAddress& a, const IpAddress& b) {
  uint64_t x[2];
  uint64_t y[2];
  __builtin_memcpy(x, a.bytes.data(), sizeof(x));
  __builtin_memcpy(y, b.bytes.data(), sizeof(y));
  return a.family == b.family && x[0] == y[0] && x[1] == y[1];
}

// The connection gives the rules what the previous one gave: the same source address, the same
// destination (when a rule reads it), port and SNI.
bool repeatsLastRules(const Config& config, const AddressMemos& memos, const IpAddress& source,
                      uint16_t port, std::string_view server_name) {
  const RulesMemo& last = memos.rules;
  // The source is compared whole: the memo may have been made a few sources ago.
  if (!last.valid || last.port != port || !memos.source.repeatedAddress() ||
      !sameAddress(last.source, source) ||
      (config.needs_destination_address && !memos.destination.repeatedWhole())) {
    return false;
  }
  return !config.needs_server_name ||
         (server_name.size() == last.server_name_size &&
          equalBytes(server_name.data(), last.server_name, server_name.size()));
}

void rememberRules(AddressMemos& memos, const IpAddress& source, uint16_t port,
                   std::string_view server_name, const Decision& decision) {
  RulesMemo& last = memos.rules;
  last.valid = server_name.size() <= RulesMemo::kMaxServerName;
  if (!last.valid) return;
  last.source = source;
  last.port = port;
  last.server_name_size = static_cast<uint8_t>(server_name.size());
  __builtin_memcpy(last.server_name, server_name.data(), server_name.size());
  last.rule = decision.rule;
  last.target = decision.target;
}

template <typename ParseSource, typename ParseDestination>
Decision decideWith(const Config& config, std::string_view source_address,
                    std::string_view destination_address, std::optional<uint16_t> destination_port,
                    std::string_view server_name, ParseSource parse_source,
                    ParseDestination parse_destination, AddressMemos* memos) {
  Decision decision;
  if (config.configured_targets == 0) {  // also guards the modulo below
    decision.reason = "no targets configured";
    return decision;
  }
  auto source = parse_source(source_address);
  if (!source) {
    decision.reason =
        source_address.empty() ? "source address is empty" : "source address is malformed";
    return decision;
  }
  decision.source_valid = true;
  // The destination address is read only when a port or a destination rule needs it.
  std::optional<SocketAddress> destination;
  if (config.needs_destination_address || (config.needsDestinationPort() && !destination_port)) {
    destination = parse_destination(destination_address);
    decision.destination_valid = destination.has_value();
  }
  uint16_t port = 0;
  if (config.needsDestinationPort()) {
    if (!destination_port && destination && destination->port) destination_port = destination->port;
    if (!destination_port) {
      decision.reason = "destination address has no usable port";
      return decision;
    }
    port = *destination_port;
    if (!config.matchesPort(port)) {
      decision.verdict = Verdict::kSkip;
      decision.reason = "destination port is not in match_ports";
      return decision;
    }
  }
  decision.verdict = Verdict::kRoute;
  decision.last_octet = source->ip.lastOctet();
  decision.target = decision.last_octet % config.configured_targets;
  if (!config.probes.empty()) {  // presets have none: one test
    if (memos != nullptr && repeatsLastRules(config, *memos, source->ip, port, server_name)) {
      decision.rule = memos->rules.rule;
      decision.target = memos->rules.target;
    } else {
      applyRules(config, source->ip, destination ? &destination->ip : nullptr, port, server_name,
                 decision);
      // Remembered once the source repeats: traffic with a new source every connection pays
      // nothing for it.
      if (memos != nullptr && memos->source.repeatedAddress())
        rememberRules(*memos, source->ip, port, server_name, decision);
    }
  }
  decision.port = config.mapPort(port);
  return decision;
}

}  // namespace

Decision decideTarget(const Config& config, std::string_view source_address,
                      std::string_view destination_address,
                      std::optional<uint16_t> destination_port, AddressMemos& memos,
                      std::string_view server_name) {
  return decideWith(
      config, source_address, destination_address, destination_port, server_name,
      [&memos](std::string_view text) { return memos.source.parse(text); },
      [&memos](std::string_view text) { return memos.destination.parse(text); }, &memos);
}

Decision decide(const Config& config, std::string_view source_address,
                std::string_view destination_address, std::string_view server_name) {
  Decision decision = decideWith(config, source_address, destination_address, std::nullopt,
                                 server_name, parseSocketAddress, parseSocketAddress, nullptr);
  if (decision.verdict == Verdict::kRoute)
    config.targets[decision.target].cluster.renderInto(decision.port, decision.cluster);
  return decision;
}

std::string concat(std::initializer_list<std::string_view> parts) {
  size_t size = 0;
  for (std::string_view part : parts) size += part.size();
  std::string out;
  out.reserve(size);
  for (std::string_view part : parts) out += part;
  return out;
}

const char* verdictName(Verdict verdict) {
  switch (verdict) {
    case Verdict::kRoute:
      return "route";
    case Verdict::kSkip:
      return "skip";
    case Verdict::kUnroutable:
      return "unroutable";
  }
  return "unroutable";
}

}  // namespace tcpsteer
