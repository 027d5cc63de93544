#include "filter/core/config.h"

#include <gtest/gtest.h>

#include <string>

namespace tcpsteer {
namespace {

Config parseOk(const std::string& text) {
  ConfigResult result = parseConfig(text);
  EXPECT_TRUE(result.config) << text << " -> " << result.error.message();
  return result.config ? *result.config : Config();
}

ConfigError parseError(const std::string& text) {
  ConfigResult result = parseConfig(text);
  EXPECT_FALSE(result.config) << text;
  return result.error;
}

TEST(Config, EmptyAndIstioArePresetIstio) {
  for (const char* text : {"", "istio", "  istio\n", "\"istio\"", "{}", R"({"preset": "istio"})"}) {
    Config config = parseOk(text);
    ASSERT_EQ(config.targets.size(), 2u) << text;
    EXPECT_EQ(config.targets[0].name, "egress1");
    EXPECT_EQ(config.targets[0].cluster.render(443),
              "outbound|443||egress1.default.svc.cluster.local");
    EXPECT_EQ(config.targets[1].cluster.render(8080),
              "outbound|8080||egress2.default.svc.cluster.local");
    EXPECT_EQ(config.mode, Mode::kRoute);
    EXPECT_EQ(config.on_unroutable, OnUnroutable::kPassthrough);
    EXPECT_EQ(config.log_level, LogLevel::kInfo);
  }
}

TEST(Config, Standalone) {
  for (const char* text : {"standalone", "\"standalone\"", R"({"preset":"standalone"})"}) {
    Config config = parseOk(text);
    ASSERT_EQ(config.targets.size(), 2u);
    EXPECT_EQ(config.targets[1].cluster.render(443), "egress2");
    EXPECT_FALSE(config.needsDestinationPort());
  }
}

TEST(Config, FullDocument) {
  Config config = parseOk(R"({
    "targets": ["outbound|{port}||egress1.default.svc.cluster.local",
                {"name": "backup", "cluster": "outbound|{port}||egress3.backup.svc.cluster.local"},
                "plain-cluster"],
    "rules": [{"source_cidr": "10.0.0.0/8", "target": "backup"},
              {"last_octet": [0, 9], "target": 2},
              {"last_octet": 200, "target": "egress1"}],
    "port_map": {"443": 8443, "80": 8080},
    "match_ports": [443, 80, 443],
    "mode": "dry-run",
    "on_unroutable": "close",
    "log_level": "debug"
  })");
  ASSERT_EQ(config.targets.size(), 3u);
  EXPECT_EQ(config.targets[0].name, "egress1");
  EXPECT_EQ(config.targets[1].name, "backup");
  EXPECT_EQ(config.targets[2].name, "plain-cluster");
  ASSERT_EQ(config.rules.size(), 3u);
  EXPECT_EQ(config.rules[0].target, 1u);
  EXPECT_EQ(config.rules[1].octet_max, 9);
  EXPECT_EQ(config.rules[2].octet_min, 200);
  EXPECT_EQ(config.rules[2].octet_max, 200);
  EXPECT_EQ(config.mapPort(443), 8443);
  EXPECT_EQ(config.mapPort(80), 8080);
  EXPECT_EQ(config.mapPort(22), 22);
  EXPECT_EQ(config.match_ports, (std::vector<uint16_t>{80, 443}));
  EXPECT_TRUE(config.matchesPort(80));
  EXPECT_FALSE(config.matchesPort(22));
  EXPECT_EQ(config.mode, Mode::kDryRun);
  EXPECT_EQ(config.on_unroutable, OnUnroutable::kClose);
  EXPECT_EQ(config.log_level, LogLevel::kDebug);
}

TEST(Config, PresetWithOverrides) {
  Config config = parseOk(
      R"({"preset": "standalone", "mode": "dry-run", "rules": [{"last_octet": 7, "target": "egress1"}]})");
  EXPECT_EQ(config.targets[0].cluster.render(0), "egress1");
  EXPECT_EQ(config.mode, Mode::kDryRun);
  ASSERT_EQ(config.rules.size(), 1u);
}

struct ErrorCase {
  const char* config;
  const char* field;
  const char* problem_fragment;
};

class ConfigErrors : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(ConfigErrors, NamesFieldProblemAndExpectedForm) {
  const ErrorCase& c = GetParam();
  ConfigError error = parseError(c.config);
  EXPECT_EQ(error.field, c.field) << c.config;
  EXPECT_NE(error.problem.find(c.problem_fragment), std::string::npos) << error.problem;
  EXPECT_FALSE(error.expected.empty());
  std::string message = error.message();
  EXPECT_NE(message.find("expected"), std::string::npos);
  EXPECT_EQ(message.find('\n'), std::string::npos) << "one line";
}

INSTANTIATE_TEST_SUITE_P(
    Table, ConfigErrors,
    ::testing::Values(
        ErrorCase{"kubernetes", "", "not valid JSON"},
        ErrorCase{"{\"targets\": [}", "", "not valid JSON"},
        ErrorCase{"\"egress\"", "", "unknown preset"}, ErrorCase{"42", "", "must be a JSON object"},
        ErrorCase{"[\"egress1\"]", "", "must be a JSON object"},
        ErrorCase{R"({"target": []})", "target", "unknown field"},
        ErrorCase{R"({"preset": "x"})", "preset", "unknown preset"},
        ErrorCase{R"({"preset": ""})", "preset", "unknown preset"},
        ErrorCase{R"("")", "", "unknown preset"},
        ErrorCase{R"({"preset": 1})", "preset", "must be a string"},
        ErrorCase{R"({"preset": "istio", "targets": ["a"]})", "preset", "both"},
        ErrorCase{R"({"targets": []})", "targets", "1 to 64"},
        ErrorCase{R"({"targets": "egress1"})", "targets", "1 to 64"},
        ErrorCase{R"({"targets": [1]})", "targets[0]", "string or an object"},
        ErrorCase{R"({"targets": ["a", ""]})", "targets[1]", "1 to 255"},
        ErrorCase{R"({"targets": ["a b"]})", "targets[0]", "printable"},
        ErrorCase{R"({"targets": ["{port}{port}"]})", "targets[0]", "at most once"},
        ErrorCase{R"({"targets": ["{prt}"]})", "targets[0]", "at most once"},
        ErrorCase{R"({"targets": [{"name": "a"}]})", "targets[0]",
                  "string fields name and cluster"},
        ErrorCase{R"({"targets": [{"name": "a b", "cluster": "c"}]})", "targets[0].name",
                  "invalid target name"},
        ErrorCase{R"({"targets": [{"name": "a", "cluster": "c\u0001"}]})", "targets[0].cluster",
                  "printable"},
        ErrorCase{R"({"targets": ["x.ns", "x.other"]})", "targets[1].name", "same name"},
        ErrorCase{R"({"rules": {}})", "rules", "array"},
        ErrorCase{R"({"rules": [1]})", "rules[0]", "must be an object"},
        ErrorCase{R"({"rules": [{"source_cidr": "10.0.0.0/8"}]})", "rules[0]",
                  "exactly one of target and spread"},
        ErrorCase{R"({"rules": [{"target": 0, "spread": {"by": "namespace", "targets": [0, 1]}}]})",
                  "rules[0]", "exactly one of target and spread"},
        ErrorCase{R"({"rules": [{"destination": "10.0.0.0/8", "target": 0}]})", "rules[0].",
                  "unknown field 'destination'"},
        ErrorCase{R"({"rules": [{"name": "a b", "target": 0}]})", "rules[0].name",
                  "invalid rule name"},
        ErrorCase{R"({"rules": [{"name": "default", "target": 0}]})", "rules[0].name",
                  "invalid rule name"},
        ErrorCase{R"({"rules": [{"name": "a", "target": 0}, {"name": "a", "target": 1}]})",
                  "rules[1].name", "same name"},
        ErrorCase{R"({"rules": [{"namespace": "Billing", "target": 0}]})", "rules[0].namespace",
                  "Kubernetes name"},
        ErrorCase{R"({"rules": [{"namespace": [], "target": 0}]})", "rules[0].namespace",
                  "Kubernetes name"},
        ErrorCase{R"({"rules": [{"workload": 7, "target": 0}]})", "rules[0].workload",
                  "Kubernetes name"},
        ErrorCase{R"({"rules": [{"service_account": ["ok", "no way"], "target": 0}]})",
                  "rules[0].service_account", "Kubernetes name"},
        ErrorCase{R"({"rules": [{"labels": {}, "target": 0}]})", "rules[0].labels",
                  "label selector"},
        ErrorCase{R"({"rules": [{"labels": {"app": 1}, "target": 0}]})", "rules[0].labels",
                  "label selector"},
        ErrorCase{R"({"rules": [{"labels": {"/app": "x"}, "target": 0}]})", "rules[0].labels",
                  "label selector"},
        ErrorCase{R"({"rules": [{"destination_cidr": ["10.0.0.0/8", "1.2.3.4/8"], "target": 0}]})",
                  "rules[0].destination_cidr", "CIDR"},
        ErrorCase{R"({"rules": [{"destination_except": [], "target": 0}]})",
                  "rules[0].destination_except", "CIDR"},
        ErrorCase{R"({"rules": [{"ports": 0, "target": 0}]})", "rules[0].ports", "port"},
        ErrorCase{R"({"rules": [{"ports": "9000-8000", "target": 0}]})", "rules[0].ports", "port"},
        ErrorCase{R"({"rules": [{"ports": [443, "x"], "target": 0}]})", "rules[0].ports", "port"},
        ErrorCase{R"({"rules": [{"ports": [443, 70000], "target": 0}]})", "rules[0].ports", "port"},
        ErrorCase{R"({"rules": [{"sni": "", "target": 0}]})", "rules[0].sni", "server name"},
        ErrorCase{R"({"rules": [{"sni": "*", "target": 0}]})", "rules[0].sni", "server name"},
        ErrorCase{R"({"rules": [{"sni": "a..example.com", "target": 0}]})", "rules[0].sni",
                  "server name"},
        ErrorCase{R"({"rules": [{"sni": "api.example.com.", "target": 0}]})", "rules[0].sni",
                  "server name"},
        ErrorCase{R"({"rules": [{"sni": "a.*.example.com", "target": 0}]})", "rules[0].sni",
                  "server name"},
        ErrorCase{R"({"rules": [{"sni": ["ok.example.com", "bad name"], "target": 0}]})",
                  "rules[0].sni", "server name"},
        ErrorCase{R"({"rules": [{"target": ["egress1"]}]})", "rules[0].target", "2 to 8"},
        ErrorCase{R"({"rules": [{"target": ["egress1", "egress1"]}]})", "rules[0].target", "twice"},
        ErrorCase{R"({"rules": [{"target": ["egress1", "egress9"]}]})", "rules[0].target",
                  "no configured target"},
        ErrorCase{
            R"({"rules": [{"target": ["egress1", "egress2"]}, {"target": ["egress1+egress2", "egress1"]}]})",
            "rules[1].target", "no configured target"},
        ErrorCase{R"({"rules": [{"spread": {"by": "pod", "targets": [0, 1]}}]})", "rules[0].spread",
                  "unknown spread key"},
        ErrorCase{R"({"rules": [{"spread": {"by": "workload", "targets": [0]}}]})",
                  "rules[0].spread", "2 to 16"},
        ErrorCase{
            R"({"rules": [{"spread": {"by": "workload", "targets": {"egress1": 0, "egress2": 1}}}]})",
            "rules[0].spread", "badly weighted"},
        ErrorCase{
            R"({"rules": [{"spread": {"by": "workload", "targets": {"egress1": 10001, "egress2": 1}}}]})",
            "rules[0].spread", "badly weighted"},
        ErrorCase{
            R"({"rules": [{"spread": {"by": "workload", "targets": ["egress1", "egress1"]}}]})",
            "rules[0].spread", "repeated"},
        ErrorCase{R"({"rules": [{"spread": {"by": "workload"}}]})", "rules[0].spread",
                  "by and targets"},
        ErrorCase{R"({"rules": [{"source_cidr": "10.1.0.0/8", "target": 0}]})",
                  "rules[0].source_cidr", "CIDR"},
        ErrorCase{R"({"rules": [{"source_cidr": 10, "target": 0}]})", "rules[0].source_cidr",
                  "CIDR"},
        ErrorCase{R"({"rules": [{"last_octet": [9, 1], "target": 0}]})", "rules[0].last_octet",
                  "range"},
        ErrorCase{R"({"rules": [{"last_octet": 256, "target": 0}]})", "rules[0].last_octet",
                  "range"},
        ErrorCase{R"({"rules": [{"last_octet": 1, "target": 2}]})", "rules[0].target",
                  "no configured target"},
        ErrorCase{R"({"rules": [{"last_octet": 1, "target": "egress3"}]})", "rules[0].target",
                  "no configured target"},
        ErrorCase{R"({"port_map": [443]})", "port_map", "object"},
        ErrorCase{R"({"port_map": {"https": 443}})", "port_map.https", "key is not a port"},
        ErrorCase{R"({"port_map": {"443": 0}})", "port_map.443", "value is not a port"},
        ErrorCase{R"({"port_map": {"443": "8443"}})", "port_map.443", "value is not a port"},
        ErrorCase{R"({"port_map": {"443": 1, "0443": 2}})", "port_map", "mapped twice"},
        ErrorCase{R"({"match_ports": []})", "match_ports", "non-empty"},
        ErrorCase{R"({"match_ports": [443, 70000]})", "match_ports[1]", "not a port"},
        ErrorCase{R"({"mode": "block"})", "mode", "unknown mode"},
        ErrorCase{R"({"on_unroutable": "drop"})", "on_unroutable", "unknown policy"},
        ErrorCase{R"({"log_level": "verbose"})", "log_level", "unknown log level"}),
    [](const ::testing::TestParamInfo<ErrorCase>& info) {
      return "case" + std::to_string(info.index);
    });

// Valid JSON beyond the reader's limits is refused naming the limit (filter/README.md), not called
// invalid JSON.
TEST(Config, LimitsAreNamedNotCalledInvalidJson) {
  std::string port_map = R"({"port_map": {)";
  for (int port = 1; port <= 1100; ++port) {
    if (port > 1) port_map += ',';
    port_map += "\"" + std::to_string(port) + "\": 8080";
  }
  port_map += "}}";
  ASSERT_LT(port_map.size(), kMaxConfigBytes);
  ConfigError error = parseError(port_map);
  EXPECT_EQ(error.problem.find("not valid JSON"), std::string::npos) << error.problem;
  EXPECT_NE(error.problem.find("beyond the configuration reader's limits: more than 1024 members"),
            std::string::npos)
      << error.problem;
  std::string deep = R"({"rules": )" + std::string(40, '[') + std::string(40, ']') + "}";
  EXPECT_NE(parseError(deep).problem.find("limits: nesting deeper than 32 levels"),
            std::string::npos);
  // 1,024 entries are within the limit.
  std::string fits = R"({"port_map": {)";
  for (int port = 1; port <= 1023; ++port) {
    if (port > 1) fits += ',';
    fits += "\"" + std::to_string(port) + "\": 8080";
  }
  fits += "}}";
  EXPECT_TRUE(parseConfig(fits).config) << parseConfig(fits).error.message();
}

TEST(Config, RejectsOversizedAndBinary) {
  EXPECT_EQ(parseError(std::string(kMaxConfigBytes + 1, ' ')).problem,
            "configuration is larger than 64 KiB");
  EXPECT_NE(parseError(std::string("{\"mode\": \"route\"}\0", 18)).problem.find("not valid JSON"),
            std::string::npos);
  EXPECT_NE(parseError("{\"mode\": \"\xff\"}").problem.find("UTF-8"), std::string::npos);
}

}  // namespace
}  // namespace tcpsteer
