// tcpsteer plugin glue: turns the pure core's Decision into host calls. Every host failure becomes
// a warn line, a counter and Continue; nothing here traps.
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "filter/core/config.h"
#include "filter/core/decision.h"
#include "filter/core/decision_record.h"
#include "filter/core/filter_state.h"
#include "filter/core/text.h"
#include "proxy_wasm/api.h"
#include "proxy_wasm/context.h"

namespace tcpsteer {
namespace {

using proxy_wasm::FilterStatus;
using HostLogLevel = proxy_wasm::LogLevel;
using proxy_wasm::MetricType;
using proxy_wasm::WasmResult;
// Literals as string_view: appending a char* literal to a std::string costs a strlen call in the
// module.
using namespace std::string_view_literals;

constexpr std::string_view kLogPrefix = "[TCP WASM] ";
constexpr size_t kMaxLoggedAddress = 64;

HostLogLevel toHost(LogLevel level) {
  return static_cast<HostLogLevel>(level);
}

// Host-provided text may be anything: keep log lines short and printable. Out is std::string (the
// configured line) or a LogLine.
template <typename Out>
void appendPrintable(Out& out, std::string_view text) {
  if (text.empty()) {
    out += "(empty)"sv;
    return;
  }
  if constexpr (std::is_same_v<Out, std::string>) {
    for (char c : text.substr(0, kMaxLoggedAddress)) out.push_back(c > ' ' && c < 0x7f ? c : '?');
  } else {
    out.appendPrintable(text.substr(0, kMaxLoggedAddress));  // the per-connection path
  }
  if (text.size() > kMaxLoggedAddress) out += "..."sv;
}

// Per-connection text lives in these fixed buffers, never on the heap. The longest decision line
// is about 560 bytes (two cut addresses, a 32-byte target name, a 255-byte cluster name).
using LogLine = FixedText<640>;

void warn(std::initializer_list<std::string_view> parts) {
  LogLine line;
  line += kLogPrefix;
  for (std::string_view part : parts) line += part;
  proxy_wasm::log(HostLogLevel::kWarn, line.view());
}

const proxy_wasm::PropertyPath kSourceAddress("source\0address");
const proxy_wasm::PropertyPath kDestinationAddress("destination\0address");
const proxy_wasm::PropertyPath kDestinationPort("destination\0port");
const proxy_wasm::PropertyPath kServerName("connection\0requested_server_name");
// Where the decision is recorded for the access log: %FILTER_STATE(wasm.tcpsteer:PLAIN)%.
constexpr std::string_view kDecisionProperty = "tcpsteer";

class TcpSteerRoot : public proxy_wasm::RootContext {
 public:
  using RootContext::RootContext;

  bool onConfigure(size_t configuration_size) override {
    std::string_view bytes;
    auto buffer = proxy_wasm::getBufferBytes(proxy_wasm::BufferType::kPluginConfiguration, 0,
                                             configuration_size);
    if (configuration_size > 0 && !buffer.ok()) {
      warn({"cannot read the plugin configuration: ", proxy_wasm::resultName(buffer.status)});
      return false;
    }
    bytes = buffer.value.view();
    ConfigResult parsed = parseConfig(bytes);
    if (!parsed.config) {
      proxy_wasm::log(HostLogLevel::kError, concat({kLogPrefix, parsed.error.message()}));
      return false;
    }
    Config& config = *parsed.config;
    if (config.needs_workload) {
      if (auto error = bindWorkload(config, readIdentity(config))) {
        proxy_wasm::log(HostLogLevel::kError, concat({kLogPrefix, error->message()}));
        return false;
      }
    }
    for (const std::string& warning : config.warnings)
      proxy_wasm::log(HostLogLevel::kWarn, concat({kLogPrefix, "configuration: ", warning}));
    config_.emplace(std::move(config));  // emplace: no move-assignment code for Config
    encoded_.assign(config_->targets.size(), EncodedTarget());
    memos_.rules = RulesMemo();  // the rules' last answer was for the previous configuration
    defineMetrics(*config_);
    records_.build(*config_);
    if (proxy_wasm::logEnabled(HostLogLevel::kInfo)) {
      std::string line(kLogPrefix);
      line += "configured root_id="sv;
      appendPrintable(line, rootId());
      line += " mode="sv;
      line += config_->mode == Mode::kRoute ? "route"sv : "dry-run"sv;
      line += " targets="sv;
      for (size_t i = 0; i < config_->targets.size(); ++i) {
        if (i > 0) line += ',';
        line += config_->targets[i].name;
        line += '=';
        const ClusterTemplate& cluster = config_->targets[i].cluster;
        line += cluster.prefix;
        if (cluster.has_port) {
          line += "{port}"sv;
          line += cluster.suffix;
        }
      }
      line += " rules="sv;
      appendDecimal(line, config_->rules.size());
      line += " (for this proxy: "sv;
      for (size_t i = 0; i < config_->active_rules.size(); ++i) {
        if (i > 0) line += ',';
        line += config_->rules[config_->active_rules[i]].name;
      }
      line += ')';
      proxy_wasm::log(HostLogLevel::kInfo, line);
    }
    return true;
  }

  const Config* config() const { return config_ ? &*config_ : nullptr; }
  AddressMemos& memos() { return memos_; }

  // The set_envoy_filter_state arguments for a target and port; cluster() is the name inside them.
  struct EncodedTarget {
    FilterStateArguments arguments;
    size_t cluster_offset = 0;
    int32_t port = -1;  // the port they were rendered for; -1 = not yet
    std::string_view cluster() const { return arguments.view().substr(cluster_offset); }
  };

  // A sidecar's connections go to few ports, so each target keeps the arguments of the last port
  // it was rendered for: rendering and encoding happen once per (target, port) change, not per
  // connection. A template without "{port}" renders once.
  const EncodedTarget& encodedTarget(const Config& config, size_t target, uint16_t port) {
    const ClusterTemplate& cluster = config.targets[target].cluster;
    int32_t key = cluster.has_port ? port : 0;
    EncodedTarget& encoded = encoded_[target];
    if (encoded.port != key) {
      ClusterName name;
      cluster.renderInto(port, name);
      encoded.arguments = FilterStateArguments();
      encodeTcpProxyCluster(name.view(), encoded.arguments);
      encoded.cluster_offset = encoded.arguments.size() - name.size();
      encoded.port = key;
    }
    return encoded;
  }

  std::string_view recorded(const Config& config, const Decision& decision) {
    return records_.of(config, decision, spread_recorded_);
  }

  // connection.requested_server_name, kept here until the next connection reads it: the stream
  // context then has nothing to free (a member there costs every connection a destructor).
  std::string_view readServerName() {
    proxy_wasm::getProperty(kServerName, server_name_);
    return server_name_.view();
  }

  // destination.address, kept like the SNI.
  std::string_view readDestination(WasmResult* status) {
    *status = proxy_wasm::getProperty(kDestinationAddress, destination_);
    return destination_.view();
  }

  // Per rule (every index of Config::rules has one; 0 when the rule cannot match this proxy).
  uint32_t ruleMetric(int rule) const { return rule_metrics_[static_cast<size_t>(rule)]; }

  void count(uint32_t metric_id) const {
    if (metric_id != 0) proxy_wasm::incrementMetric(metric_id, 1);
  }

  uint32_t routedMetric(size_t target) const { return target < kMaxTargets ? routed_[target] : 0; }
  uint32_t unroutableMetric() const { return unroutable_; }
  uint32_t skippedMetric() const { return skipped_; }
  uint32_t dryRunMetric() const { return dry_run_; }
  uint32_t errorsMetric() const { return errors_; }

 private:
  // The proxy's identity from its node metadata, read once per configuration and only when a rule
  // asks: Istio sets NAMESPACE, WORKLOAD_NAME, SERVICE_ACCOUNT and LABELS on every sidecar.
  static WorkloadIdentity readIdentity(const Config& config) {
    WorkloadIdentity identity;
    // xds.node.metadata.* (Envoy 1.29 and later); the top-level node.* of older Envoys (Istio
    // 1.24 and before) was removed in Envoy 1.33.
    auto read = [](std::string_view key,
                   std::string_view label) -> proxy_wasm::Result<std::string> {
      for (bool xds : {true, false}) {
        auto value = label.empty()
                         ? (xds ? proxy_wasm::getProperty({"xds", "node", "metadata", key})
                                : proxy_wasm::getProperty({"node", "metadata", key}))
                         : (xds ? proxy_wasm::getProperty({"xds", "node", "metadata", key, label})
                                : proxy_wasm::getProperty({"node", "metadata", key, label}));
        if (value.status != WasmResult::kNotFound)
          return {value.status, std::string(value.value.view())};
      }
      return {WasmResult::kNotFound, {}};
    };
    auto text = [&](std::string_view key) -> std::optional<std::string> {
      auto value = read(key, {});
      if (!value.ok()) return std::nullopt;
      return std::move(value.value);
    };
    identity.namespace_name = text("NAMESPACE");
    identity.workload_name = text("WORKLOAD_NAME");
    identity.service_account = text("SERVICE_ACCOUNT");
    for (const std::string& key : labelKeys(config)) {
      if (auto value = read("LABELS", key); value.ok()) {
        identity.has_labels = true;
        identity.labels.emplace_back(key, std::move(value.value));
      }
    }
    // A label the proxy lacks is not the proxy lacking labels: ask for the map itself (Envoy
    // answers a map, not a string; any answer but NotFound means it is there).
    identity.has_labels = identity.has_labels || read("LABELS", {}).status != WasmResult::kNotFound;
    return identity;
  }

  uint32_t define(const std::string& name) {
    auto id = proxy_wasm::defineMetric(MetricType::kCounter, name);
    if (!id.ok()) {
      warn({"cannot define metric ", name, ": ", proxy_wasm::resultName(id.status)});
      return 0;
    }
    return id.value;
  }

  // Same name -> same id in Envoy, so redefining on reconfigure is harmless.
  void defineMetrics(const Config& config) {
    for (size_t i = 0; i < config.targets.size() && i < kMaxTargets; ++i) {
      routed_[i] = define(concat({"tcpsteer.routed.", config.targets[i].name}));
    }
    rule_metrics_.assign(config.rules.size(), 0);
    for (uint16_t rule : config.active_rules)
      rule_metrics_[rule] = define(concat({"tcpsteer.rule.", config.rules[rule].name}));
    unroutable_ = define("tcpsteer.unroutable");
    skipped_ = define("tcpsteer.skipped");
    dry_run_ = define("tcpsteer.dry_run");
    errors_ = define("tcpsteer.errors");
  }

  std::optional<Config> config_;
  std::vector<EncodedTarget> encoded_;  // one per target
  AddressMemos memos_;                  // the last connection's addresses
  uint32_t routed_[kMaxTargets] = {};  // metric id per target; a fixed array keeps the module small
  std::vector<uint32_t> rule_metrics_;  // per rule; 0 for the rules this proxy never tries
  DecisionRecords records_;             // the decision texts for the access log
  std::string spread_recorded_;         // the last spread-per-connection decision's text
  proxy_wasm::WasmData server_name_;    // the last connection's SNI
  proxy_wasm::WasmData destination_;    // and destination.address, when read
  uint32_t unroutable_ = 0;
  uint32_t skipped_ = 0;
  uint32_t dry_run_ = 0;
  uint32_t errors_ = 0;
};

// An address the core parsed is printable as it is (and never empty); anything else is checked
// byte by byte.
void appendAddress(LogLine& line, std::string_view address, bool valid) {
  if (valid && address.size() <= kMaxLoggedAddress) {
    line.append(address);
  } else {
    appendPrintable(line, address);
  }
}

class TcpSteerStream : public proxy_wasm::Context {
 public:
  TcpSteerStream(uint32_t id, proxy_wasm::RootContext* root)
      : Context(id, root), root_(static_cast<TcpSteerRoot*>(root)) {}

  // The last freed context is kept for the next connection (a worker's connections come and go
  // one after another): a new context costs a pointer swap instead of the allocator's two calls.
  // The VM is single-threaded.
  static void* operator new(size_t size) {
    if (size != sizeof(TcpSteerStream) || spare_ == nullptr) return ::operator new(size);
    return std::exchange(spare_, nullptr);
  }
  static void operator delete(void* context, size_t size) {
    if (size != sizeof(TcpSteerStream) || spare_ != nullptr) return ::operator delete(context);
    spare_ = context;
  }

  FilterStatus onNewConnection() override {
    const Config* config = root_->config();
    if (config == nullptr)
      return FilterStatus::kContinue;  // onConfigure failed; Envoy never gets here

    // One host call for the level: every line of this connection is checked against it.
    host_level_ = proxy_wasm::logLevel();
    auto source_data = proxy_wasm::getProperty(kSourceAddress);
    if (!source_data.ok()) return hostFailure("source.address", source_data.status);
    std::string_view source = source_data.value.view();
    // The port comes from Envoy's destination.port, a number: no address to read and parse. The
    // address is read only when a line prints it, or when the host has no destination.port.
    DestinationText destination(root_);
    std::optional<uint16_t> port;
    // A rules configuration that reads the destination address takes the port from it too: one
    // host call instead of two.
    if (config->needsDestinationPort() && !config->needs_destination_address)
      port = destinationPort();
    if ((config->needsDestinationPort() && !port) || config->needs_destination_address) {
      destination.view();
      if (destination.status != WasmResult::kOk)
        return hostFailure("destination.address", destination.status);
    }
    // The SNI only when a rule of this proxy asks; empty when the client sent none (or the
    // listener has no TLS inspector).
    std::string_view server_name;
    if (config->needs_server_name) server_name = root_->readServerName();

    Decision decision =
        decideTarget(*config, source, destination.read ? destination.view() : std::string_view(),
                     port, root_->memos(), server_name);
    switch (decision.verdict) {
      case Verdict::kRoute:
        return route(*config, decision, source, destination, server_name);
      case Verdict::kSkip:
        root_->count(root_->skippedMetric());
        logDecision(toHost(config->log_level), decision, source, destination, "not rerouted: ");
        return FilterStatus::kContinue;
      case Verdict::kUnroutable:
        break;
    }
    root_->count(root_->unroutableMetric());
    bool close = config->on_unroutable == OnUnroutable::kClose;
    logDecision(HostLogLevel::kWarn, decision, source, destination, "unroutable: ",
                close ? "; closing the connection" : "; leaving tcp_proxy's cluster");
    if (close) {
      proxy_wasm::closeStream(proxy_wasm::StreamType::kDownstream);
      return FilterStatus::kStopIteration;
    }
    return FilterStatus::kContinue;
  }

 private:
  // destination.address, read on first use.
  // destination.address, read on first use; the bytes are kept by the root (see readServerName).
  struct DestinationText {
    explicit DestinationText(TcpSteerRoot* owner) : root(owner) {}
    TcpSteerRoot* root;
    WasmResult status = WasmResult::kOk;
    bool read = false;
    std::string_view text;
    std::string_view view() {
      if (!read) {
        text = root->readDestination(&status);
        read = true;
      }
      return text;
    }
  };

  // destination.port: an int64 in 8 little-endian bytes; nothing if the host has no such property
  // or gives something that is not a port.
  static std::optional<uint16_t> destinationPort() {
    auto value = proxy_wasm::getProperty(kDestinationPort);
    if (!value.ok() || value.value.view().size() != sizeof(int64_t)) return std::nullopt;
    int64_t port = 0;
    __builtin_memcpy(&port, value.value.view().data(), sizeof(port));
    if (port < 0 || port > 65535) return std::nullopt;
    return static_cast<uint16_t>(port);
  }

  bool enabled(HostLogLevel level) const { return level >= host_level_; }

  FilterStatus route(const Config& config, const Decision& decision, std::string_view source,
                     DestinationText& destination, std::string_view server_name) {
    root_->count(root_->routedMetric(decision.target));
    if (decision.rule >= 0) root_->count(root_->ruleMetric(decision.rule));
    bool dry_run = config.mode == Mode::kDryRun;
    std::string_view rule_name =
        decision.rule >= 0 ? config.rules[decision.rule].name : "default"sv;
    const auto& encoded = root_->encodedTarget(config, decision.target, decision.port);
    HostLogLevel level = toHost(config.log_level);
    if (enabled(level)) {
      LogLine line;
      startLine(line, decision, source, destination);
      line += "last_octet=";
      line.appendDecimal(decision.last_octet);
      line += decision.last_octet % 2 == 0 ? " (even)" : " (odd)";
      if (config.needs_server_name) {
        line += " sni=";
        appendPrintable(line, server_name);
      }
      if (decision.rule >= 0) {  // without one, last_octet above is the reason
        line += " rule=";
        line += rule_name;
      }
      line += " -> target=";
      line += config.targets[decision.target].name;
      line += " cluster=";
      line += encoded.cluster();
      if (dry_run) line += " (dry-run: not applied)";
      proxy_wasm::log(level, line.view());
    }
    // The target and the rule, for the access log (also in dry-run: what would have happened).
    if (auto status = proxy_wasm::setProperty(kDecisionProperty, root_->recorded(config, decision));
        status != WasmResult::kOk) {
      root_->count(root_->errorsMetric());
      warn({"cannot record the decision (", kDecisionProperty,
            "): ", proxy_wasm::resultName(status)});
    }
    if (dry_run) {
      root_->count(root_->dryRunMetric());
      return FilterStatus::kContinue;
    }
    auto result = proxy_wasm::callForeignFunction(kSetEnvoyFilterState, encoded.arguments.view());
    if (!result.ok()) {
      root_->count(root_->errorsMetric());
      warn({"set_envoy_filter_state(envoy.tcp_proxy.cluster=", encoded.cluster(), ") failed: ",
            proxy_wasm::resultName(result.status), "; connection stays on tcp_proxy's cluster"});
    }
    return FilterStatus::kContinue;
  }

  FilterStatus hostFailure(std::string_view property, WasmResult status) {
    root_->count(root_->errorsMetric());
    warn({"cannot read ", property, ": ", proxy_wasm::resultName(status),
          "; connection stays on tcp_proxy's cluster"});
    return FilterStatus::kContinue;
  }

  void logDecision(HostLogLevel level, const Decision& decision, std::string_view source,
                   DestinationText& destination, std::string_view what,
                   std::string_view tail = {}) {
    if (!enabled(level)) return;
    LogLine line;
    startLine(line, decision, source, destination);
    line += what;
    line += decision.reason;
    line += tail;
    proxy_wasm::log(level, line.view());
  }

  // "[TCP WASM] new connection src=... dst=... ": the start of every per-connection line.
  static void startLine(LogLine& line, const Decision& decision, std::string_view source,
                        DestinationText& destination) {
    line += kLogPrefix;
    line += "new connection src=";
    appendAddress(line, source, decision.source_valid);
    line += " dst=";
    appendAddress(line, destination.view(), decision.destination_valid);
    line += ' ';
  }

  TcpSteerRoot* root_;
  HostLogLevel host_level_ = HostLogLevel::kInfo;
  static inline void* spare_ = nullptr;  // one freed context, or null
};

// Empty root_id: the fallback, so the filter runs under any root_id (the seed uses
// tcp_wasm_filter).
const proxy_wasm::RegisterContextFactory kRegistration(
    [](uint32_t id, proxy_wasm::RootContext* root) -> std::unique_ptr<proxy_wasm::Context> {
      return std::make_unique<TcpSteerStream>(id, root);
    },
    [](uint32_t id, std::string_view root_id) -> std::unique_ptr<proxy_wasm::RootContext> {
      return std::make_unique<TcpSteerRoot>(id, root_id);
    });

}  // namespace
}  // namespace tcpsteer
