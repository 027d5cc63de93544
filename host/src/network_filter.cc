// The network-filter state machine of Envoy's filter manager for one wasm filter in front of
// tcp_proxy: the callback order per connection, Pause/Continue (the chain stops at the filter and
// tcp_proxy starts, reading envoy.tcp_proxy.cluster, when it continues), the data held while
// paused, half-closes delivered once per direction, deferred close/continue requests, and the
// fail-open / fail-closed policy of a failed VM.
#include "host/src/envoy_host.h"
#include "host/src/properties.h"
#include "tcpsteer/host/vm.h"

namespace tcpsteer::host {

using proxy_wasm::BufferType;

ConnectionObserver* Vm::observerOf(const Connection& connection) const {
  auto it = observers_.find(connection.context_id);
  return it == observers_.end() ? nullptr : it->second;
}

void Vm::startTcpProxy(Connection& connection) {
  if (connection.tcp_proxy_started || connection.downstream_closed) return;
  connection.tcp_proxy_started = true;
  connection.paused = false;
  if (auto it = connection.filter_state.find("envoy.tcp_proxy.cluster");
      it != connection.filter_state.end()) {
    connection.cluster_at_start = it->second;
  }
  if (ConnectionObserver* observer = observerOf(connection))
    observer->onTcpProxyStart(connection.cluster_at_start);
}

// Everything the filter holds goes upstream, with the client's half-close once it was seen.
void Vm::releaseUpstream(Connection& connection) {
  bool end = connection.downstream_end_of_stream && !connection.upstream_end_released;
  if (connection.downstream_buffer.empty() && !end) return;
  connection.upstream_end_released |= end;
  if (ConnectionObserver* observer = observerOf(connection)) {
    observer->onReleaseUpstream(connection.downstream_buffer, end);
  } else {
    connection.forwarded_upstream += connection.downstream_buffer;
  }
  connection.downstream_buffer.clear();
}

void Vm::releaseDownstream(Connection& connection, bool end_of_stream) {
  bool end = end_of_stream && !connection.downstream_end_released;
  if (connection.upstream_buffer.empty() && !end) return;
  connection.downstream_end_released |= end;
  if (ConnectionObserver* observer = observerOf(connection)) {
    observer->onReleaseDownstream(connection.upstream_buffer, end);
  } else {
    connection.forwarded_downstream += connection.upstream_buffer;
  }
  connection.upstream_buffer.clear();
}

void Vm::closeByFilter(Connection& connection) {
  bool first = !connection.downstream_closed;
  connection.closed_by_filter = true;
  closeDownstream(connection.context_id, PeerType::kLocal);
  if (ConnectionObserver* observer = observerOf(connection); observer != nullptr && first)
    observer->onCloseByFilter();
}

Action Vm::invokeAction(const char* name, std::initializer_list<uint64_t> args,
                        Connection& connection) {
  if (failure_) {
    if (envoy_->options.fail_open) return Action::kContinue;
    connection.closed_by_filter = true;  // fail closed: both directions closed once
    return Action::kPause;
  }
  uint64_t result = 0;
  if (!invoke(name, args, &result, connection.context_id)) {
    if (!failure_) return Action::kContinue;  // callback not exported
    if (envoy_->options.fail_open) return Action::kContinue;
    connection.closed_by_filter = true;
    return Action::kPause;
  }
  return result == 0 ? Action::kContinue : Action::kPause;
}

void Vm::applyDeferred(Connection& connection) {
  uint32_t id = connection.context_id;
  if (envoy_->continue_requested.erase(id) > 0 && connection.paused) {
    startTcpProxy(connection);
    releaseUpstream(connection);
  }
  if (envoy_->close_requested.erase(id) > 0 ||
      (connection.closed_by_filter && !connection.downstream_closed)) {
    closeByFilter(connection);
  }
}

uint32_t Vm::newConnection(const std::string& source_address,
                           const std::string& destination_address,
                           const std::map<std::string, std::string>& extra_properties,
                           ConnectionObserver* observer) {
  uint32_t id = envoy_->next_context_id++;
  Connection& connection = envoy_->connections[id];
  connection.context_id = id;
  if (observer != nullptr) observers_[id] = observer;
  connection.properties = connectionProperties(source_address, destination_address, id);
  for (const auto& [key, value] : extra_properties) {
    if (value == kUnsetProperty) {
      connection.properties.erase(key);
    } else {
      connection.properties[key] = value;
    }
  }
  if (failure_) {
    // Envoy's createFilter on a failed VM: fail-open leaves the filter out, fail-closed closes.
    if (envoy_->options.fail_open) {
      connection.filter_skipped = true;
      startTcpProxy(connection);
    } else {
      connection.closed_by_filter = true;
      connection.downstream_closed = true;
      if (observer != nullptr) observer->onCloseByFilter();
    }
    return id;
  }
  invoke("proxy_on_context_create", {id, envoy_->root_context_id}, nullptr, id);
  Action action = invokeAction("proxy_on_new_connection", {id}, connection);
  if (action == Action::kContinue) {
    startTcpProxy(connection);
  } else {
    connection.paused = true;
  }
  applyDeferred(connection);
  return id;
}

Action Vm::downstreamData(uint32_t id, std::string_view bytes, bool end_of_stream) {
  auto it = envoy_->connections.find(id);
  if (it == envoy_->connections.end() || it->second.downstream_closed ||
      it->second.downstream_end_of_stream) {
    return Action::kContinue;  // nothing after a close or a half-close reaches the filter
  }
  Connection& connection = it->second;
  connection.downstream_buffer.append(bytes);
  connection.downstream_end_of_stream = end_of_stream;
  if (connection.filter_skipped) {
    releaseUpstream(connection);
    return Action::kContinue;
  }
  envoy_->callback_buffer = BufferType::kNetworkDownstreamData;
  Action action =
      invokeAction("proxy_on_downstream_data",
                   {id, connection.downstream_buffer.size(), end_of_stream ? 1u : 0u}, connection);
  envoy_->callback_buffer.reset();
  if (action == Action::kContinue) {
    startTcpProxy(connection);  // a paused chain resumes: tcp_proxy picks its cluster now
    if (!connection.closed_by_filter) releaseUpstream(connection);
  } else {
    connection.paused = true;
  }
  applyDeferred(connection);
  return action;
}

Action Vm::upstreamData(uint32_t id, std::string_view bytes, bool end_of_stream) {
  auto it = envoy_->connections.find(id);
  if (it == envoy_->connections.end() || it->second.downstream_closed || it->second.upstream_closed)
    return Action::kContinue;
  Connection& connection = it->second;
  connection.upstream_buffer.append(bytes);
  Action action = Action::kContinue;
  if (!connection.filter_skipped) {
    envoy_->callback_buffer = BufferType::kNetworkUpstreamData;
    action =
        invokeAction("proxy_on_upstream_data",
                     {id, connection.upstream_buffer.size(), end_of_stream ? 1u : 0u}, connection);
    envoy_->callback_buffer.reset();
  }
  if (action == Action::kContinue && !connection.closed_by_filter)
    releaseDownstream(connection, end_of_stream);
  if (end_of_stream && !connection.upstream_closed) {
    connection.upstream_closed = true;
    if (!connection.filter_skipped)
      invoke("proxy_on_upstream_connection_close", {id, 0}, nullptr, id);
  }
  applyDeferred(connection);
  return action;
}

void Vm::closeDownstream(uint32_t id, PeerType peer) {
  auto it = envoy_->connections.find(id);
  if (it == envoy_->connections.end() || it->second.downstream_closed) return;
  Connection& connection = it->second;
  connection.downstream_closed = true;
  if (connection.filter_skipped || failure_) return;
  invoke("proxy_on_downstream_connection_close", {id, static_cast<uint64_t>(peer)}, nullptr, id);
  invoke("proxy_on_done", {id}, nullptr, id);
  invoke("proxy_on_log", {id}, nullptr, id);
  invoke("proxy_on_delete", {id}, nullptr, id);
  envoy_->close_requested.erase(id);
  envoy_->continue_requested.erase(id);
}

size_t Vm::bufferedDownstreamBytes(uint32_t id) const {
  auto it = envoy_->connections.find(id);
  return it == envoy_->connections.end() ? 0 : it->second.downstream_buffer.size();
}

const Connection* Vm::connection(uint32_t id) const {
  auto it = envoy_->connections.find(id);
  return it == envoy_->connections.end() ? nullptr : &it->second;
}

void Vm::forgetConnection(uint32_t id) {
  envoy_->connections.erase(id);
  observers_.erase(id);
}

std::string Vm::takeForwardedUpstream(uint32_t id) {
  auto it = envoy_->connections.find(id);
  return it == envoy_->connections.end()
             ? std::string()
             : std::exchange(it->second.forwarded_upstream, std::string());
}

std::string Vm::takeForwardedDownstream(uint32_t id) {
  auto it = envoy_->connections.find(id);
  return it == envoy_->connections.end()
             ? std::string()
             : std::exchange(it->second.forwarded_downstream, std::string());
}

}  // namespace tcpsteer::host
