#include "filter/core/decision.h"

#include "filter/core/text.h"

namespace tcpsteer {

namespace {

// The decision with the address reader as a parameter: the memos in the plugin, the plain parser
// in decide (a memo kept for one call is only overhead).
template <typename ParseSource, typename ParseDestination>
Decision decideWith(const Config& config, std::string_view source_address,
                    std::string_view destination_address, std::optional<uint16_t> destination_port,
                    ParseSource parse_source, ParseDestination parse_destination) {
  Decision decision;
  if (config.targets.empty()) {
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
  uint16_t port = 0;
  if (config.needsDestinationPort()) {
    if (!destination_port) {
      auto destination = parse_destination(destination_address);
      if (destination && destination->port) {
        decision.destination_valid = true;
        destination_port = destination->port;
      }
    }
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
  decision.target = decision.last_octet % config.targets.size();
  const IpAddress& ip = source->ip;
  for (const Rule& rule : config.rules) {  // by reference: no index arithmetic per rule
    if (rule.matches(ip)) {
      decision.target = rule.target;
      decision.rule = static_cast<int>(&rule - config.rules.data());
      break;
    }
  }
  decision.port = config.mapPort(port);
  return decision;
}

}  // namespace

Decision decideTarget(const Config& config, std::string_view source_address,
                      std::string_view destination_address,
                      std::optional<uint16_t> destination_port, AddressMemos& memos) {
  return decideWith(
      config, source_address, destination_address, destination_port,
      [&memos](std::string_view text) { return memos.source.parse(text); },
      [&memos](std::string_view text) { return memos.destination.parse(text); });
}

Decision decide(const Config& config, std::string_view source_address,
                std::string_view destination_address) {
  Decision decision = decideWith(config, source_address, destination_address, std::nullopt,
                                 parseSocketAddress, parseSocketAddress);
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
