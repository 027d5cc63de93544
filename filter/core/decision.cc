#include "filter/core/decision.h"

#include "filter/core/text.h"

namespace tcpsteer {

namespace {

// The decision with the address reader as a parameter: the memos in the plugin, the plain parser
// in decide (a memo kept for one call is only overhead).
template <typename ParseSource, typename ParseDestination>
Decision decideWith(const Config& config, std::string_view source_address,
                    std::string_view destination_address, ParseSource parse_source,
                    ParseDestination parse_destination) {
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
  uint16_t destination_port = 0;
  if (config.needsDestinationPort()) {
    auto destination = parse_destination(destination_address);
    if (!destination || !destination->port) {
      decision.reason = "destination address has no usable port";
      return decision;
    }
    decision.destination_valid = true;
    destination_port = *destination->port;
    if (!config.matchesPort(destination_port)) {
      decision.verdict = Verdict::kSkip;
      decision.reason = "destination port is not in match_ports";
      return decision;
    }
  }
  decision.verdict = Verdict::kRoute;
  decision.last_octet = source->ip.lastOctet();
  decision.target = decision.last_octet % config.targets.size();
  for (size_t i = 0; i < config.rules.size(); ++i) {
    if (config.rules[i].matches(source->ip)) {
      decision.target = config.rules[i].target;
      decision.rule = static_cast<int>(i);
      break;
    }
  }
  decision.port = config.mapPort(destination_port);
  return decision;
}

}  // namespace

Decision decideTarget(const Config& config, std::string_view source_address,
                      std::string_view destination_address, AddressMemos& memos) {
  return decideWith(
      config, source_address, destination_address,
      [&memos](std::string_view text) { return memos.source.parse(text); },
      [&memos](std::string_view text) { return memos.destination.parse(text); });
}

Decision decide(const Config& config, std::string_view source_address,
                std::string_view destination_address) {
  Decision decision = decideWith(config, source_address, destination_address, parseSocketAddress,
                                 parseSocketAddress);
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
