// The real tcpsteer.wasm, end to end through the host emulator with Envoy's semantics.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tcpsteer/host/vm.h"

namespace tcpsteer::host {
namespace {

const std::string& moduleBytes() {
  static const std::string bytes = [] {
    std::ifstream file(TCPSTEER_WASM_MODULE, std::ios::binary);
    EXPECT_TRUE(file) << TCPSTEER_WASM_MODULE << " missing: run make wasm";
    std::stringstream out;
    out << file.rdbuf();
    return out.str();
  }();
  return bytes;
}

std::span<const uint8_t> module() {
  return {reinterpret_cast<const uint8_t*>(moduleBytes().data()), moduleBytes().size()};
}

// Every FilterInHost test runs on both engines: the interpreter and the precompiled (wasm2c) one.
EngineChoice g_engine = EngineChoice::kInterpreter;

struct Filter {
  std::unique_ptr<Vm> vm;
  Vm::PluginStatus status = Vm::PluginStatus::kFailed;

  explicit Filter(const std::string& configuration, VmOptions options = {},
                  const std::string& root_id = "tcpsteer",
                  const std::map<std::string, std::string>& node_metadata = {}) {
    options.engine = g_engine;
    LoadReport report;
    vm = Vm::load(module(), std::move(options), &report);
    EXPECT_TRUE(vm) << (report.problems.empty() ? "" : report.problems[0]);
    if (!vm) return;
    EXPECT_EQ(vm->precompiled(), g_engine == EngineChoice::kPrecompiled);
    EXPECT_TRUE(vm->start());
    status = vm->startPlugin({root_id, configuration, "tcpsteer", "", node_metadata});
  }

  // Opens, routes and closes a connection; returns the cluster tcp_proxy would use ("" = its own).
  std::string route(const std::string& source, const std::string& destination = "93.184.216.34:443",
                    const std::map<std::string, std::string>& extra = {}) {
    uint32_t id = vm->newConnection(source, destination, extra);
    const Connection* c = vm->connection(id);
    std::string cluster = c->cluster_at_start.value_or("");
    closed_by_filter = c->closed_by_filter;
    auto recorded = c->filter_state.find("wasm.tcpsteer");
    decision = recorded != c->filter_state.end() ? recorded->second : "";
    vm->closeDownstream(id, PeerType::kRemote);
    vm->forgetConnection(id);
    return cluster;
  }

  bool logged(const std::string& fragment, LogLevel at_least = LogLevel::kTrace) const {
    for (const auto& line : vm->logLines(at_least)) {
      if (line.find(fragment) != std::string::npos) return true;
    }
    return false;
  }

  int64_t metric(const std::string& name) const { return vm->metricValue(name).value_or(-1); }

  bool closed_by_filter = false;
  std::string decision;  // the last connection's wasm.tcpsteer filter state
};

class FilterInHost : public ::testing::TestWithParam<EngineChoice> {
 protected:
  void SetUp() override { g_engine = GetParam(); }
  void TearDown() override { g_engine = EngineChoice::kInterpreter; }
};

INSTANTIATE_TEST_SUITE_P(Engines, FilterInHost,
                         ::testing::Values(EngineChoice::kInterpreter, EngineChoice::kPrecompiled),
                         [](const auto& info) {
                           return info.param == EngineChoice::kInterpreter ? "Interpreter"
                                                                           : "Precompiled";
                         });

TEST(FilterInHostLoad, ModuleLoadsAsEnvoyWould) {
  LoadReport report = Vm::inspect(module());
  EXPECT_TRUE(report.ok) << (report.problems.empty() ? "" : report.problems[0]);
  EXPECT_EQ(report.abi_version, "0_2_1");
  EXPECT_TRUE(report.unknown_imports.empty());
}

TEST_P(FilterInHost, SeedBehaviourIstioNames) {
  for (const char* configuration : {"", "istio"}) {
    Filter filter(configuration, {}, "tcp_wasm_filter");
    ASSERT_EQ(filter.status, Vm::PluginStatus::kOk);
    EXPECT_EQ(filter.route("10.244.0.12:40000"), "outbound|443||egress1.default.svc.cluster.local");
    EXPECT_EQ(filter.route("10.244.0.13:40000"), "outbound|443||egress2.default.svc.cluster.local");
    EXPECT_EQ(filter.route("10.244.0.13:40000", "10.96.4.4:8080"),
              "outbound|8080||egress2.default.svc.cluster.local");
    EXPECT_TRUE(filter.logged(
        "[TCP WASM] new connection src=10.244.0.12:40000 dst=93.184.216.34:443 last_octet=12 "
        "(even) -> target=egress1 cluster=outbound|443||egress1.default.svc.cluster.local"));
    EXPECT_EQ(filter.metric("tcpsteer.routed.egress1"), 1);
    EXPECT_EQ(filter.metric("tcpsteer.routed.egress2"), 2);
    EXPECT_FALSE(filter.vm->failed());
  }
}

TEST_P(FilterInHost, StandaloneNames) {
  Filter filter("standalone");
  EXPECT_EQ(filter.route("127.0.0.10:5000", "127.0.0.1:10000"), "egress1");
  EXPECT_EQ(filter.route("127.0.0.11:5000", "127.0.0.1:10000"), "egress2");
}

TEST_P(FilterInHost, RunsUnderAnyRootId) {
  for (const char* root_id : {"tcp_wasm_filter", "tcpsteer", "", "my-plugin"}) {
    Filter filter("standalone", {}, root_id);
    EXPECT_EQ(filter.route("10.0.0.2:1"), "egress1") << root_id;
    EXPECT_TRUE(
        filter.logged(std::string("configured root_id=") + (*root_id ? root_id : "(empty)")));
  }
}

TEST_P(FilterInHost, Ipv6AndMappedSources) {
  Filter filter("standalone");
  EXPECT_EQ(filter.route("[2001:db8::a0f]:5000", "[2001:db8::1]:443"), "egress2");
  EXPECT_EQ(filter.route("[2001:db8::a10]:5000", "[2001:db8::1]:443"), "egress1");
  EXPECT_EQ(filter.route("[::ffff:10.1.2.3]:5000"), "egress2");
}

TEST_P(FilterInHost, EveryOption) {
  Filter filter(
      R"({"targets": ["t0-{port}", {"name": "special", "cluster": "special-{port}"}, "t2-{port}"],
      "rules": [{"source_cidr": "10.9.0.0/16", "target": "special"},
                {"source_cidr": "fd00::/8", "target": 2},
                {"last_octet": [200, 209], "target": 0}],
      "port_map": {"443": 8443}, "match_ports": [443, 80], "log_level": "debug"})");
  ASSERT_EQ(filter.status, Vm::PluginStatus::kOk);
  EXPECT_EQ(filter.route("10.9.1.1:1"), "special-8443");            // CIDR rule, mapped port
  EXPECT_EQ(filter.route("[fd00::1]:1", "[fd00::2]:80"), "t2-80");  // v6 CIDR rule, unmapped port
  EXPECT_EQ(filter.route("192.168.1.205:1"), "t0-8443");            // octet range rule
  EXPECT_EQ(filter.route("192.168.1.4:1"), "special-8443");         // 4 % 3 = 1
  EXPECT_EQ(filter.route("192.168.1.4:1", "1.2.3.4:22"), "");       // not in match_ports
  EXPECT_EQ(filter.metric("tcpsteer.skipped"), 1);
  EXPECT_EQ(filter.metric("tcpsteer.routed.special"), 2);
  EXPECT_TRUE(filter.logged("rule=rule0"));
  filter.vm->setLogLevel(LogLevel::kInfo);  // debug decision lines are then not emitted
  filter.vm->clearLogs();
  filter.route("10.9.1.1:1");
  EXPECT_FALSE(filter.logged("new connection"));
}

TEST_P(FilterInHost, DryRunLogsButDoesNotRoute) {
  Filter filter(R"({"preset": "standalone", "mode": "dry-run"})");
  EXPECT_EQ(filter.route("10.0.0.3:1"), "");
  EXPECT_TRUE(filter.logged("cluster=egress2 (dry-run: not applied)"));
  EXPECT_EQ(filter.metric("tcpsteer.dry_run"), 1);
  EXPECT_EQ(filter.metric("tcpsteer.routed.egress2"), 1);
}

TEST_P(FilterInHost, UnroutablePassthroughAndClose) {
  Filter passthrough("standalone");
  EXPECT_EQ(passthrough.route("not-an-address"), "");
  EXPECT_FALSE(passthrough.closed_by_filter);
  EXPECT_TRUE(passthrough.logged(
      "unroutable: source address is malformed; leaving tcp_proxy's cluster", LogLevel::kWarn));
  EXPECT_EQ(passthrough.metric("tcpsteer.unroutable"), 1);

  Filter close(R"({"on_unroutable": "close"})");
  EXPECT_EQ(close.route("10.0.0.1:1", "93.184.216.34"),
            "");  // istio names need the destination port
  EXPECT_TRUE(close.closed_by_filter);
  EXPECT_TRUE(close.logged("destination address has no usable port; closing the connection"));
}

// The port comes from Envoy's destination.port (8 little-endian bytes); destination.address is the
// fallback when the host has no such property or gives something that is not a port.
TEST_P(FilterInHost, DestinationPortComesFromTheHostsNumberThenTheAddress) {
  auto port = [](int64_t value) {
    std::string bytes(sizeof value, '\0');
    std::memcpy(bytes.data(), &value, sizeof value);
    return bytes;
  };
  Filter filter("istio");
  const std::string egress1 = "outbound|8443||egress1.default.svc.cluster.local";
  // The number wins over the address's own port (Envoy never gives two different ones).
  EXPECT_EQ(filter.route("10.0.0.2:1", "93.184.216.34:443", {{"destination.port", port(8443)}}),
            egress1);
  // No number: the address is read.
  EXPECT_EQ(
      filter.route("10.0.0.2:1", "93.184.216.34:8443", {{"destination.port", kUnsetProperty}}),
      egress1);
  // Not a port, or not 8 bytes: the address is read.
  for (const std::string& bad : {port(-1), port(65536), std::string("\x01\xbb"), std::string()}) {
    EXPECT_EQ(filter.route("10.0.0.2:1", "93.184.216.34:8443", {{"destination.port", bad}}),
              egress1);
  }
  // Neither gives a port: unroutable, as before.
  EXPECT_EQ(filter.route("10.0.0.2:1", "93.184.216.34", {{"destination.port", port(70000)}}), "");
  EXPECT_TRUE(filter.logged("destination address has no usable port", LogLevel::kWarn));
  // Read through the number, the address is still printed on the decision line.
  Filter info(R"({"log_level": "warn"})");
  EXPECT_EQ(info.route("10.0.0.3:7", "93.184.216.34:443", {{"destination.port", port(443)}}),
            "outbound|443||egress2.default.svc.cluster.local");
  EXPECT_TRUE(info.logged("new connection src=10.0.0.3:7 dst=93.184.216.34:443 ", LogLevel::kWarn));
}

// Connections that overlap and close out of order: the SDK answers the newest stream's callbacks
// from a cache and every other one from its sorted registry; each must reach its own context.
TEST_P(FilterInHost, OverlappingConnectionsCloseInAnyOrder) {
  Filter filter("standalone");
  Vm& vm = *filter.vm;
  std::vector<uint32_t> ids;
  for (int octet : {2, 3, 4, 5})
    ids.push_back(vm.newConnection("10.0.0." + std::to_string(octet) + ":9", "192.0.2.1:443"));
  for (size_t i = 0; i < ids.size(); ++i)
    EXPECT_EQ(vm.connection(ids[i])->cluster_at_start, i % 2 == 0 ? "egress1" : "egress2");
  for (size_t i : {1u, 3u, 0u}) {  // the middle, the newest, then the oldest
    vm.closeDownstream(ids[i], PeerType::kRemote);
    vm.forgetConnection(ids[i]);
  }
  uint32_t later = vm.newConnection("10.0.0.7:9", "192.0.2.1:443");
  EXPECT_EQ(vm.connection(later)->cluster_at_start, "egress2");
  for (uint32_t id : {ids[2], later}) {
    vm.closeDownstream(id, PeerType::kRemote);
    vm.forgetConnection(id);
  }
  EXPECT_FALSE(vm.failed());
  EXPECT_EQ(vm.liveConnections(), 0u);
  EXPECT_EQ(filter.metric("tcpsteer.routed.egress1"), 2);
  EXPECT_EQ(filter.metric("tcpsteer.routed.egress2"), 3);
}

TEST_P(FilterInHost, MalformedAddressesNeverTrap) {
  Filter filter("istio");
  for (const std::string& source :
       {std::string(""), std::string("\xff\xfe"), std::string(5000, '9'),
        std::string("1.2.3.4\0:80", 10), std::string("[::1"), std::string("::::")}) {
    EXPECT_EQ(filter.route(source), "");
  }
  EXPECT_FALSE(filter.vm->failed());
  EXPECT_EQ(filter.metric("tcpsteer.unroutable"), 6);
}

TEST_P(FilterInHost, MissingPropertyIsWarnCounterContinue) {
  Filter filter("istio");
  EXPECT_EQ(filter.route("10.0.0.2:1", "1.2.3.4:443", {{"source.address", kUnsetProperty}}), "");
  EXPECT_FALSE(filter.closed_by_filter);
  EXPECT_TRUE(filter.logged("cannot read source.address: NotFound", LogLevel::kWarn));
  EXPECT_EQ(filter.metric("tcpsteer.errors"), 1);
  EXPECT_FALSE(filter.vm->failed());
}

TEST_P(FilterInHost, FilterStateRefusedIsWarnCounterContinue) {
  VmOptions options;
  options.filter_state_keys = {"envoy.string"};  // an Envoy without the tcp_proxy cluster factory
  Filter filter("istio", options);
  EXPECT_EQ(filter.route("10.0.0.2:1"), "");
  EXPECT_TRUE(
      filter.logged("set_envoy_filter_state(envoy.tcp_proxy.cluster=outbound|443||egress1.default."
                    "svc.cluster.local) "
                    "failed: NotFound",
                    LogLevel::kWarn));
  EXPECT_EQ(filter.metric("tcpsteer.errors"), 1);
}

TEST_P(FilterInHost, InvalidConfigurationsAreRejectedWithOneLine) {
  const char* invalid[] = {
      "kubernetes",
      R"({"targets": []})",
      R"({"mode": "block"})",
      R"({"rules": [{"source_cidr": "10.1.0.0/8", "target": 0}]})",
      R"({"port_map": {"443": 0}})",
      R"({"match_ports": [70000]})",
      R"({"on_unroutable": "drop"})",
      R"({"log_level": "loud"})",
      R"({"preset": "istio", "targets": ["a"]})",
      "{\"targets\": [\"\xff\"]}",
  };
  for (const char* configuration : invalid) {
    Filter filter(configuration);
    EXPECT_EQ(filter.status, Vm::PluginStatus::kConfigRejected) << configuration;
    auto errors = filter.vm->logLines(LogLevel::kError);
    ASSERT_EQ(errors.size(), 1u) << configuration;
    EXPECT_EQ(errors[0].rfind("[TCP WASM] invalid configuration", 0), 0u) << errors[0];
    EXPECT_NE(errors[0].find("; expected "), std::string::npos) << errors[0];
    EXPECT_FALSE(filter.vm->failed());
  }
}

TEST_P(FilterInHost, ReconfigureKeepsRunning) {
  Filter filter("standalone");
  EXPECT_EQ(filter.route("10.0.0.2:1"), "egress1");
  EXPECT_EQ(filter.vm->reconfigure(R"({"targets": ["x", "y", "z"]})"), Vm::PluginStatus::kOk);
  EXPECT_EQ(filter.route("10.0.0.2:1"), "z");
  EXPECT_EQ(filter.vm->reconfigure("garbage"), Vm::PluginStatus::kConfigRejected);
  EXPECT_EQ(filter.route("10.0.0.2:1"), "z");  // the last good configuration stays
}

TEST_P(FilterInHost, DataFlowsThroughUnchanged) {
  Filter filter("standalone");
  uint32_t id = filter.vm->newConnection("10.0.0.2:1", "10.0.0.3:443");
  EXPECT_EQ(filter.vm->downstreamData(id, "GET / HTTP/1.1\r\n\r\n", false), Action::kContinue);
  EXPECT_EQ(filter.vm->upstreamData(id, "HTTP/1.1 200 OK\r\n\r\n", true), Action::kContinue);
  const Connection* c = filter.vm->connection(id);
  EXPECT_EQ(c->forwarded_upstream, "GET / HTTP/1.1\r\n\r\n");
  EXPECT_EQ(c->forwarded_downstream, "HTTP/1.1 200 OK\r\n\r\n");
  EXPECT_TRUE(c->upstream_closed);
  filter.vm->closeDownstream(id, PeerType::kRemote);
  EXPECT_FALSE(filter.vm->failed());
}

// 100,000 connection lifecycles in one VM: no trap, no linear-memory growth after warm-up, every
// stream context deleted (memory would grow otherwise), and counters that add up.
TEST_P(FilterInHost, HundredThousandConnections) {
  VmOptions options;
  options.log_level = LogLevel::kWarn;  // production level: decision lines off
  Filter filter("istio", options);
  for (int i = 0; i < 1000; ++i) filter.route("10.244.0." + std::to_string(i % 256) + ":40000");
  uint64_t warm_memory = filter.vm->memoryBytes();
  for (int i = 1000; i < 100000; ++i) {
    std::string cluster =
        filter.route("10.244." + std::to_string((i / 256) % 256) + "." + std::to_string(i % 256) +
                     ":" + std::to_string(1024 + i % 60000));
    if ((i % 256) % 2 == 0) {
      ASSERT_EQ(cluster, "outbound|443||egress1.default.svc.cluster.local") << i;
    } else {
      ASSERT_EQ(cluster, "outbound|443||egress2.default.svc.cluster.local") << i;
    }
  }
  EXPECT_FALSE(filter.vm->failed());
  EXPECT_EQ(filter.vm->memoryBytes(), warm_memory);
  EXPECT_EQ(filter.vm->memoryBytes(), 65536u);  // one page: data, stack and heap together
  EXPECT_EQ(filter.metric("tcpsteer.routed.egress1") + filter.metric("tcpsteer.routed.egress2"),
            100000);
  EXPECT_EQ(filter.vm->liveConnections(), 0u);
}

// Issue #23's selection in the emulator: workload rules bound from the node metadata (rules for
// other workloads not tried, no counter), SNI and destination rules, a fallback list, and the
// decision recorded for the access log.
TEST_P(FilterInHost, SelectionByWorkloadSniAndDestination) {
  const std::map<std::string, std::string> billing = {
      {"NAMESPACE", "billing"}, {"WORKLOAD_NAME", "ledger"}, {"LABELS.app", "ledger"}};
  Filter filter(
      R"({"targets": [{"name": "e1", "cluster": "e1-{port}"}, {"name": "e2", "cluster": "e2-{port}"},
                  {"name": "audit", "cluster": "audit-{port}"}],
      "rules": [{"name": "shop", "namespace": "shop", "target": "audit"},
                {"name": "bank", "namespace": "billing", "labels": {"app": "ledger"}, "sni": "*.bank.example", "target": "audit"},
                {"name": "lab", "destination_cidr": "192.0.2.0/24", "ports": "8000-8099", "target": "e2"},
                {"name": "ha", "sni": "api.example.com", "target": ["e1", "e2"]}]})",
      {}, "tcpsteer", billing);
  ASSERT_EQ(filter.status, Vm::PluginStatus::kOk);
  EXPECT_TRUE(filter.logged("rules=4 (for this proxy: bank,lab,ha)"));
  auto sni = [](const std::string& name) {
    return std::map<std::string, std::string>{{"connection.requested_server_name", name}};
  };
  EXPECT_EQ(filter.route("10.0.0.3:1", "93.184.216.34:443", sni("Pay.Bank.Example")), "audit-443");
  EXPECT_EQ(filter.decision, "target=audit rule=bank");
  EXPECT_EQ(filter.route("10.0.0.3:2", "192.0.2.7:8080", sni("")), "e2-8080");
  EXPECT_EQ(filter.decision, "target=e2 rule=lab");
  EXPECT_EQ(filter.route("10.0.0.3:3", "192.0.2.7:443", sni("api.example.com")),
            "tcpsteer-failover|443|e1+e2");
  EXPECT_EQ(filter.decision, "target=e1+e2 rule=ha");
  EXPECT_EQ(filter.route("10.0.0.3:4", "93.184.216.34:443", sni("other.example")), "e1-443");
  EXPECT_EQ(filter.decision, "target=e1 rule=default");  // 3 % 3 = 0
  EXPECT_EQ(filter.metric("tcpsteer.rule.bank"), 1);
  EXPECT_EQ(filter.metric("tcpsteer.rule.ha"), 1);
  EXPECT_EQ(filter.metric("tcpsteer.routed.e1+e2"), 1);
  EXPECT_EQ(filter.metric("tcpsteer.rule.shop"), -1);  // never tried here: not defined
}

TEST_P(FilterInHost, WorkloadRulesNeedTheProxysMetadata) {
  Filter filter(R"({"rules": [{"labels": {"app": "x"}, "target": 0}]})");
  EXPECT_EQ(filter.status, Vm::PluginStatus::kConfigRejected);
  EXPECT_TRUE(
      filter.logged("[TCP WASM] invalid configuration at 'rules[0].labels': this proxy has no "
                    "node.metadata.LABELS",
                    LogLevel::kError));
  Filter labelled(R"({"rules": [{"labels": {"app": "x"}, "target": 0}]})", {}, "tcpsteer",
                  {{"LABELS.tier", "web"}});  // LABELS without the key: loads, never matches
  EXPECT_EQ(labelled.status, Vm::PluginStatus::kOk);
  EXPECT_TRUE(labelled.logged("rules=1 (for this proxy: )"));
}

TEST_P(FilterInHost, ShadowedRuleIsAWarningAndDryRunRecordsTheDecision) {
  Filter filter(R"({"preset": "standalone", "mode": "dry-run", "rules": [
      {"name": "all-443", "ports": 443, "target": 1},
      {"name": "api", "ports": 443, "sni": "api.example.com", "target": 0}]})");
  ASSERT_EQ(filter.status, Vm::PluginStatus::kOk);
  EXPECT_TRUE(
      filter.logged("[TCP WASM] configuration: rules[1] (api) can never match: rules[0] "
                    "(all-443) matches every connection it would",
                    LogLevel::kWarn));
  EXPECT_EQ(filter.route("10.0.0.2:1"), "");  // dry-run: tcp_proxy's own cluster
  EXPECT_EQ(filter.decision, "target=egress2 rule=all-443 dry-run");
  EXPECT_EQ(filter.metric("tcpsteer.rule.all-443"), 1);
}

}  // namespace
}  // namespace tcpsteer::host
