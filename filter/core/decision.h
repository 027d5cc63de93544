// The routing decision: Config x (source, destination, SNI) -> which cluster, and why.
#pragma once

#include <cstdint>
#include <optional>
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
  uint16_t port = 0;        // destination port after port_map, for "{port}" (kRoute)
  ClusterName cluster;      // rendered cluster name (kRoute; decide only), in place: no heap
  uint8_t last_octet = 0;   // of the source address (kRoute)
  int rule = -1;            // index into Config::rules of the match, -1 = last octet modulo N
                            // (kRoute)
  std::string_view reason;  // static text for kSkip / kUnroutable
  // The address parsed as a valid socket address, so it is printable as it is (log lines copy it
  // instead of checking each byte).
  bool source_valid = false;
  bool destination_valid = false;
};

// Pure and deterministic; never fails on any input.
Decision decide(const Config& config, std::string_view source_address,
                std::string_view destination_address, std::string_view server_name = {});

// The rules' answer for the previous connection. A sidecar's connections repeat their source
// address, destination and SNI, and the rules then answer the same: a repeat costs a comparison
// instead of the scan. Valid for one configuration (the caller resets it on reconfiguration).
struct RulesMemo {
  static constexpr size_t kMaxServerName = 64;  // longer names are not remembered

  bool valid = false;
  IpAddress source;
  uint16_t port = 0;
  uint8_t server_name_size = 0;
  alignas(8) char server_name[kMaxServerName] = {};
  int rule = -1;
  size_t target = 0;
};

// The addresses of the previous connection, kept by a caller that decides for many (the plugin).
struct AddressMemos {
  AddressMemo source;
  AddressMemo destination{/*remember_whole=*/true};
  RulesMemo rules;
};

// decide without rendering the cluster name (Decision::cluster stays empty), reading the addresses
// through memos: for a caller that keeps names rendered per (target, port), as the plugin does.
// destination_port, when the host gives it as a number (Envoy's destination.port), is used instead
// of reading destination_address. Otherwise the same decisions as decide.
Decision decideTarget(const Config& config, std::string_view source_address,
                      std::string_view destination_address,
                      std::optional<uint16_t> destination_port, AddressMemos& memos,
                      std::string_view server_name = {});

const char* verdictName(Verdict verdict);

}  // namespace tcpsteer
