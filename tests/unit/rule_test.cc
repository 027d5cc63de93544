// The selection rules: every condition, workload binding, shadowed rules, fallback lists and
// stable spreading, through parseConfig and decide as the module runs them.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "filter/core/config.h"
#include "filter/core/decision.h"

namespace tcpsteer {
namespace {

Config parseOk(const std::string& text) {
  ConfigResult result = parseConfig(text);
  EXPECT_TRUE(result.config) << result.error.message();
  return result.config ? *result.config : Config();
}

WorkloadIdentity billingIdentity() {
  WorkloadIdentity identity;
  identity.namespace_name = "billing";
  identity.workload_name = "invoicer";
  identity.service_account = "invoicer-sa";
  identity.has_labels = true;
  identity.labels = {{"app", "invoicer"}, {"tier", "backend"}};
  return identity;
}

Config boundTo(const std::string& text, const WorkloadIdentity& identity) {
  Config config = parseOk(text);
  auto error = bindWorkload(config, identity);
  EXPECT_FALSE(error) << error->message();
  return config;
}

std::string targetOf(const Config& config, const std::string& source,
                     const std::string& destination, const std::string& sni = "") {
  Decision decision = decide(config, source, destination, sni);
  if (decision.verdict != Verdict::kRoute)
    return std::string("(") + verdictName(decision.verdict) + ")";
  std::string out = config.targets[decision.target].name;
  out += decision.rule >= 0 ? " by " + config.rules[decision.rule].name : " by default";
  return out;
}

const char* kThree = R"("targets": ["egress1", "egress2", "audit"])";

TEST(Rules, DestinationCidrWithExclusionsAndPortRanges) {
  Config config = parseOk(std::string("{") + kThree + R"(, "rules": [
      {"name": "internal", "destination_cidr": "10.0.0.0/8", "destination_except": ["10.9.0.0/16", "10.8.1.1"], "target": "audit"},
      {"name": "high-ports", "ports": [443, "8000-8099"], "destination_cidr": ["192.0.2.0/24", "2001:db8::/32"], "target": "egress2"}]})");
  EXPECT_EQ(targetOf(config, "10.0.0.3:1", "10.1.2.3:80"), "audit by internal");
  EXPECT_EQ(targetOf(config, "10.0.0.3:1", "10.9.2.3:80"), "egress1 by default");
  EXPECT_EQ(targetOf(config, "10.0.0.3:1", "10.8.1.1:80"), "egress1 by default");
  EXPECT_EQ(targetOf(config, "10.0.0.3:1", "10.8.1.2:80"), "audit by internal");
  EXPECT_EQ(targetOf(config, "10.0.0.3:1", "192.0.2.7:443"), "egress2 by high-ports");
  EXPECT_EQ(targetOf(config, "10.0.0.3:1", "192.0.2.7:8000"), "egress2 by high-ports");
  EXPECT_EQ(targetOf(config, "10.0.0.3:1", "192.0.2.7:8099"), "egress2 by high-ports");
  EXPECT_EQ(targetOf(config, "10.0.0.3:1", "192.0.2.7:8100"), "egress1 by default");
  EXPECT_EQ(targetOf(config, "10.0.0.3:1", "[2001:db8::5]:443"), "egress2 by high-ports");
  EXPECT_EQ(targetOf(config, "10.0.0.3:1", "198.51.100.1:443"), "egress1 by default");
  // With a ports rule the port is needed: a destination that cannot be read is unroutable.
  EXPECT_EQ(targetOf(config, "10.0.0.3:1", "not-an-address:443"), "(unroutable)");
}

TEST(Rules, ServerNamesExactAndWildcardCaseInsensitive) {
  Config config = parseOk(std::string("{") + kThree + R"(, "rules": [
      {"sni": "API.example.com", "target": "audit"},
      {"sni": ["*.example.com", "other.test"], "target": "egress2"}]})");
  EXPECT_TRUE(config.needs_server_name);
  EXPECT_EQ(targetOf(config, "10.0.0.3:1", "192.0.2.1:443", "api.example.com"), "audit by rule0");
  EXPECT_EQ(targetOf(config, "10.0.0.3:1", "192.0.2.1:443", "Api.Example.COM"), "audit by rule0");
  EXPECT_EQ(targetOf(config, "10.0.0.3:1", "192.0.2.1:443", "a.b.example.com"), "egress2 by rule1");
  EXPECT_EQ(targetOf(config, "10.0.0.3:1", "192.0.2.1:443", "example.com"), "egress1 by default");
  EXPECT_EQ(targetOf(config, "10.0.0.3:1", "192.0.2.1:443", "badexample.com"),
            "egress1 by default");
  EXPECT_EQ(targetOf(config, "10.0.0.3:1", "192.0.2.1:443", "OTHER.test"), "egress2 by rule1");
  EXPECT_EQ(targetOf(config, "10.0.0.3:1", "192.0.2.1:443", ""), "egress1 by default");
}

TEST(Rules, WorkloadConditionsAreBoundOncePerProxy) {
  std::string text = std::string("{") + kThree + R"(, "rules": [
      {"name": "shop", "namespace": ["shop", "web"], "target": "egress2"},
      {"name": "invoicer", "namespace": "billing", "labels": {"app": "invoicer"}, "sni": "*.bank.example", "target": "audit"},
      {"name": "billing-sa", "service_account": "invoicer-sa", "workload": "invoicer", "target": "egress2"},
      {"name": "frontend", "labels": {"tier": "frontend"}, "target": "audit"}]})";
  Config unbound = parseOk(text);
  EXPECT_TRUE(unbound.needs_workload);
  EXPECT_TRUE(unbound.active_rules.empty());  // none can be tried before the proxy is known
  Config billing = boundTo(text, billingIdentity());
  EXPECT_EQ(billing.active_rules, (std::vector<uint16_t>{1, 2}));
  EXPECT_EQ(targetOf(billing, "10.0.0.2:1", "192.0.2.1:443", "pay.bank.example"),
            "audit by invoicer");
  EXPECT_EQ(targetOf(billing, "10.0.0.2:1", "192.0.2.1:443", "api.example.com"),
            "egress2 by billing-sa");
  WorkloadIdentity shop;
  shop.namespace_name = "web";
  shop.workload_name = "front";
  shop.service_account = "default";
  shop.has_labels = true;
  shop.labels = {{"tier", "frontend"}};
  Config web = boundTo(text, shop);
  EXPECT_EQ(web.active_rules, (std::vector<uint16_t>{0, 3}));
  EXPECT_EQ(targetOf(web, "10.0.0.2:1", "192.0.2.1:443"), "egress2 by shop");
  EXPECT_FALSE(web.needs_server_name);  // the SNI rule cannot match this proxy: never read
}

TEST(Rules, WorkloadConditionsWithoutTheMetadataAreRefused) {
  Config config = parseOk(R"({"rules": [{"namespace": "billing", "target": 0},
                                        {"labels": {"app": "x"}, "target": 1}]})");
  WorkloadIdentity plain;  // a plain Envoy: no Istio metadata
  auto error = bindWorkload(config, plain);
  ASSERT_TRUE(error);
  EXPECT_EQ(error->field, "rules[0].namespace");
  EXPECT_EQ(error->message(),
            "invalid configuration at 'rules[0].namespace': this proxy has no "
            "node.metadata.NAMESPACE; expected a proxy with Istio's node metadata (a sidecar or "
            "gateway), or no workload conditions");
  plain.namespace_name = "billing";
  error = bindWorkload(config, plain);
  ASSERT_TRUE(error);
  EXPECT_EQ(error->field, "rules[1].labels");
  plain.has_labels = true;  // LABELS present, without the key: the rule simply does not apply
  EXPECT_FALSE(bindWorkload(config, plain));
  EXPECT_EQ(config.active_rules, (std::vector<uint16_t>{0}));
}

TEST(Rules, ShadowedRulesAreWarnedOnce) {
  Config config = parseOk(std::string("{") + kThree + R"(, "rules": [
      {"name": "wide", "source_cidr": "10.0.0.0/8", "ports": "1-1024", "target": 0},
      {"name": "narrow", "source_cidr": ["10.1.0.0/16", "10.2.0.0/16"], "ports": 443, "sni": "a.example.com", "target": 1},
      {"name": "v6", "source_cidr": "fd00::/8", "ports": 443, "target": 1},
      {"name": "sni-wide", "sni": "*.example.com", "target": 2},
      {"name": "sni-narrow", "sni": ["x.example.com", "*.y.example.com"], "last_octet": [1, 9], "target": 0},
      {"name": "sni-other", "sni": "example.com", "target": 0},
      {"name": "except", "destination_cidr": "0.0.0.0/0", "destination_except": "10.0.0.0/8", "target": 1},
      {"name": "inside-except", "destination_cidr": "10.1.0.0/16", "target": 2},
      {"name": "outside-except", "destination_cidr": "192.0.2.0/24", "target": 2},
      {"name": "ns", "namespace": ["a", "b"], "target": 0},
      {"name": "ns-a", "namespace": "a", "labels": {"app": "x"}, "target": 1},
      {"name": "all", "target": 2},
      {"name": "after-all", "ports": 80, "target": 1}]})");
  auto shadowed = [](const std::string& later, const std::string& earlier) {
    return later + " can never match: " + earlier + " matches every connection it would";
  };
  std::vector<std::string> expected = {shadowed("rules[1] (narrow)", "rules[0] (wide)"),
                                       shadowed("rules[4] (sni-narrow)", "rules[3] (sni-wide)"),
                                       shadowed("rules[8] (outside-except)", "rules[6] (except)"),
                                       shadowed("rules[10] (ns-a)", "rules[9] (ns)"),
                                       shadowed("rules[12] (after-all)", "rules[11] (all)")};
  EXPECT_EQ(config.warnings, expected);
}

TEST(Rules, FallbackListsRouteToAnAggregateCluster) {
  Config istio = parseOk(
      R"({"rules": [{"name": "ha", "source_cidr": "10.0.0.0/8", "target": ["egress1", "egress2"]},
                                       {"last_octet": 7, "target": ["egress1", "egress2"]},
                                       {"last_octet": 9, "target": ["egress2", "egress1"]}]})");
  ASSERT_EQ(istio.targets.size(), 4u);  // one aggregate per distinct order
  Decision decision = decide(istio, "10.0.0.2:1", "192.0.2.1:443");
  EXPECT_EQ(istio.targets[decision.target].name, "egress1+egress2");
  EXPECT_EQ(decision.cluster.view(), "tcpsteer-failover|443|egress1+egress2");
  EXPECT_EQ(decide(istio, "192.168.0.9:1", "192.0.2.1:8443").cluster.view(),
            "tcpsteer-failover|8443|egress2+egress1");
  // Without a rule, the last octet picks among the configured targets only, never an aggregate.
  for (int octet : {2, 3, 4, 5}) {
    Decision parity = decide(istio, "192.168.0." + std::to_string(octet) + ":1", "192.0.2.1:443");
    EXPECT_EQ(parity.rule, -1);
    EXPECT_EQ(parity.target, static_cast<size_t>(octet % 2)) << octet;
  }
  Config standalone =
      parseOk(R"({"preset": "standalone", "rules": [{"target": ["egress2", "egress1"]}]})");
  EXPECT_EQ(decide(standalone, "10.0.0.2:1", "").cluster.view(),
            "tcpsteer-failover|egress2+egress1");
  EXPECT_EQ(standalone.targets[2].members, (std::vector<size_t>{1, 0}));
}

// Weighted rendezvous: the share of each target follows its weight, and a fifth target joining
// four moves about a fifth of the keys, all of them to the newcomer.
TEST(Spread, MovesAboutOneNthAndHonoursWeights) {
  auto targets = [](std::vector<std::pair<std::string, uint32_t>> entries) {
    std::vector<WeightedTarget> out;
    out.reserve(entries.size());
    for (size_t i = 0; i < entries.size(); ++i)
      out.push_back(WeightedTarget{i, entries[i].second, hashText(entries[i].first)});
    return out;
  };
  auto four = targets({{"e1", 1}, {"e2", 1}, {"e3", 1}, {"e4", 1}});
  auto five = targets({{"e1", 1}, {"e2", 1}, {"e3", 1}, {"e4", 1}, {"e5", 1}});
  constexpr int kKeys = 100000;
  int moved = 0;
  int moved_elsewhere = 0;
  for (int key = 0; key < kKeys; ++key) {
    std::string text = "ns/workload-" + std::to_string(key);
    size_t before = rendezvousPick(four, text);
    size_t after = rendezvousPick(five, text);
    EXPECT_EQ(before, rendezvousPick(four, text));  // changing nothing moves nothing
    if (before != after) ++moved;
    if (before != after && after != 4) ++moved_elsewhere;
  }
  double fraction = 100.0 * moved / kKeys;
  EXPECT_NEAR(fraction, 20.0, 2.0) << fraction;
  EXPECT_EQ(moved_elsewhere, 0);
  auto weighted = targets({{"e1", 1}, {"e2", 3}, {"e3", 6}});
  int counts[3] = {};
  for (int key = 0; key < kKeys; ++key)
    ++counts[rendezvousPick(weighted, "10.0." + std::to_string(key))];
  EXPECT_NEAR(100.0 * counts[0] / kKeys, 10.0, 1.0);
  EXPECT_NEAR(100.0 * counts[1] / kKeys, 30.0, 1.0);
  EXPECT_NEAR(100.0 * counts[2] / kKeys, 60.0, 1.0);
}

TEST(Spread, BySourceIpPerConnectionAndByWorkloadOncePerProxy) {
  std::string text = std::string("{") + kThree + R"(, "rules": [
      {"name": "by-ns", "namespace": "billing", "spread": {"by": "namespace", "targets": ["egress1", "egress2", "audit"]}},
      {"name": "by-ip", "spread": {"by": "source_ip", "targets": {"egress1": 1, "egress2": 1}}}]})";
  Config billing = boundTo(text, billingIdentity());
  std::string first = targetOf(billing, "10.0.0.2:1", "192.0.2.1:443");
  EXPECT_EQ(first.substr(first.find(" by ")), " by by-ns");
  for (int octet = 0; octet < 50; ++octet)  // one choice for the whole proxy
    EXPECT_EQ(targetOf(billing, "10.0.0." + std::to_string(octet) + ":1", "192.0.2.1:443"), first);
  WorkloadIdentity other = billingIdentity();
  other.namespace_name = "shop";
  Config shop = boundTo(text, other);
  int spread[3] = {};
  for (int octet = 0; octet < 256; ++octet) {
    std::string source = "10.7." + std::to_string(octet) + ".4:1";
    Decision decision = decide(shop, source, "192.0.2.1:443");
    ASSERT_EQ(decision.rule, 1);
    ++spread[decision.target];
    EXPECT_EQ(decide(shop, "10.7." + std::to_string(octet) + ".4:999", "192.0.2.9:80").target,
              decision.target);  // the same source IP stays on its target
  }
  EXPECT_GT(spread[0], 90);
  EXPECT_GT(spread[1], 90);
  EXPECT_EQ(spread[2], 0);
}

TEST(Spread, ByWorkloadNeedsTheWorkloadName) {
  Config config = parseOk(R"({"rules": [{"spread": {"by": "workload", "targets": [0, 1]}}]})");
  WorkloadIdentity identity;
  identity.namespace_name = "billing";
  auto error = bindWorkload(config, identity);
  ASSERT_TRUE(error);
  EXPECT_EQ(error->field, "rules[0].spread");
  EXPECT_NE(error->problem.find("WORKLOAD_NAME"), std::string::npos);
}

// The plugin's path remembers the rules' answer for a repeated connection; a new source must
// never be answered from an older one (A, A, B, B: the fourth is B's answer, not A's).
TEST(RulesMemo, ARepeatIsAnsweredForItsOwnSourceOnly) {
  Config config = parseOk(std::string("{") + kThree + R"(, "rules": [
      {"sni": "spread.test", "spread": {"by": "source_ip", "targets": ["egress1", "egress2", "audit"]}},
      {"source_cidr": "10.1.0.0/16", "sni": "x.test", "target": "audit"}]})");
  AddressMemos memos;
  std::vector<std::string> sources;
  sources.reserve(64);
  for (int octet = 0; octet < 64; ++octet) sources.push_back("10.1.2." + std::to_string(octet));
  for (const char* sni : {"spread.test", "x.test", "other.test"}) {
    for (size_t i = 0; i + 1 < sources.size(); ++i) {
      for (const std::string& source : {sources[i], sources[i], sources[i + 1], sources[i + 1]}) {
        Decision expected = decide(config, source + ":1000", "192.0.2.1:443", sni);
        Decision memoized =
            decideTarget(config, source + ":2000", "192.0.2.1:443", std::nullopt, memos, sni);
        ASSERT_EQ(memoized.target, expected.target) << source << " " << sni;
        ASSERT_EQ(memoized.rule, expected.rule) << source << " " << sni;
      }
    }
  }
}

}  // namespace
}  // namespace tcpsteer
