// tcpsteer plugin glue: turns the pure core's Decision into host calls. Every host failure becomes
// a warn line, a counter and Continue; nothing here traps.
#include <optional>
#include <string>
#include <vector>

#include "filter/core/config.h"
#include "filter/core/decision.h"
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

constexpr std::string_view kLogPrefix = "[TCP WASM] ";
constexpr size_t kMaxLoggedAddress = 64;

HostLogLevel toHost(LogLevel level) {
  return static_cast<HostLogLevel>(level);
}

// Host-provided text may be anything: keep log lines short and printable.
void appendPrintable(std::string& out, std::string_view text) {
  if (text.empty()) {
    out += "(empty)";
    return;
  }
  for (char c : text.substr(0, kMaxLoggedAddress)) out.push_back(c > ' ' && c < 0x7f ? c : '?');
  if (text.size() > kMaxLoggedAddress) out += "...";
}

void warn(std::string_view message) {
  std::string line(kLogPrefix);
  line += message;
  proxy_wasm::log(HostLogLevel::kWarn, line);
}

class TcpSteerRoot : public proxy_wasm::RootContext {
 public:
  using RootContext::RootContext;

  bool onConfigure(size_t configuration_size) override {
    std::string_view bytes;
    auto buffer = proxy_wasm::getBufferBytes(proxy_wasm::BufferType::kPluginConfiguration, 0,
                                             configuration_size);
    if (configuration_size > 0 && !buffer.ok()) {
      warn(concat(
          {"cannot read the plugin configuration: ", proxy_wasm::resultName(buffer.status)}));
      return false;
    }
    bytes = buffer.value.view();
    ConfigResult parsed = parseConfig(bytes);
    if (!parsed.config) {
      proxy_wasm::log(HostLogLevel::kError, concat({kLogPrefix, parsed.error.message()}));
      return false;
    }
    config_ = std::move(*parsed.config);
    defineMetrics(*config_);
    if (proxy_wasm::logEnabled(HostLogLevel::kInfo)) {
      std::string line(kLogPrefix);
      line += "configured root_id=";
      appendPrintable(line, rootId());
      line += " mode=";
      line += config_->mode == Mode::kRoute ? "route" : "dry-run";
      line += " targets=";
      for (size_t i = 0; i < config_->targets.size(); ++i) {
        if (i > 0) line += ',';
        line += config_->targets[i].name;
        line += '=';
        line += config_->targets[i].cluster.text();
      }
      line += " rules=";
      appendDecimal(line, config_->rules.size());
      proxy_wasm::log(HostLogLevel::kInfo, line);
    }
    return true;
  }

  const Config* config() const { return config_ ? &*config_ : nullptr; }

  void count(uint32_t metric_id) const {
    if (metric_id != 0) proxy_wasm::incrementMetric(metric_id, 1);
  }

  uint32_t routedMetric(size_t target) const { return target < kMaxTargets ? routed_[target] : 0; }
  uint32_t unroutableMetric() const { return unroutable_; }
  uint32_t skippedMetric() const { return skipped_; }
  uint32_t dryRunMetric() const { return dry_run_; }
  uint32_t errorsMetric() const { return errors_; }

 private:
  uint32_t define(const std::string& name) {
    auto id = proxy_wasm::defineMetric(MetricType::kCounter, name);
    if (!id.ok()) {
      warn(concat({"cannot define metric ", name, ": ", proxy_wasm::resultName(id.status)}));
      return 0;
    }
    return id.value;
  }

  // Same name -> same id in Envoy, so redefining on reconfigure is harmless.
  void defineMetrics(const Config& config) {
    for (size_t i = 0; i < config.targets.size() && i < kMaxTargets; ++i) {
      routed_[i] = define(concat({"tcpsteer.routed.", config.targets[i].name}));
    }
    unroutable_ = define("tcpsteer.unroutable");
    skipped_ = define("tcpsteer.skipped");
    dry_run_ = define("tcpsteer.dry_run");
    errors_ = define("tcpsteer.errors");
  }

  std::optional<Config> config_;
  uint32_t routed_[kMaxTargets] = {};  // metric id per target; a fixed array keeps the module small
  uint32_t unroutable_ = 0;
  uint32_t skipped_ = 0;
  uint32_t dry_run_ = 0;
  uint32_t errors_ = 0;
};

class TcpSteerStream : public proxy_wasm::Context {
 public:
  TcpSteerStream(uint32_t id, proxy_wasm::RootContext* root)
      : Context(id, root), root_(static_cast<TcpSteerRoot*>(root)) {}

  FilterStatus onNewConnection() override {
    const Config* config = root_->config();
    if (config == nullptr)
      return FilterStatus::kContinue;  // onConfigure failed; Envoy never gets here

    auto source = proxy_wasm::getProperty({"source", "address"});
    if (!source.ok()) return hostFailure("source.address", source.status);
    auto destination = proxy_wasm::getProperty({"destination", "address"});
    if (!destination.ok() && config->needsDestinationPort()) {
      return hostFailure("destination.address", destination.status);
    }

    Decision decision = decide(*config, source.value.view(), destination.value.view());
    switch (decision.verdict) {
      case Verdict::kRoute:
        return route(*config, decision, source.value.view(), destination.value.view());
      case Verdict::kSkip:
        root_->count(root_->skippedMetric());
        logDecision(toHost(config->log_level), source.value.view(), destination.value.view(),
                    "not rerouted: ", decision.reason);
        return FilterStatus::kContinue;
      case Verdict::kUnroutable:
        break;
    }
    root_->count(root_->unroutableMetric());
    bool close = config->on_unroutable == OnUnroutable::kClose;
    logDecision(HostLogLevel::kWarn, source.value.view(), destination.value.view(),
                "unroutable: ", decision.reason,
                close ? "; closing the connection" : "; leaving tcp_proxy's cluster");
    if (close) {
      proxy_wasm::closeStream(proxy_wasm::StreamType::kDownstream);
      return FilterStatus::kStopIteration;
    }
    return FilterStatus::kContinue;
  }

 private:
  FilterStatus route(const Config& config, const Decision& decision, std::string_view source,
                     std::string_view destination) {
    root_->count(root_->routedMetric(decision.target));
    bool dry_run = config.mode == Mode::kDryRun;
    if (proxy_wasm::logEnabled(toHost(config.log_level))) {
      std::string line = connectionLine(source, destination);
      line += "last_octet=";
      appendDecimal(line, decision.last_octet);
      line += decision.last_octet % 2 == 0 ? " (even)" : " (odd)";
      if (decision.rule >= 0) {
        line += " rule=rules[";
        appendDecimal(line, static_cast<uint64_t>(decision.rule));
        line += ']';
      }
      line += " -> target=";
      line += config.targets[decision.target].name;
      line += " cluster=";
      line += decision.cluster;
      if (dry_run) line += " (dry-run: not applied)";
      proxy_wasm::log(toHost(config.log_level), line);
    }
    if (dry_run) {
      root_->count(root_->dryRunMetric());
      return FilterStatus::kContinue;
    }
    auto result = proxy_wasm::callForeignFunction(
        kSetEnvoyFilterState,
        encodeSetEnvoyFilterStateArguments(kTcpProxyClusterKey, decision.cluster));
    if (!result.ok()) {
      root_->count(root_->errorsMetric());
      warn(concat({"set_envoy_filter_state(envoy.tcp_proxy.cluster=", decision.cluster,
                   ") failed: ", proxy_wasm::resultName(result.status),
                   "; connection stays on tcp_proxy's cluster"}));
    }
    return FilterStatus::kContinue;
  }

  FilterStatus hostFailure(std::string_view property, WasmResult status) {
    root_->count(root_->errorsMetric());
    warn(concat({"cannot read ", property, ": ", proxy_wasm::resultName(status),
                 "; connection stays on tcp_proxy's cluster"}));
    return FilterStatus::kContinue;
  }

  void logDecision(HostLogLevel level, std::string_view source, std::string_view destination,
                   std::string_view what, std::string_view reason, std::string_view tail = {}) {
    if (!proxy_wasm::logEnabled(level)) return;
    std::string line = connectionLine(source, destination);
    line += what;
    line += reason;
    line += tail;
    proxy_wasm::log(level, line);
  }

  // "[TCP WASM] new connection src=... dst=... ": the start of every per-connection line.
  static std::string connectionLine(std::string_view source, std::string_view destination) {
    std::string line(kLogPrefix);
    line += "new connection src=";
    appendPrintable(line, source);
    line += " dst=";
    appendPrintable(line, destination);
    line += ' ';
    return line;
  }

  TcpSteerRoot* root_;
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
