#include "filter/core/decision.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>

namespace tcpsteer {
namespace {

Config configFrom(const std::string& text) {
  ConfigResult result = parseConfig(text);
  EXPECT_TRUE(result.config) << result.error.message();
  return *result.config;
}

TEST(Decide, SeedEvenOddIstio) {
  Config config = istioPreset();
  Decision even = decide(config, "10.244.0.12:51234", "93.184.216.34:443");
  EXPECT_EQ(even.verdict, Verdict::kRoute);
  EXPECT_EQ(even.cluster.view(), "outbound|443||egress1.default.svc.cluster.local");
  EXPECT_EQ(even.last_octet, 12);
  EXPECT_EQ(even.rule, -1);
  Decision odd = decide(config, "10.244.0.13:51234", "93.184.216.34:443");
  EXPECT_EQ(odd.cluster.view(), "outbound|443||egress2.default.svc.cluster.local");
  EXPECT_EQ(odd.target, 1u);
}

// decideTarget (the plugin's path): with the port given as a number the address is not read (a
// rules configuration with port_map and match_ports); without it, the same decisions as decide.
TEST(DecideTarget, UsesAGivenPortAndOtherwiseMatchesDecide) {
  Config config = configFrom(
      R"({"targets": ["a-{port}", "b-{port}"], "match_ports": [443, 8443], "port_map": {"443": 9443}})");
  AddressMemos memos;
  Decision given = decideTarget(config, "10.0.0.2:1", "not an address", 443, memos);
  EXPECT_EQ(given.verdict, Verdict::kRoute);
  EXPECT_EQ(given.port, 9443);
  EXPECT_FALSE(given.destination_valid);  // not read: printed as untrusted text
  Decision skipped = decideTarget(config, "10.0.0.2:1", "", 80, memos);
  EXPECT_EQ(skipped.verdict, Verdict::kSkip);
  for (const char* destination : {"93.184.216.34:443", "93.184.216.34:80", "93.184.216.34", "",
                                  "[2001:db8::1]:8443", "x:443"}) {
    Decision expected = decide(config, "10.0.0.3:1", destination);
    Decision read = decideTarget(config, "10.0.0.3:1", destination, std::nullopt, memos);
    EXPECT_EQ(read.verdict, expected.verdict) << destination;
    EXPECT_EQ(read.port, expected.port) << destination;
    EXPECT_EQ(read.reason, expected.reason) << destination;
    EXPECT_EQ(read.destination_valid, expected.destination_valid) << destination;
  }
}

TEST(Decide, EveryLastOctetAlternates) {
  Config config = standalonePreset();
  for (int octet = 0; octet < 256; ++octet) {
    std::string source = "127.0.0." + std::to_string(octet) + ":1000";
    Decision decision = decide(config, source, "");
    ASSERT_EQ(decision.verdict, Verdict::kRoute) << source;
    EXPECT_EQ(decision.cluster.view(), octet % 2 == 0 ? "egress1" : "egress2") << source;
  }
}

TEST(Decide, Ipv6UsesLastByte) {
  Decision decision = decide(standalonePreset(), "[2001:db8::a0f]:5000", "[2001:db8::1]:443");
  EXPECT_EQ(decision.last_octet, 0x0f);
  EXPECT_EQ(decision.cluster.view(), "egress2");
}

TEST(Decide, ThreeTargetsModulo) {
  Config config = configFrom(R"({"targets": ["a", "b", "c"]})");
  EXPECT_EQ(decide(config, "1.1.1.9:1", "").cluster.view(), "a");
  EXPECT_EQ(decide(config, "1.1.1.10:1", "").cluster.view(), "b");
  EXPECT_EQ(decide(config, "1.1.1.11:1", "").cluster.view(), "c");
}

TEST(Decide, RulesFirstMatchWins) {
  Config config = configFrom(R"({"targets": ["a", "b", "c"],
      "rules": [{"source_cidr": "10.1.0.0/16", "target": "c"},
                {"source_cidr": "10.0.0.0/8", "target": "b"},
                {"source_cidr": "fd00::/8", "target": "a"},
                {"last_octet": [100, 199], "target": "c"}]})");
  Decision cidr = decide(config, "10.1.2.2:1", "");
  EXPECT_EQ(cidr.cluster.view(), "c");
  EXPECT_EQ(cidr.rule, 0);
  EXPECT_EQ(decide(config, "10.2.0.2:1", "").cluster.view(), "b");
  EXPECT_EQ(decide(config, "[fd00::7]:1", "").cluster.view(), "a");
  EXPECT_EQ(decide(config, "192.168.0.150:1", "").rule, 3);
  Decision fallback = decide(config, "192.168.0.4:1", "");
  EXPECT_EQ(fallback.rule, -1);
  EXPECT_EQ(fallback.cluster.view(), "b");  // 4 % 3
}

TEST(Decide, PortMapAndMatchPorts) {
  Config config = configFrom(R"({"port_map": {"443": 8443}, "match_ports": [443, 80]})");
  EXPECT_EQ(decide(config, "10.0.0.2:1", "1.2.3.4:443").cluster.view(),
            "outbound|8443||egress1.default.svc.cluster.local");
  EXPECT_EQ(decide(config, "10.0.0.2:1", "1.2.3.4:80").cluster.view(),
            "outbound|80||egress1.default.svc.cluster.local");
  Decision skipped = decide(config, "10.0.0.2:1", "1.2.3.4:22");
  EXPECT_EQ(skipped.verdict, Verdict::kSkip);
  EXPECT_TRUE(skipped.cluster.view().empty());
}

TEST(Decide, UnroutableInputs) {
  Config config = istioPreset();
  EXPECT_EQ(decide(config, "", "1.2.3.4:443").verdict, Verdict::kUnroutable);
  EXPECT_EQ(decide(config, "garbage", "1.2.3.4:443").verdict, Verdict::kUnroutable);
  EXPECT_EQ(decide(config, std::string(100000, '9'), "1.2.3.4:443").verdict, Verdict::kUnroutable);
  Decision no_port = decide(config, "10.0.0.1:5", "1.2.3.4");
  EXPECT_EQ(no_port.verdict, Verdict::kUnroutable);
  EXPECT_FALSE(no_port.reason.empty());
  // Standalone names do not need the destination at all.
  EXPECT_EQ(decide(standalonePreset(), "10.0.0.1:5", "\xff").verdict, Verdict::kRoute);
}

}  // namespace
}  // namespace tcpsteer
