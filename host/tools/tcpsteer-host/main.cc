// tcpsteer-host: inspect a proxy-wasm module the way Envoy loads it, or replay connections through
// it.
//
//   tcpsteer-host check MODULE.wasm [--json]
//   tcpsteer-host replay MODULE.wasm [--root-id ID] [--config TEXT|@FILE] [--node-metadata
//   JSON|@FILE]
//                        [--sni NAME] --conn SRC,DST[,DATA] ...
//
// replay prints one JSON line per event, flushed as it happens. Exit status: 0 ok; 1 the module or
// configuration was refused, or the VM failed; 2 bad arguments or unreadable files.
#include <CLI/CLI.hpp>
#include <iostream>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "host/src/limits.h"
#include "host/tools/common/cli_numbers.h"
#include "tcpsteer/host/read_file.h"
#include "tcpsteer/host/vm.h"

namespace {

using nlohmann::json;
using tcpsteer::host::LoadReport;
using tcpsteer::host::LogLevel;
using tcpsteer::host::Vm;
namespace limits = tcpsteer::host::limits;

constexpr int kExitOk = 0;
constexpr int kExitRefused = 1;
constexpr int kExitUsage = 2;

// One output line. Module-chosen text (log lines, metric names, the root id) need not be UTF-8:
// invalid bytes become U+FFFD instead of aborting the output, and each line is flushed so what
// was printed survives whatever comes next.
void emit(const json& line) {
  std::cout << line.dump(-1, ' ', false, json::error_handler_t::replace) << '\n' << std::flush;
}

std::span<const uint8_t> asBytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

bool readInput(const std::string& path, uint64_t max_bytes, std::string* out) {
  auto bytes = tcpsteer::host::readRegularFile(path, max_bytes);
  if (!bytes) {
    std::cerr << "tcpsteer-host: " << bytes.error() << "\n";
    return false;
  }
  *out = std::move(*bytes);
  return true;
}

// check: the static checks, then (when they pass) instantiation and start-up, as Envoy does
// before it reports the module loaded.
int check(const std::string& path, bool as_json) {
  std::string module;
  if (!readInput(path, limits::kMaxModuleFileBytes, &module)) return kExitUsage;
  LoadReport report = Vm::inspect(asBytes(module));
  bool instantiated = false;
  if (report.ok) {
    LoadReport loaded;
    auto vm = Vm::load(asBytes(module), {}, &loaded);
    if (vm && vm->start()) {
      instantiated = true;
    } else {
      report.ok = false;
      const std::optional<tcpsteer::host::Failure> failure =
          vm ? vm->failure() : std::optional<tcpsteer::host::Failure>();
      if (failure.has_value()) {
        report.problems.push_back("start-up failed in " + failure->callback + ": " +
                                  failure->message);
      } else if (!loaded.problems.empty()) {
        report.problems.push_back(loaded.problems.back());
      }
    }
  }
  if (as_json) {
    emit({{"module", path},
          {"bytes", report.module_bytes},
          {"abi_version", report.abi_version},
          {"loads_in_envoy", report.ok},
          {"instantiated", instantiated},
          {"imports", report.imports},
          {"exports", report.exports},
          {"problems", report.problems}});
  } else {
    std::cout << path << ": " << report.module_bytes << " bytes, ABI "
              << (report.abi_version.empty() ? "(none)" : report.abi_version) << "\n";
    std::cout << "imports (" << report.imports.size() << "):\n";
    for (const auto& line : report.imports) std::cout << "  " << line << "\n";
    std::cout << "exports (" << report.exports.size() << "):\n";
    for (const auto& line : report.exports) std::cout << "  " << line << "\n";
    if (report.ok) {
      std::cout << "Envoy would load this module (instantiated and started here).\n";
    } else {
      std::cout << "Envoy would refuse this module:\n";
      for (const auto& line : report.problems) std::cout << "  " << line << "\n";
    }
    std::cout << std::flush;
  }
  return report.ok ? kExitOk : kExitRefused;
}

// Prints the VM's log lines and lets it forget them (so a module that logs in a loop only ever
// holds what one callback wrote).
void printLogs(Vm& vm) {
  for (const auto& entry : vm.logs()) {
    emit({{"event", "log"},
          {"level", tcpsteer::host::logLevelName(entry.level)},
          {"context", entry.context_id},
          {"message", entry.message}});
  }
  vm.clearLogs();
}

struct ConnSpec {
  std::string source;
  std::string destination;
  std::string data;
};

bool parseConn(const std::string& text, ConnSpec* out) {
  // SRC,DST[,DATA]: addresses contain no commas ("[v6]:port" included).
  size_t first = text.find(',');
  if (first == std::string::npos) return false;
  size_t second = text.find(',', first + 1);
  out->source = text.substr(0, first);
  out->destination =
      text.substr(first + 1, second == std::string::npos ? std::string::npos : second - first - 1);
  if (second != std::string::npos) out->data = text.substr(second + 1);
  return !out->source.empty() && !out->destination.empty();
}

struct ReplayOptions {
  std::string path;
  std::string root_id = "tcpsteer";
  std::string config;
  std::vector<std::string> conns;
  bool fail_open = false;
  std::string level = "info";
  uint64_t budget = limits::kDefaultInstructionBudget;
  bool profile = false;
  std::string engine = "interpreter";
  std::string node_metadata;  // JSON object, or @FILE
  std::string sni;            // connection.requested_server_name of every connection
};

// {"NAMESPACE": "billing", "LABELS": {"app": "x"}} -> NAMESPACE=billing, LABELS.app=x: string
// values, one level of nested objects (Istio's LABELS). Anything else is refused.
bool readNodeMetadata(const std::string& text, std::map<std::string, std::string>* out) {
  json document = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!document.is_object()) return false;
  for (const auto& [key, value] : document.items()) {
    if (value.is_string()) {
      (*out)[key] = value.get<std::string>();
    } else if (value.is_object()) {
      for (const auto& [inner, inner_value] : value.items()) {
        if (!inner_value.is_string()) return false;
        std::string name = key;
        name += '.';
        name += inner;
        (*out)[name] = inner_value.get<std::string>();
      }
    } else {
      return false;
    }
  }
  return true;
}

void emitFailure(const Vm& vm) {
  if (const auto& failure = vm.failure(); failure.has_value())
    emit({{"event", "vm_failed"}, {"callback", failure->callback}, {"message", failure->message}});
}

int replay(ReplayOptions o) {
  std::string module;
  if (!readInput(o.path, limits::kMaxModuleFileBytes, &module)) return kExitUsage;
  if (!o.config.empty() && o.config[0] == '@' &&
      !readInput(o.config.substr(1), limits::kMaxConfigFileBytes, &o.config)) {
    return kExitUsage;
  }
  std::map<std::string, std::string> node_metadata;
  if (!o.node_metadata.empty()) {
    if (o.node_metadata[0] == '@' &&
        !readInput(o.node_metadata.substr(1), limits::kMaxConfigFileBytes, &o.node_metadata)) {
      return kExitUsage;
    }
    if (!readNodeMetadata(o.node_metadata, &node_metadata)) {
      std::cerr << "tcpsteer-host: --node-metadata is not a JSON object of strings (and objects "
                   "of strings, as LABELS); e.g. {\"NAMESPACE\": \"billing\", \"LABELS\": "
                   "{\"app\": \"invoicer\"}}\n";
      return kExitUsage;
    }
  }
  std::vector<ConnSpec> specs;
  for (const auto& text : o.conns) {
    ConnSpec spec;
    if (!parseConn(text, &spec)) {
      std::cerr << "tcpsteer-host: --conn '" << text
                << "' is not SRC,DST[,DATA]; e.g. --conn 10.0.0.2:40000,93.184.216.34:443\n";
      return kExitUsage;
    }
    specs.push_back(spec);
  }
  tcpsteer::host::VmOptions options;
  options.fail_open = o.fail_open;
  options.instruction_budget = o.budget;
  options.engine = tcpsteer::host::kEngineNames.at(o.engine);
  for (uint32_t i = 0; i <= proxy_wasm::kMaxLogLevel; ++i) {
    if (o.level == tcpsteer::host::logLevelName(static_cast<LogLevel>(i)))
      options.log_level = static_cast<LogLevel>(i);
  }
  LoadReport report;
  auto vm = Vm::load(asBytes(module), options, &report);
  if (!vm) {
    emit({{"event", "load"}, {"ok", false}, {"problems", report.problems}});
    return kExitRefused;
  }
  if (o.profile) vm->enableProfile();
  bool started = vm->start();
  printLogs(*vm);
  emit({{"event", "vm_start"}, {"ok", started}, {"instructions", vm->lastCallbackInstructions()}});
  auto status = started ? vm->startPlugin({o.root_id, o.config, "tcpsteer", "", node_metadata})
                        : Vm::PluginStatus::kFailed;
  printLogs(*vm);
  static constexpr const char* kStatus[] = {"ok", "vm_start_failed", "config_rejected", "failed"};
  json configure = {{"event", "configure"},
                    {"root_id", o.root_id},
                    {"status", kStatus[static_cast<int>(status)]}};
  // The last callback of startPlugin is proxy_on_configure.
  if (started && !vm->precompiled())
    configure["on_configure_instructions"] = vm->lastCallbackInstructions();
  emit(configure);
  if (status != Vm::PluginStatus::kOk) {
    emitFailure(*vm);
    return kExitRefused;
  }
  for (const ConnSpec& spec : specs) {
    std::map<std::string, std::string> extra;
    if (!o.sni.empty()) extra["connection.requested_server_name"] = o.sni;
    uint32_t id = vm->newConnection(spec.source, spec.destination, extra);
    uint64_t instructions = vm->connection(id)->instructions;
    printLogs(*vm);
    if (!spec.data.empty()) vm->downstreamData(id, spec.data, false);
    vm->closeDownstream(id, tcpsteer::host::PeerType::kRemote);
    printLogs(*vm);
    const auto* c = vm->connection(id);
    json filter_state = json::object();
    for (const auto& [key, value] : c->filter_state) filter_state[key] = value;
    emit({{"event", "connection"},
          {"id", id},
          {"source", spec.source},
          {"destination", spec.destination},
          {"action", c->paused ? "pause" : "continue"},
          {"cluster", c->cluster_at_start ? json(*c->cluster_at_start) : json()},
          {"filter_state", filter_state},
          {"closed_by_filter", c->closed_by_filter},
          {"new_connection_instructions", instructions},
          {"lifecycle_instructions", c->instructions}});
    vm->forgetConnection(id);
  }
  for (const auto& [id, metric] : vm->metrics())
    emit({{"event", "metric"}, {"name", metric.name}, {"value", metric.value}});
  if (o.profile) {
    for (const auto& [function, count] : vm->profile())
      emit({{"event", "profile"}, {"function", function}, {"instructions", count}});
  }
  emit({{"event", "vm_end"},
        {"memory_bytes", vm->memoryBytes()},
        {"instructions", vm->totalInstructions()}});
  if (vm->failed()) {
    emitFailure(*vm);
    return kExitRefused;
  }
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"tcpsteer-host: run proxy-wasm modules with Envoy's host semantics"};
  app.require_subcommand(1);

  auto* check_cmd = app.add_subcommand(
      "check", "Show imports, exports, ABI version and whether Envoy would load it");
  std::string check_path;
  bool as_json = false;
  check_cmd->add_option("module", check_path, "the .wasm file")->required();
  check_cmd->add_flag("--json", as_json, "print one JSON object");

  auto* replay_cmd =
      app.add_subcommand("replay", "Load, configure and run connections; one JSON line per event");
  ReplayOptions o;
  replay_cmd->add_option("module", o.path, "the .wasm file")->required();
  replay_cmd->add_option("--root-id", o.root_id, "plugin root_id (Istio pluginName)")
      ->capture_default_str();
  replay_cmd->add_option("--config", o.config, "plugin configuration text, or @FILE");
  // allow_extra_args(false): one connection per --conn, so "[v6]:port,[v6]" is not read as a
  // bracketed list.
  replay_cmd
      ->add_option("--conn", o.conns,
                   "a connection SRC,DST[,DATA], e.g. 10.0.0.2:40000,93.184.216.34:443")
      ->required()
      ->allow_extra_args(false);
  replay_cmd->add_option("--node-metadata", o.node_metadata,
                         "the proxy's node metadata as JSON, or @FILE, e.g. "
                         "{\"NAMESPACE\": \"billing\", \"LABELS\": {\"app\": \"invoicer\"}}");
  replay_cmd->add_option("--sni", o.sni, "the SNI every connection's client sent");
  replay_cmd->add_flag("--fail-open", o.fail_open,
                       "on a VM failure let traffic through (default: fail closed)");
  replay_cmd->add_option("--log-level", o.level, "host log level")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical"}))
      ->capture_default_str();
  replay_cmd->add_flag("--profile", o.profile,
                       "print wasm instructions per module function (index)");
  replay_cmd
      ->add_option("--budget", o.budget,
                   "wasm instructions allowed per callback (0 = unlimited; start-up included)")
      ->check(tcpsteer::cli::decimalRange(0, std::numeric_limits<uint64_t>::max()))
      ->capture_default_str();
  replay_cmd
      ->add_option("--engine", o.engine,
                   "interpreter (counts instructions), precompiled (the module this build "
                   "compiled in, native speed, no counts) or auto")
      ->check(CLI::IsMember(tcpsteer::host::kEngineNames))
      ->capture_default_str();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? kExitOk : kExitUsage;
  }
  if (check_cmd->parsed()) return check(check_path, as_json);
  return replay(std::move(o));
}
