// tcpsteer-host: inspect a proxy-wasm module the way Envoy loads it, or replay connections through
// it.
//
//   tcpsteer-host check MODULE.wasm [--json]
//   tcpsteer-host replay MODULE.wasm [--root-id ID] [--config TEXT|@FILE] --conn SRC,DST[,DATA] ...
//
// replay prints one JSON line per event. Exit status: 0 ok; 1 the module or configuration was
// refused, or the VM failed; 2 bad arguments or unreadable files.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "tcpsteer/host/vm.h"

namespace {

using tcpsteer::host::LoadReport;
using tcpsteer::host::LogLevel;
using tcpsteer::host::Vm;

bool readFile(const std::string& path, std::string* out, std::string* error) {
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    *error = "cannot read " + path + ": " + std::strerror(errno);
    return false;
  }
  std::stringstream bytes;
  bytes << file.rdbuf();
  *out = bytes.str();
  return true;
}

std::span<const uint8_t> asBytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

int check(const std::string& path, bool json) {
  std::string module;
  std::string error;
  if (!readFile(path, &module, &error)) {
    std::cerr << "tcpsteer-host: " << error << "\n";
    return 2;
  }
  LoadReport report = Vm::inspect(asBytes(module));
  if (json) {
    nlohmann::json out = {{"module", path},
                          {"bytes", report.module_bytes},
                          {"abi_version", report.abi_version},
                          {"loads_in_envoy", report.ok},
                          {"imports", report.imports},
                          {"exports", report.exports},
                          {"problems", report.problems}};
    std::cout << out.dump() << "\n";
  } else {
    std::cout << path << ": " << report.module_bytes << " bytes, ABI "
              << (report.abi_version.empty() ? "(none)" : report.abi_version) << "\n";
    std::cout << "imports (" << report.imports.size() << "):\n";
    for (const auto& line : report.imports) std::cout << "  " << line << "\n";
    std::cout << "exports (" << report.exports.size() << "):\n";
    for (const auto& line : report.exports) std::cout << "  " << line << "\n";
    if (report.ok) {
      std::cout << "Envoy would load this module.\n";
    } else {
      std::cout << "Envoy would refuse this module:\n";
      for (const auto& line : report.problems) std::cout << "  " << line << "\n";
    }
  }
  return report.ok ? 0 : 1;
}

void printLogs(const Vm& vm, size_t* printed) {
  const auto& logs = vm.logs();
  for (; *printed < logs.size(); ++*printed) {
    const auto& entry = logs[*printed];
    std::cout << nlohmann::json{{"event", "log"},
                                {"level", tcpsteer::host::logLevelName(entry.level)},
                                {"context", entry.context_id},
                                {"message", entry.message}}
                     .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
              << "\n";
  }
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
  return true;
}

int replay(const std::string& path, const std::string& root_id, std::string config,
           const std::vector<std::string>& conns, bool fail_open, const std::string& level,
           uint64_t budget, bool profile, const std::string& engine) {
  std::string module;
  std::string error;
  if (!readFile(path, &module, &error)) {
    std::cerr << "tcpsteer-host: " << error << "\n";
    return 2;
  }
  if (!config.empty() && config[0] == '@' && !readFile(config.substr(1), &config, &error)) {
    std::cerr << "tcpsteer-host: " << error << "\n";
    return 2;
  }
  std::vector<ConnSpec> specs;
  for (const auto& text : conns) {
    ConnSpec spec;
    if (!parseConn(text, &spec)) {
      std::cerr << "tcpsteer-host: --conn '" << text
                << "' is not SRC,DST[,DATA]; e.g. --conn 10.0.0.2:40000,93.184.216.34:443\n";
      return 2;
    }
    specs.push_back(spec);
  }
  tcpsteer::host::VmOptions options;
  options.fail_open = fail_open;
  options.instruction_budget = budget;
  options.engine = tcpsteer::host::kEngineNames.at(engine);
  static constexpr const char* kLevels[] = {"trace", "debug", "info", "warn", "error", "critical"};
  for (int i = 0; i < 6; ++i) {
    if (level == kLevels[i]) options.log_level = static_cast<LogLevel>(i);
  }
  LoadReport report;
  auto vm = Vm::load(asBytes(module), options, &report);
  if (!vm) {
    std::cout
        << nlohmann::json{{"event", "load"}, {"ok", false}, {"problems", report.problems}}.dump()
        << "\n";
    return 1;
  }
  if (profile) vm->enableProfile();
  size_t printed = 0;
  bool started = vm->start();
  printLogs(*vm, &printed);
  std::cout << nlohmann::json{{"event", "vm_start"},
                              {"ok", started},
                              {"instructions", vm->lastCallbackInstructions()}}
                   .dump()
            << "\n";
  auto status =
      started ? vm->startPlugin({root_id, config, "tcpsteer", ""}) : Vm::PluginStatus::kFailed;
  printLogs(*vm, &printed);
  static constexpr const char* kStatus[] = {"ok", "vm_start_failed", "config_rejected", "failed"};
  std::cout << nlohmann::json{{"event", "configure"},
                              {"root_id", root_id},
                              {"status", kStatus[static_cast<int>(status)]}}
                   .dump()
            << "\n";
  if (status != Vm::PluginStatus::kOk) {
    if (vm->failure()) {
      std::cout << nlohmann::json{{"event", "vm_failed"},
                                  {"callback", vm->failure()->callback},
                                  {"message", vm->failure()->message}}
                       .dump()
                << "\n";
    }
    return 1;
  }
  for (const ConnSpec& spec : specs) {
    uint32_t id = vm->newConnection(spec.source, spec.destination);
    uint64_t instructions = vm->connection(id)->instructions;
    printLogs(*vm, &printed);
    if (!spec.data.empty()) vm->downstreamData(id, spec.data, false);
    vm->closeDownstream(id, tcpsteer::host::PeerType::kRemote);
    printLogs(*vm, &printed);
    const auto* c = vm->connection(id);
    nlohmann::json filter_state = nlohmann::json::object();
    for (const auto& [key, value] : c->filter_state) filter_state[key] = value;
    std::cout << nlohmann::json{{"event", "connection"},
                                {"id", id},
                                {"source", spec.source},
                                {"destination", spec.destination},
                                {"action", c->paused ? "pause" : "continue"},
                                {"cluster", c->cluster_at_start
                                                ? nlohmann::json(*c->cluster_at_start)
                                                : nlohmann::json()},
                                {"filter_state", filter_state},
                                {"closed_by_filter", c->closed_by_filter},
                                {"new_connection_instructions", instructions},
                                {"lifecycle_instructions", c->instructions}}
                     .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
              << "\n";
    vm->forgetConnection(id);
  }
  for (const auto& [id, metric] : vm->metrics()) {
    std::cout << nlohmann::json{{"event", "metric"}, {"name", metric.name}, {"value", metric.value}}
                     .dump()
              << "\n";
  }
  if (profile) {
    for (const auto& [function, count] : vm->profile()) {
      std::cout << nlohmann::json{{"event", "profile"},
                                  {"function", function},
                                  {"instructions", count}}
                       .dump()
                << "\n";
    }
  }
  if (const auto& failure = vm->failure(); failure.has_value()) {
    std::cout << nlohmann::json{{"event", "vm_failed"},
                                {"callback", failure->callback},
                                {"message", failure->message}}
                     .dump()
              << "\n";
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"tcpsteer-host: run proxy-wasm modules with Envoy's host semantics"};
  app.require_subcommand(1);

  auto* check_cmd = app.add_subcommand(
      "check", "Show imports, exports, ABI version and whether Envoy would load it");
  std::string check_path;
  bool json = false;
  check_cmd->add_option("module", check_path, "the .wasm file")->required();
  check_cmd->add_flag("--json", json, "print one JSON object");

  auto* replay_cmd =
      app.add_subcommand("replay", "Load, configure and run connections; one JSON line per event");
  std::string replay_path;
  std::string root_id = "tcpsteer";
  std::string config;
  std::vector<std::string> conns;
  bool fail_open = false;
  std::string level = "info";
  uint64_t budget = 50'000'000;
  bool profile = false;
  std::string engine = "interpreter";
  replay_cmd->add_option("module", replay_path, "the .wasm file")->required();
  replay_cmd->add_option("--root-id", root_id, "plugin root_id (Istio pluginName)")
      ->capture_default_str();
  replay_cmd->add_option("--config", config, "plugin configuration text, or @FILE");
  replay_cmd
      ->add_option("--conn", conns,
                   "a connection SRC,DST[,DATA], e.g. 10.0.0.2:40000,93.184.216.34:443")
      ->required();
  replay_cmd->add_flag("--fail-open", fail_open,
                       "on a VM failure let traffic through (default: fail closed)");
  replay_cmd->add_option("--log-level", level, "host log level")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical"}))
      ->capture_default_str();
  replay_cmd->add_flag("--profile", profile, "print wasm instructions per module function (index)");
  replay_cmd
      ->add_option("--budget", budget, "wasm instructions allowed per callback (0 = unlimited)")
      ->capture_default_str();
  replay_cmd
      ->add_option("--engine", engine,
                   "interpreter (counts instructions), precompiled (the module this build "
                   "compiled in, native speed, no counts) or auto")
      ->check(CLI::IsMember(tcpsteer::host::kEngineNames))
      ->capture_default_str();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  if (check_cmd->parsed()) return check(check_path, json);
  return replay(replay_path, root_id, config, conns, fail_open, level, budget, profile, engine);
}
