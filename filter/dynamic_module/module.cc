// tcpsteer as an Envoy dynamic module (libtcpsteer_dm.so): the network-filter glue over
// filter/core, the same configuration, decisions, log lines and counters as tcpsteer.wasm, without
// a wasm VM. Envoy calls the hooks below (extern "C", the only exported symbols); no exception
// crosses them: a failure in a hook is logged and fails closed.
#include <sys/stat.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "filter/core/config.h"
#include "filter/core/decision.h"
#include "filter/core/decision_record.h"
#include "filter/core/filter_state.h"
#include "filter/core/text.h"
#include "filter/dynamic_module/abi.h"

#define TCPSTEER_DM_EXPORT extern "C" __attribute__((visibility("default")))

namespace tcpsteer::dm {
namespace {

using namespace std::string_view_literals;

constexpr std::string_view kLogPrefix =
    "[TCP WASM] ";  // the wasm module's prefix: one grep for both
// Where the decision is recorded, the key the wasm module's proxy_set_property gives (Envoy
// prefixes "wasm."), so one access-log format prints either module's decisions.
constexpr std::string_view kDecisionKey = "wasm.tcpsteer";
constexpr size_t kMaxLoggedText = 64;
constexpr off_t kMaxLabelsFileBytes =
    off_t{256} * 1024;  // Kubernetes caps a pod's labels far below this
using LogLine = FixedText<640>;

envoy_dm_module_buffer buffer(std::string_view text) {
  return {text.data(), text.size()};
}

void log(envoy_dm_log_level level, std::string_view message) {
  envoy_dynamic_module_callback_log(level, buffer(message));
}

envoy_dm_log_level toEnvoy(LogLevel level) {
  return static_cast<envoy_dm_log_level>(level);
}

// The proxy's identity for workload rules. Envoy gives a dynamic module no node metadata, so it is
// read where istio-proxy has it: POD_NAMESPACE, ISTIO_META_WORKLOAD_NAME and SERVICE_ACCOUNT in its
// environment, the pod labels in the podinfo volume (key="value" lines). TCPSTEER_LABELS_FILE
// names another labels file.
WorkloadIdentity identityFromEnvironment(const Config& config) {
  WorkloadIdentity identity;
  auto variable = [](const char* name) -> std::optional<std::string> {
    const char* value = std::getenv(name);  // NOLINT(concurrency-mt-unsafe): main thread, at config
    if (value == nullptr) return std::nullopt;
    return std::string(value);
  };
  identity.namespace_name = variable("POD_NAMESPACE");
  identity.workload_name = variable("ISTIO_META_WORKLOAD_NAME");
  identity.service_account = variable("SERVICE_ACCOUNT");
  std::string path = variable("TCPSTEER_LABELS_FILE").value_or("/etc/istio/pod/labels");
  // A regular file of reasonable size only: a FIFO or a device would block or never end, and
  // this runs on Envoy's main thread.
  struct stat info{};
  std::ifstream labels;
  if (::stat(path.c_str(), &info) == 0 && S_ISREG(info.st_mode) &&
      info.st_size <= kMaxLabelsFileBytes)
    labels.open(path);
  if (labels.is_open()) {
    identity.has_labels = true;
    std::vector<std::string> wanted = labelKeys(config);
    std::string line;
    while (std::getline(labels, line)) {
      size_t equals = line.find('=');
      if (equals == std::string::npos) continue;
      std::string key = line.substr(0, equals);
      std::string value = line.substr(equals + 1);
      if (value.size() >= 2 && value.front() == '"' && value.back() == '"')
        value = value.substr(1, value.size() - 2);
      for (const std::string& name : wanted) {
        if (name == key) identity.labels.emplace_back(key, value);
      }
    }
  }
  return identity;
}

// One per filter configuration: built on the main thread, then only read by the workers.
struct ModuleConfig {
  Config config;
  uint64_t generation = 0;
  std::vector<size_t> routed;  // counter id per target
  std::vector<size_t> rules;   // per rule; SIZE_MAX for the rules this proxy never tries
  size_t unroutable = SIZE_MAX;
  size_t skipped = SIZE_MAX;
  size_t dry_run = SIZE_MAX;
  size_t errors = SIZE_MAX;
  DecisionRecords records;  // the decision texts for the access log
};

std::atomic<uint64_t> g_generation{0};

// A worker's memory of its previous connection (addresses, the rules' answer), for the config it
// was made with: each worker thread runs its connections one after another.
struct WorkerMemo {
  uint64_t generation = UINT64_MAX;
  AddressMemos memos;
};
thread_local WorkerMemo t_memo;  // NOLINT(cppcoreguidelines-avoid-non-const-global-variables)

size_t defineCounter(envoy_dm_config_envoy_ptr envoy_config, const std::string& name) {
  size_t id = SIZE_MAX;
  if (envoy_dynamic_module_callback_network_filter_config_define_counter(
          envoy_config, buffer(name), &id) != envoy_dm_metrics_result_Success) {
    log(envoy_dm_log_level_Warn, concat({kLogPrefix, "cannot define metric ", name}));
    return SIZE_MAX;
  }
  return id;
}

void count(envoy_dm_filter_envoy_ptr filter, size_t id) {
  if (id != SIZE_MAX) envoy_dynamic_module_callback_network_filter_increment_counter(filter, id, 1);
}

// The configuration of Envoy's filter_config, as the wasm module reads its plugin configuration:
// the same reader, the same refusal line. nullptr refuses the filter config (Envoy rejects it).
std::unique_ptr<ModuleConfig> makeConfig(envoy_dm_config_envoy_ptr envoy_config,
                                         std::string_view bytes) {
  ConfigResult parsed = parseConfig(bytes);
  if (!parsed.config) {
    log(envoy_dm_log_level_Error, concat({kLogPrefix, parsed.error.message()}));
    return nullptr;
  }
  auto module = std::make_unique<ModuleConfig>();
  module->config = std::move(*parsed.config);
  Config& config = module->config;
  if (config.needs_workload) {
    if (auto error = bindWorkload(config, identityFromEnvironment(config))) {
      log(envoy_dm_log_level_Error, concat({kLogPrefix, error->message()}));
      return nullptr;
    }
  }
  for (const std::string& warning : config.warnings)
    log(envoy_dm_log_level_Warn, concat({kLogPrefix, "configuration: ", warning}));
  module->generation = g_generation.fetch_add(1) + 1;
  for (const Target& target : config.targets)
    module->routed.push_back(defineCounter(envoy_config, "tcpsteer.routed." + target.name));
  module->rules.assign(config.rules.size(), SIZE_MAX);
  for (uint16_t rule : config.active_rules)
    module->rules[rule] = defineCounter(envoy_config, "tcpsteer.rule." + config.rules[rule].name);
  module->records.build(config);
  module->unroutable = defineCounter(envoy_config, "tcpsteer.unroutable");
  module->skipped = defineCounter(envoy_config, "tcpsteer.skipped");
  module->dry_run = defineCounter(envoy_config, "tcpsteer.dry_run");
  module->errors = defineCounter(envoy_config, "tcpsteer.errors");
  if (envoy_dynamic_module_callback_log_enabled(envoy_dm_log_level_Info)) {
    std::string line(kLogPrefix);
    line += "configured dynamic module mode=";
    line += config.mode == Mode::kRoute ? "route"sv : "dry-run"sv;
    line += " targets=";
    for (size_t i = 0; i < config.targets.size(); ++i) {
      if (i > 0) line += ',';
      line += config.targets[i].name;
      line += '=';
      line += config.targets[i].cluster.text();
    }
    line += " rules=";
    appendDecimal(line, config.rules.size());
    line += " (for this proxy: ";
    for (size_t i = 0; i < config.active_rules.size(); ++i) {
      if (i > 0) line += ',';
      line += config.rules[config.active_rules[i]].name;
    }
    line += ')';
    log(envoy_dm_log_level_Info, line);
  }
  return module;
}

// "ip:port" ("[ip]:port" for IPv6) from an address Envoy gives as the IP and the port apart: the
// text the core reads, as Envoy's wasm host prints it.
void socketText(const envoy_dm_envoy_buffer& ip, uint32_t port, FixedText<96>& out) {
  std::string_view text(ip.ptr, ip.length);
  bool v6 = text.find(':') != std::string_view::npos;
  if (v6) out.push_back('[');
  out.append(text.substr(0, 80));
  if (v6) out.push_back(']');
  out.push_back(':');
  out.appendDecimal(port);
}

void appendText(LogLine& line, std::string_view text) {
  if (text.empty()) {
    line += "(empty)"sv;
    return;
  }
  line.appendPrintable(text.substr(0, kMaxLoggedText));
  if (text.size() > kMaxLoggedText) line += "..."sv;
}

envoy_dm_data_status onNewConnection(envoy_dm_filter_envoy_ptr filter, const ModuleConfig& module) {
  const Config& config = module.config;
  if (t_memo.generation != module.generation) {
    t_memo = WorkerMemo();
    t_memo.generation = module.generation;
  }
  FixedText<96> source;
  envoy_dm_envoy_buffer ip{};
  uint32_t port = 0;
  if (envoy_dynamic_module_callback_network_filter_get_remote_address(filter, &ip, &port))
    socketText(ip, port, source);  // not an IP (a pipe): empty, which the core calls unroutable
  FixedText<96> destination;
  std::optional<uint16_t> destination_port;
  if (envoy_dynamic_module_callback_network_filter_get_local_address(filter, &ip, &port)) {
    destination_port = static_cast<uint16_t>(port);
    socketText(ip, port, destination);
  }
  std::string_view server_name;
  envoy_dm_envoy_buffer name{};
  if (config.needs_server_name &&
      envoy_dynamic_module_callback_network_filter_get_requested_server_name(filter, &name)) {
    server_name = std::string_view(name.ptr, name.length);
  }
  Decision decision = decideTarget(config, source.view(), destination.view(), destination_port,
                                   t_memo.memos, server_name);
  auto level = toEnvoy(config.log_level);
  auto start_line = [&](LogLine& line) {
    line += kLogPrefix;
    line += "new connection src=";
    appendText(line, source.view());
    line += " dst=";
    appendText(line, destination.view());
    line += ' ';
  };
  switch (decision.verdict) {
    case Verdict::kRoute:
      break;
    case Verdict::kSkip:
      count(filter, module.skipped);
      if (envoy_dynamic_module_callback_log_enabled(level)) {
        LogLine line;
        start_line(line);
        line += "not rerouted: ";
        line += decision.reason;
        log(level, line.view());
      }
      return envoy_dm_data_status_Continue;
    case Verdict::kUnroutable: {
      count(filter, module.unroutable);
      bool close = config.on_unroutable == OnUnroutable::kClose;
      if (envoy_dynamic_module_callback_log_enabled(envoy_dm_log_level_Warn)) {
        LogLine line;
        start_line(line);
        line += "unroutable: ";
        line += decision.reason;
        line += close ? "; closing the connection"sv : "; leaving tcp_proxy's cluster"sv;
        log(envoy_dm_log_level_Warn, line.view());
      }
      if (close) {
        envoy_dynamic_module_callback_network_filter_close(filter, envoy_dm_close_type_NoFlush);
        return envoy_dm_data_status_StopIteration;
      }
      return envoy_dm_data_status_Continue;
    }
  }
  count(filter, module.routed[decision.target]);
  if (decision.rule >= 0) count(filter, module.rules[static_cast<size_t>(decision.rule)]);
  ClusterName cluster;
  config.targets[decision.target].cluster.renderInto(decision.port, cluster);
  bool dry_run = config.mode == Mode::kDryRun;
  if (envoy_dynamic_module_callback_log_enabled(level)) {
    LogLine line;
    start_line(line);
    line += "last_octet=";
    line.appendDecimal(decision.last_octet);
    line += decision.last_octet % 2 == 0 ? " (even)"sv : " (odd)"sv;
    if (config.needs_server_name) {
      line += " sni=";
      appendText(line, server_name);
    }
    if (decision.rule >= 0) {
      line += " rule=";
      line += config.rules[static_cast<size_t>(decision.rule)].name;
    }
    line += " -> target=";
    line += config.targets[decision.target].name;
    line += " cluster=";
    line += cluster.view();
    if (dry_run) line += " (dry-run: not applied)";
    log(level, line.view());
  }
  std::string spread_text;
  std::string_view recorded = module.records.of(config, decision, spread_text);
  if (!envoy_dynamic_module_callback_network_set_filter_state_bytes(filter, buffer(kDecisionKey),
                                                                    buffer(recorded))) {
    count(filter, module.errors);
  }
  if (dry_run) {
    count(filter, module.dry_run);
    return envoy_dm_data_status_Continue;
  }
  if (!envoy_dynamic_module_callback_network_set_filter_state_typed(
          filter, buffer(kTcpProxyClusterKey), buffer(cluster.view()))) {
    count(filter, module.errors);
    LogLine line;
    line += kLogPrefix;
    line += "set filter state envoy.tcp_proxy.cluster=";
    line += cluster.view();
    line += " failed; connection stays on tcp_proxy's cluster";
    log(envoy_dm_log_level_Warn, line.view());
  }
  return envoy_dm_data_status_Continue;
}

}  // namespace
}  // namespace tcpsteer::dm

using tcpsteer::dm::ModuleConfig;

TCPSTEER_DM_EXPORT const char* envoy_dynamic_module_on_program_init() {
  return kEnvoyDynamicModulesAbiVersion;
}

TCPSTEER_DM_EXPORT envoy_dm_config_module_ptr envoy_dynamic_module_on_network_filter_config_new(
    envoy_dm_config_envoy_ptr envoy_config, envoy_dm_envoy_buffer name,
    envoy_dm_envoy_buffer config) {
  try {
    (void)name;  // one filter: any filter_name
    return tcpsteer::dm::makeConfig(envoy_config, std::string_view(config.ptr, config.length))
        .release();
  } catch (...) {  // out of memory: refuse the config rather than take Envoy down
    tcpsteer::dm::log(envoy_dm_log_level_Error, "[TCP WASM] cannot build the configuration");
    return nullptr;
  }
}

TCPSTEER_DM_EXPORT void envoy_dynamic_module_on_network_filter_config_destroy(
    envoy_dm_config_module_ptr config) {
  delete static_cast<const ModuleConfig*>(config);
}

// Nothing per connection: the filter is the configuration (decisions need no state of their own).
TCPSTEER_DM_EXPORT envoy_dm_filter_module_ptr envoy_dynamic_module_on_network_filter_new(
    envoy_dm_config_module_ptr config, envoy_dm_filter_envoy_ptr /*filter*/) {
  return config;
}

TCPSTEER_DM_EXPORT envoy_dm_data_status envoy_dynamic_module_on_network_filter_new_connection(
    envoy_dm_filter_envoy_ptr filter, envoy_dm_filter_module_ptr module) {
  try {
    return tcpsteer::dm::onNewConnection(filter, *static_cast<const ModuleConfig*>(module));
  } catch (...) {  // fail closed, as a trapping wasm filter does
    envoy_dynamic_module_callback_network_filter_close(filter, envoy_dm_close_type_NoFlush);
    return envoy_dm_data_status_StopIteration;
  }
}

TCPSTEER_DM_EXPORT envoy_dm_data_status envoy_dynamic_module_on_network_filter_read(
    envoy_dm_filter_envoy_ptr /*filter*/, envoy_dm_filter_module_ptr /*module*/, size_t /*length*/,
    bool /*end_stream*/) {
  return envoy_dm_data_status_Continue;
}

TCPSTEER_DM_EXPORT envoy_dm_data_status envoy_dynamic_module_on_network_filter_write(
    envoy_dm_filter_envoy_ptr /*filter*/, envoy_dm_filter_module_ptr /*module*/, size_t /*length*/,
    bool /*end_stream*/) {
  return envoy_dm_data_status_Continue;
}

TCPSTEER_DM_EXPORT void envoy_dynamic_module_on_network_filter_event(
    envoy_dm_filter_envoy_ptr /*filter*/, envoy_dm_filter_module_ptr /*module*/,
    envoy_dm_connection_event /*event*/) {}

TCPSTEER_DM_EXPORT void envoy_dynamic_module_on_network_filter_destroy(
    envoy_dm_filter_module_ptr /*module*/) {}
