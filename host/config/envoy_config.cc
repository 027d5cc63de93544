#include "tcpsteer/host/envoy_config.h"

#include <arpa/inet.h>
#include <yaml-cpp/yaml.h>

#include <cmath>
#include <filesystem>
#include <set>

#include "host/src/limits.h"
#include "tcpsteer/host/read_file.h"

namespace tcpsteer::host {
namespace {

// Upper bounds this reader accepts (the timers are steady_clock milliseconds).
constexpr uint64_t kMaxConnectTimeoutMs = uint64_t{3600} * 1000;       // 1 hour
constexpr uint64_t kMaxDurationMs = uint64_t{365} * 24 * 3600 * 1000;  // 1 year

struct ConfigError {
  std::string message;
};

[[noreturn]] void fail(const std::string& path, const std::string& problem) {
  throw ConfigError{path + ": " + problem};
}

// Every mapping is closed: a field we do not model is an error, not silently ignored.
void allowOnly(const YAML::Node& node, const std::string& path,
               const std::set<std::string>& allowed) {
  if (!node.IsMap()) fail(path, "must be a mapping");
  for (const auto& entry : node) {
    std::string key = entry.first.as<std::string>();
    if (!allowed.count(key)) {
      std::string list;
      for (const auto& a : allowed) {
        if (!list.empty()) list += ", ";
        list += a;
      }
      std::string field = path;
      field += "." + key;
      fail(field, "not supported by tcpsteer-proxy; expected one of: " + list);
    }
  }
}

YAML::Node required(const YAML::Node& node, const std::string& path, const std::string& key) {
  if (!node[key]) fail(path + "." + key, "is required");
  return node[key];
}

std::string scalar(const YAML::Node& node, const std::string& path) {
  if (!node.IsScalar()) fail(path, "must be a scalar");
  return node.as<std::string>();
}

SocketAddressConfig socketAddress(const YAML::Node& node, const std::string& path) {
  allowOnly(node, path, {"socket_address"});
  YAML::Node sa = required(node, path, "socket_address");
  allowOnly(sa, path + ".socket_address", {"address", "port_value", "protocol"});
  SocketAddressConfig out;
  out.address =
      scalar(required(sa, path + ".socket_address", "address"), path + ".socket_address.address");
  // Envoy: "malformed IP address" for a listener; a STATIC cluster resolves no names either.
  in6_addr v6{};
  in_addr v4{};
  if (inet_pton(AF_INET, out.address.c_str(), &v4) != 1 &&
      inet_pton(AF_INET6, out.address.c_str(), &v6) != 1) {
    fail(path + ".socket_address.address",
         "'" + out.address +
             "' is not an IP address (names are not resolved here; use an IPv4 or " +
             "IPv6 literal)");
  }
  if (sa["protocol"] && sa["protocol"].as<std::string>() != "TCP") {
    fail(path + ".socket_address.protocol", "only TCP is supported");
  }
  int port = -1;
  try {
    port = required(sa, path + ".socket_address", "port_value").as<int>();
  } catch (const YAML::Exception&) {
    port = -1;  // not an integer: reported just below
  }
  if (port < 0 || port > 65535)
    fail(path + ".socket_address.port_value", "must be a port from 0 to 65535");
  out.port = static_cast<uint16_t>(port);
  return out;
}

// A protobuf Duration in its JSON form ("5s", "0.25s", "250ms" is accepted too): positive, finite
// and at most max_ms milliseconds.
uint64_t durationMs(const YAML::Node& node, const std::string& path, uint64_t max_ms,
                    bool zero_allowed) {
  std::string text = scalar(node, path);
  const std::string expected = "must be a duration such as 1s or 250ms, from " +
                               std::string(zero_allowed ? "0" : "1ms") + " to " +
                               std::to_string(max_ms / 1000) + "s";
  double scale = 0;
  std::string number;
  if (text.size() > 2 && text.ends_with("ms")) {
    number = text.substr(0, text.size() - 2);
    scale = 1;
  } else if (text.size() > 1 && text.back() == 's') {
    number = text.substr(0, text.size() - 1);
    scale = 1000;
  } else {
    fail(path, expected);
  }
  // Digits with an optional fraction: no sign, exponent, "inf" or "nan".
  bool digits = !number.empty() && number.find_first_not_of("0123456789.") == std::string::npos &&
                number.find('.') == number.rfind('.') && number != ".";
  if (!digits) fail(path, expected);
  double ms = 0;
  try {
    ms = std::stod(number) * scale;
  } catch (const std::exception&) {  // out of range
    fail(path, expected);
  }
  if (!std::isfinite(ms) || ms > static_cast<double>(max_ms) ||
      (ms < 1 && !(zero_allowed && ms == 0)))
    fail(path, expected);
  return static_cast<uint64_t>(ms);
}

WasmFilterConfig wasmFilter(const YAML::Node& typed, const std::string& path) {
  allowOnly(typed, path, {"@type", "config"});
  if (scalar(required(typed, path, "@type"), path + ".@type") !=
      "type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm") {
    fail(path + ".@type",
         "expected type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm");
  }
  std::string cpath = path + ".config";
  YAML::Node config = required(typed, path, "config");
  allowOnly(config, cpath, {"name", "root_id", "vm_config", "configuration", "fail_open"});
  WasmFilterConfig out;
  if (config["name"]) out.name = scalar(config["name"], cpath + ".name");
  if (config["root_id"]) out.root_id = scalar(config["root_id"], cpath + ".root_id");
  if (config["fail_open"]) {
    std::string value = scalar(config["fail_open"], cpath + ".fail_open");
    if (value != "true" && value != "false") fail(cpath + ".fail_open", "must be true or false");
    out.fail_open = value == "true";
  }
  if (YAML::Node c = config["configuration"]) {
    allowOnly(c, cpath + ".configuration", {"@type", "value"});
    std::string type =
        scalar(required(c, cpath + ".configuration", "@type"), cpath + ".configuration.@type");
    if (type != "type.googleapis.com/google.protobuf.StringValue") {
      fail(cpath + ".configuration.@type",
           "expected type.googleapis.com/google.protobuf.StringValue");
    }
    if (c["value"]) out.configuration = scalar(c["value"], cpath + ".configuration.value");
  }
  std::string vpath = cpath + ".vm_config";
  YAML::Node vm = required(config, cpath, "vm_config");
  allowOnly(vm, vpath, {"runtime", "vm_id", "code"});
  if (vm["vm_id"]) out.vm_id = scalar(vm["vm_id"], vpath + ".vm_id");
  if (vm["runtime"]) {
    std::string runtime = scalar(vm["runtime"], vpath + ".runtime");
    if (runtime.rfind("envoy.wasm.runtime.", 0) != 0)
      fail(vpath + ".runtime", "expected envoy.wasm.runtime.v8");
  }
  YAML::Node code = required(vm, vpath, "code");
  allowOnly(code, vpath + ".code", {"local"});
  YAML::Node local = required(code, vpath + ".code", "local");
  allowOnly(local, vpath + ".code.local", {"filename"});
  std::filesystem::path file =
      scalar(required(local, vpath + ".code.local", "filename"), vpath + ".code.local.filename");
  out.filename = file.string();  // as Envoy: a relative path is relative to the working directory
  return out;
}

ListenerConfig listener(const YAML::Node& node, const std::string& path) {
  allowOnly(node, path, {"name", "address", "filter_chains"});
  ListenerConfig out;
  out.name = scalar(required(node, path, "name"), path + ".name");
  out.address = socketAddress(required(node, path, "address"), path + ".address");
  YAML::Node chains = required(node, path, "filter_chains");
  if (!chains.IsSequence() || chains.size() != 1)
    fail(path + ".filter_chains", "must hold exactly one filter chain");
  std::string fpath = path + ".filter_chains[0]";
  allowOnly(chains[0], fpath, {"filters"});
  YAML::Node filters = required(chains[0], fpath, "filters");
  if (!filters.IsSequence() || filters.size() == 0 || filters.size() > 2) {
    fail(fpath + ".filters",
         "expected [envoy.filters.network.wasm,] envoy.filters.network.tcp_proxy");
  }
  for (size_t i = 0; i < filters.size(); ++i) {
    std::string p = fpath + ".filters[" + std::to_string(i) + "]";
    allowOnly(filters[i], p, {"name", "typed_config"});
    std::string name = scalar(required(filters[i], p, "name"), p + ".name");
    bool last = i + 1 == filters.size();
    YAML::Node typed = required(filters[i], p, "typed_config");
    if (name == "envoy.filters.network.wasm" && !last) {
      out.wasm = wasmFilter(typed, p + ".typed_config");
    } else if (name == "envoy.filters.network.tcp_proxy" && last) {
      std::string tp = p + ".typed_config";
      allowOnly(typed, tp, {"@type", "stat_prefix", "cluster", "idle_timeout"});
      if (scalar(required(typed, tp, "@type"), tp + ".@type") !=
          "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy") {
        fail(tp + ".@type",
             "expected type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy");
      }
      out.stat_prefix = scalar(required(typed, tp, "stat_prefix"), tp + ".stat_prefix");
      out.cluster = scalar(required(typed, tp, "cluster"), tp + ".cluster");
      if (typed["idle_timeout"]) {
        out.idle_timeout_ms =
            durationMs(typed["idle_timeout"], tp + ".idle_timeout", kMaxDurationMs, true);
      }
    } else {
      fail(p + ".name",
           "'" + name +
               "' here is not supported; expected envoy.filters.network.wasm first (optional) and "
               "envoy.filters.network.tcp_proxy last");
    }
  }
  if (out.cluster.empty())
    fail(fpath + ".filters", "the chain must end with envoy.filters.network.tcp_proxy");
  return out;
}

ClusterConfig cluster(const YAML::Node& node, const std::string& path) {
  allowOnly(node, path, {"name", "type", "connect_timeout", "load_assignment"});
  ClusterConfig out;
  out.name = scalar(required(node, path, "name"), path + ".name");
  if (node["type"] && scalar(node["type"], path + ".type") != "STATIC")
    fail(path + ".type", "only STATIC clusters");
  if (node["connect_timeout"])
    out.connect_timeout_ms = static_cast<uint32_t>(durationMs(
        node["connect_timeout"], path + ".connect_timeout", kMaxConnectTimeoutMs, false));
  std::string lpath = path + ".load_assignment";
  YAML::Node la = required(node, path, "load_assignment");
  allowOnly(la, lpath, {"cluster_name", "endpoints"});
  YAML::Node endpoints = required(la, lpath, "endpoints");
  if (!endpoints.IsSequence()) fail(lpath + ".endpoints", "must be a list");
  for (size_t i = 0; i < endpoints.size(); ++i) {
    std::string epath = lpath + ".endpoints[" + std::to_string(i) + "]";
    allowOnly(endpoints[i], epath, {"lb_endpoints"});
    YAML::Node lbs = required(endpoints[i], epath, "lb_endpoints");
    for (size_t j = 0; j < lbs.size(); ++j) {
      std::string lb = epath + ".lb_endpoints[" + std::to_string(j) + "]";
      allowOnly(lbs[j], lb, {"endpoint"});
      YAML::Node endpoint = required(lbs[j], lb, "endpoint");
      allowOnly(endpoint, lb + ".endpoint", {"address"});
      out.endpoints.push_back(
          socketAddress(required(endpoint, lb + ".endpoint", "address"), lb + ".endpoint.address"));
    }
  }
  if (out.endpoints.empty()) fail(lpath + ".endpoints", "needs at least one endpoint");
  return out;
}

}  // namespace

Result<EnvoyConfig> parseEnvoyConfig(const std::string& text, const std::string& origin) {
  try {
    YAML::Node root = YAML::Load(text);
    EnvoyConfig config;
    allowOnly(root, "(root)", {"admin", "static_resources"});
    if (YAML::Node admin = root["admin"]) {
      allowOnly(admin, "admin", {"address"});
      config.admin = socketAddress(required(admin, "admin", "address"), "admin.address");
    }
    YAML::Node resources = required(root, "(root)", "static_resources");
    allowOnly(resources, "static_resources", {"listeners", "clusters"});
    YAML::Node listeners = required(resources, "static_resources", "listeners");
    if (!listeners.IsSequence()) fail("static_resources.listeners", "must be a list");
    std::set<std::string> names;
    std::map<std::pair<std::string, uint16_t>, std::string> addresses;
    for (size_t i = 0; i < listeners.size(); ++i) {
      std::string path = "static_resources.listeners[" + std::to_string(i) + "]";
      ListenerConfig l = listener(listeners[i], path);
      if (!names.insert(l.name).second)
        fail(path + ".name", "duplicate listener name '" + l.name + "'");
      auto [it, fresh] =
          addresses.emplace(std::make_pair(l.address.address, l.address.port), l.name);
      if (!fresh) {
        fail(path + ".address", "listener '" + l.name + "' has the same address as listener '" +
                                    it->second + "' (each address is bound once)");
      }
      config.listeners.push_back(std::move(l));
    }
    YAML::Node clusters = required(resources, "static_resources", "clusters");
    if (!clusters.IsSequence()) fail("static_resources.clusters", "must be a list");
    for (size_t i = 0; i < clusters.size(); ++i) {
      std::string path = "static_resources.clusters[" + std::to_string(i) + "]";
      ClusterConfig c = cluster(clusters[i], path);
      if (config.clusters.count(c.name) != 0)
        fail(path + ".name", "duplicate cluster name '" + c.name + "'");
      config.clusters[c.name] = c;
    }
    for (size_t i = 0; i < config.listeners.size(); ++i) {
      if (!config.clusters.count(config.listeners[i].cluster)) {
        fail("static_resources.listeners[" + std::to_string(i) + "] tcp_proxy.cluster",
             "names cluster '" + config.listeners[i].cluster +
                 "', which is not defined in static_resources.clusters");
      }
    }
    return config;
  } catch (const ConfigError& e) {
    return Error{origin + ": " + e.message};
  } catch (const YAML::Exception& e) {
    return Error{origin + ": " + e.what()};
  } catch (const std::exception& e) {
    return Error{origin + ": " + e.what()};
  }
}

Result<EnvoyConfig> loadEnvoyConfig(const std::string& path) {
  auto text = readRegularFile(path, limits::kMaxConfigFileBytes);
  if (!text) return Error{text.error()};
  return parseEnvoyConfig(*text, path);
}

}  // namespace tcpsteer::host
