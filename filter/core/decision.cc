#include "filter/core/decision.h"

#include "filter/core/text.h"

namespace tcpsteer {

Decision decide(const Config& config, std::string_view source_address,
                std::string_view destination_address) {
  Decision decision;
  if (config.targets.empty()) {
    decision.reason = "no targets configured";
    return decision;
  }
  auto source = parseSocketAddress(source_address);
  if (!source) {
    decision.reason =
        source_address.empty() ? "source address is empty" : "source address is malformed";
    return decision;
  }
  uint16_t destination_port = 0;
  if (config.needsDestinationPort()) {
    auto destination = parseSocketAddress(destination_address);
    if (!destination || !destination->port) {
      decision.reason = "destination address has no usable port";
      return decision;
    }
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
  decision.cluster =
      config.targets[decision.target].cluster.render(config.mapPort(destination_port));
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
