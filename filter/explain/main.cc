// tcpsteer explain: what the filter would decide, and why, before a configuration is rolled out.
//
//   tcpsteer explain --config FILE [--metadata FILE] [--namespace NS] [--workload NAME]
//                    [--service-account SA] [--label KEY=VALUE]... [--json]
//                    [--connections FILE|-] [SRC,DST[,SNI]]...
//
// The configuration is read by the same core the module runs (filter/core), bound to the proxy
// described by the metadata (Istio's node metadata: NAMESPACE, WORKLOAD_NAME, SERVICE_ACCOUNT,
// LABELS) and asked about each connection. An invalid configuration is refused with the line
// Envoy would log, exit status 1; bad arguments exit 2.
#include <sys/stat.h>
#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "filter/core/config.h"
#include "filter/core/decision.h"
#include "tcpsteer/host/result.h"

namespace {

using nlohmann::json;
using tcpsteer::Config;
using tcpsteer::Decision;
using tcpsteer::WorkloadIdentity;

constexpr int kExitOk = 0;
constexpr int kExitRefused = 1;
constexpr int kExitUsage = 2;
constexpr uint64_t kMaxInputBytes = uint64_t{16} << 20;  // a connections list; configs are 64 KiB
constexpr size_t kMaxConnections = 1'000'000;

using tcpsteer::Error;
using tcpsteer::Result;

// At most 16 MiB + 1 byte is read, so an endless stream is refused rather than held.
Result<std::string> readStream(std::istream& in, const std::string& name) {
  std::string text;
  char buffer[65536];
  while (in.read(buffer, sizeof buffer) || in.gcount() > 0) {
    text.append(buffer, static_cast<size_t>(in.gcount()));
    if (text.size() > kMaxInputBytes) return Error{name + ": over 16 MiB"};
  }
  if (in.bad()) return Error{name + ": cannot be read"};
  return text;
}

// A file, a pipe (<(...)) or "-" for standard input; directories and devices are refused.
Result<std::string> readInput(const std::string& path) {
  if (path == "-") return readStream(std::cin, "standard input");
  struct stat info{};
  if (::stat(path.c_str(), &info) != 0 || !(S_ISREG(info.st_mode) || S_ISFIFO(info.st_mode)))
    return Error{path + ": not a readable file"};
  std::ifstream file(path, std::ios::binary);
  if (!file) return Error{path + ": cannot be opened"};
  return readStream(file, path);
}

// Istio's node metadata as Envoy's bootstrap carries it: strings, and LABELS an object of strings.
Result<WorkloadIdentity> identityFrom(const std::string& text) {
  json metadata = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!metadata.is_object())
    return Error{"--metadata is not a JSON object such as {\"NAMESPACE\": \"billing\"}"};
  WorkloadIdentity identity;
  for (auto [key, field] : {std::pair{"NAMESPACE", &identity.namespace_name},
                            std::pair{"WORKLOAD_NAME", &identity.workload_name},
                            std::pair{"SERVICE_ACCOUNT", &identity.service_account}}) {
    if (!metadata.contains(key)) continue;
    if (!metadata[key].is_string())
      return Error{std::string("--metadata ") + key + " is not a string"};
    *field = metadata[key].get<std::string>();
  }
  if (metadata.contains("LABELS")) {
    if (!metadata["LABELS"].is_object()) return Error{"--metadata LABELS is not an object"};
    identity.has_labels = true;
    for (const auto& [key, value] : metadata["LABELS"].items()) {
      if (!value.is_string()) return Error{"--metadata LABELS." + key + " is not a string"};
      identity.labels.emplace_back(key, value.get<std::string>());
    }
  }
  return identity;
}

struct Connection {
  std::string source;
  std::string destination;
  std::string server_name;
};

// "SRC,DST[,SNI]" (arguments) or "SRC DST [SNI]" (lines of a file; # starts a comment).
std::optional<Connection> parseConnection(std::string text, char separator) {
  for (char& c : text) {
    if (separator == ' ' && c == '\t') c = ' ';
  }
  std::vector<std::string> fields;
  std::string field;
  std::istringstream stream(text);
  while (std::getline(stream, field, separator)) {
    if (!field.empty()) fields.push_back(field);
  }
  if (fields.size() < 2 || fields.size() > 3) return std::nullopt;
  return Connection{fields[0], fields[1], fields.size() == 3 ? fields[2] : ""};
}

Result<std::vector<Connection>> readConnections(const std::string& path) {
  auto text = readInput(path);
  if (!text) return Error{text.error()};
  std::vector<Connection> connections;
  std::istringstream lines(*text);
  std::string line;
  size_t number = 0;
  while (std::getline(lines, line)) {
    ++number;
    if (size_t hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    auto connection = parseConnection(line, ' ');
    if (!connection) {
      return Error{path + ":" + std::to_string(number) +
                   ": not 'SOURCE DESTINATION [SNI]', e.g. 10.244.1.7:40000 93.184.216.34:443 "
                   "api.example.com"};
    }
    if (connections.size() == kMaxConnections) return Error{path + ": over 1,000,000 connections"};
    connections.push_back(*connection);
  }
  return connections;
}

std::string ruleName(const Config& config, const Decision& decision) {
  return decision.rule >= 0 ? config.rules[static_cast<size_t>(decision.rule)].name : "default";
}

struct Options {
  std::string config_path;
  std::string metadata_path;
  std::optional<std::string> namespace_name;
  std::optional<std::string> workload_name;
  std::optional<std::string> service_account;
  std::vector<std::string> labels;
  std::string connections_path;
  std::vector<std::string> connections;
  bool as_json = false;
};

// The exit status, or a usage error.
Result<int> explain(const Options& options) {
  auto config_text = readInput(options.config_path);
  if (!config_text) return Error{config_text.error()};
  tcpsteer::ConfigResult parsed = tcpsteer::parseConfig(*config_text);
  if (!parsed.config) {
    std::cout << "[TCP WASM] " << parsed.error.message() << "\n";
    return kExitRefused;
  }
  Config config = std::move(*parsed.config);
  WorkloadIdentity identity;
  if (!options.metadata_path.empty()) {
    auto metadata = readInput(options.metadata_path);
    if (!metadata) return Error{metadata.error()};
    auto read = identityFrom(*metadata);
    if (!read) return Error{read.error()};
    identity = std::move(*read);
  }
  if (options.namespace_name) identity.namespace_name = options.namespace_name;
  if (options.workload_name) identity.workload_name = options.workload_name;
  if (options.service_account) identity.service_account = options.service_account;
  for (const std::string& label : options.labels) {
    size_t equals = label.find('=');
    if (equals == std::string::npos || equals == 0)
      return Error{"--label '" + label + "' is not KEY=VALUE, e.g. app=billing"};
    identity.has_labels = true;
    identity.labels.emplace_back(label.substr(0, equals), label.substr(equals + 1));
  }
  // As the module does: bound only when a rule asks about the proxy.
  if (config.needs_workload) {
    if (auto error = tcpsteer::bindWorkload(config, identity)) {
      std::cout << "[TCP WASM] " << error->message() << "\n";
      return kExitRefused;
    }
  }
  std::vector<Connection> connections;
  for (const std::string& text : options.connections) {
    auto connection = parseConnection(text, ',');
    if (!connection)
      return Error{"'" + text + "' is not SRC,DST[,SNI], e.g. 10.244.1.7:40000,93.184.216.34:443"};
    connections.push_back(*connection);
  }
  if (!options.connections_path.empty()) {
    auto more = readConnections(options.connections_path);
    if (!more) return Error{more.error()};
    connections.insert(connections.end(), more->begin(), more->end());
  }

  std::vector<std::string> active;
  active.reserve(config.active_rules.size());
  for (uint16_t index : config.active_rules) active.push_back(config.rules[index].name);
  if (options.as_json) {
    json header = {{"event", "configuration"},
                   {"rules", config.rules.size()},
                   {"rules_for_this_proxy", active},
                   {"warnings", config.warnings}};
    std::cout << header.dump() << "\n";
  } else {
    for (const std::string& warning : config.warnings) std::cout << "warning: " << warning << "\n";
    std::cout << "rules for this proxy: ";
    for (size_t i = 0; i < active.size(); ++i) std::cout << (i > 0 ? ", " : "") << active[i];
    std::cout << (active.empty() ? "none (every connection: last octet modulo targets)" : "")
              << "\n";
  }
  for (const Connection& connection : connections) {
    Decision decision =
        tcpsteer::decide(config, connection.source, connection.destination, connection.server_name);
    std::string verdict = tcpsteer::verdictName(decision.verdict);
    std::string target;
    std::string cluster;
    std::string why;
    if (decision.verdict == tcpsteer::Verdict::kRoute) {
      target = config.targets[decision.target].name;
      cluster = std::string(decision.cluster.view());
      why = decision.rule >= 0
                ? "rule " + ruleName(config, decision)
                : "no rule matched: last octet " + std::to_string(decision.last_octet) +
                      " modulo " + std::to_string(config.configured_targets);
      if (config.mode == tcpsteer::Mode::kDryRun) why += " (dry-run: not applied)";
    } else {
      why = std::string(decision.reason);
      if (decision.verdict == tcpsteer::Verdict::kUnroutable)
        why += config.on_unroutable == tcpsteer::OnUnroutable::kClose ? "; closed"
                                                                      : "; tcp_proxy's cluster";
    }
    if (options.as_json) {
      json line = {
          {"source", connection.source},
          {"destination", connection.destination},
          {"sni", connection.server_name},
          {"verdict", verdict},
          {"target", target},
          {"cluster", cluster},
          {"rule", decision.verdict == tcpsteer::Verdict::kRoute ? ruleName(config, decision) : ""},
          {"why", why}};
      std::cout << line.dump(-1, ' ', false, json::error_handler_t::replace) << "\n";
    } else {
      std::cout << connection.source << " -> " << connection.destination;
      if (!connection.server_name.empty()) std::cout << " sni=" << connection.server_name;
      std::cout << ": ";
      if (target.empty()) {
        std::cout << verdict;
      } else {
        std::cout << target << " (" << cluster << ")";
      }
      std::cout << ", " << why << "\n";
    }
  }
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"tcpsteer: the egress selector's tools"};
  app.require_subcommand(1);
  Options options;
  auto* explain_cmd = app.add_subcommand(
      "explain",
      "For a configuration and a proxy's identity, the target, cluster and rule of each "
      "connection (SRC,DST[,SNI]), as the filter would decide");
  explain_cmd
      ->add_option("--config", options.config_path, "the plugin configuration file (- = stdin)")
      ->required();
  explain_cmd->add_option("--metadata", options.metadata_path,
                          "the proxy's node metadata as JSON, e.g. {\"NAMESPACE\": \"billing\", "
                          "\"LABELS\": {\"app\": \"ledger\"}}");
  explain_cmd->add_option("--namespace", options.namespace_name, "the proxy's namespace");
  explain_cmd->add_option("--workload", options.workload_name, "the proxy's workload name");
  explain_cmd->add_option("--service-account", options.service_account,
                          "the proxy's service account");
  explain_cmd->add_option("--label", options.labels, "a pod label KEY=VALUE (repeatable)")
      ->allow_extra_args(false);
  explain_cmd->add_option("--connections", options.connections_path,
                          "a file of connections, one 'SOURCE DESTINATION [SNI]' per line (- = "
                          "stdin)");
  explain_cmd->add_option("connection", options.connections,
                          "a connection SRC,DST[,SNI], e.g. 10.244.1.7:40000,93.184.216.34:443,"
                          "api.example.com");
  explain_cmd->add_flag("--json", options.as_json, "one JSON object per line");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? kExitOk : kExitUsage;
  }
  auto status = explain(options);
  if (!status) {
    std::cerr << "tcpsteer explain: " << status.error() << "\n";
    return kExitUsage;
  }
  return *status;
}
