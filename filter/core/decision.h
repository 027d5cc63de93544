// The routing decision: Config x (source, destination) -> which cluster, and why.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "filter/core/config.h"

namespace tcpsteer {

enum class Verdict : uint8_t {
  kRoute,       // set envoy.tcp_proxy.cluster to `cluster`
  kSkip,        // destination port not in match_ports: leave tcp_proxy's own cluster
  kUnroutable,  // source or destination unusable: Config::on_unroutable applies
};

struct Decision {
  Verdict verdict = Verdict::kUnroutable;
  size_t target = 0;        // index into Config::targets (kRoute)
  std::string cluster;      // rendered cluster name (kRoute)
  uint8_t last_octet = 0;   // of the source address (kRoute)
  int rule = -1;            // index of the matching rule, -1 = last octet modulo N (kRoute)
  std::string_view reason;  // static text for kSkip / kUnroutable
};

// Pure and deterministic; never fails on any input.
Decision decide(const Config& config, std::string_view source_address,
                std::string_view destination_address);

const char* verdictName(Verdict verdict);

}  // namespace tcpsteer
