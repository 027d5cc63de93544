#include "host/src/envoy_config.h"

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <set>

namespace tcpsteer::host {
namespace {

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

uint32_t durationMs(const YAML::Node& node, const std::string& path) {
  std::string text = scalar(node, path);
  try {
    if (text.size() > 2 && text.ends_with("ms"))
      return static_cast<uint32_t>(std::stod(text.substr(0, text.size() - 2)));
    if (text.size() > 1 && text.back() == 's')
      return static_cast<uint32_t>(std::stod(text.substr(0, text.size() - 1)) * 1000);
  } catch (const std::exception&) {
    // not a number: reported just below
    fail(path, "must be a duration such as 1s or 250ms");
  }
  fail(path, "must be a duration such as 1s or 250ms");
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
  if (config["fail_open"]) out.fail_open = config["fail_open"].as<bool>();
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
      allowOnly(typed, tp, {"@type", "stat_prefix", "cluster"});
      if (scalar(required(typed, tp, "@type"), tp + ".@type") !=
          "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy") {
        fail(tp + ".@type",
             "expected type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy");
      }
      out.stat_prefix = scalar(required(typed, tp, "stat_prefix"), tp + ".stat_prefix");
      out.cluster = scalar(required(typed, tp, "cluster"), tp + ".cluster");
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
    out.connect_timeout_ms = durationMs(node["connect_timeout"], path + ".connect_timeout");
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

std::optional<EnvoyConfig> loadEnvoyConfig(const std::string& path, std::string* error) {
  try {
    YAML::Node root = YAML::LoadFile(path);
    EnvoyConfig config;
    allowOnly(root, "(root)", {"admin", "static_resources"});
    if (YAML::Node admin = root["admin"]) {
      allowOnly(admin, "admin", {"address"});
      config.admin = socketAddress(required(admin, "admin", "address"), "admin.address");
    }
    YAML::Node resources = required(root, "(root)", "static_resources");
    allowOnly(resources, "static_resources", {"listeners", "clusters"});
    YAML::Node listeners = required(resources, "static_resources", "listeners");
    for (size_t i = 0; i < listeners.size(); ++i) {
      config.listeners.push_back(
          listener(listeners[i], "static_resources.listeners[" + std::to_string(i) + "]"));
    }
    YAML::Node clusters = required(resources, "static_resources", "clusters");
    for (size_t i = 0; i < clusters.size(); ++i) {
      ClusterConfig c =
          cluster(clusters[i], "static_resources.clusters[" + std::to_string(i) + "]");
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
    *error = path + ": " + e.message;
  } catch (const YAML::Exception& e) {
    *error = path + ": " + e.what();
  }
  return std::nullopt;
}

}  // namespace tcpsteer::host
