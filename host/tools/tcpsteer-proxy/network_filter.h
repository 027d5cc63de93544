// The proxy's seam between its relay and a network filter, shaped like Envoy's
// Network::ReadFilter and its callbacks: the relay hands the filter each event with byte views,
// and the filter tells the relay, through callbacks, when the chain continues to tcp_proxy (and on
// which cluster), which bytes it releases each way, and when it closes. A second kind of filter
// needs a new NetworkFilter, not a change to the relay.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace tcpsteer::proxy {

class NetworkFilterCallbacks {
 public:
  virtual ~NetworkFilterCallbacks() = default;
  // The chain reached tcp_proxy; a cluster chosen by the filter overrides tcp_proxy's own.
  virtual void continueToTcpProxy(const std::optional<std::string>& cluster) = 0;
  virtual void writeUpstream(std::string_view bytes, bool end_of_stream) = 0;
  virtual void writeDownstream(std::string_view bytes, bool end_of_stream) = 0;
  virtual void closeConnection() = 0;
};

class NetworkFilter {
 public:
  virtual ~NetworkFilter() = default;
  virtual void onNewConnection(const std::string& source, const std::string& destination) = 0;
  virtual void onDownstreamData(std::string_view bytes, bool end_of_stream) = 0;
  virtual void onUpstreamData(std::string_view bytes, bool end_of_stream) = 0;
  // The connection is over (any cause); the filter's context ends here.
  virtual void onClose() = 0;
  // Bytes the filter holds while it pauses the chain: the relay stops reading at a limit.
  virtual size_t heldDownstreamBytes() const = 0;
};

}  // namespace tcpsteer::proxy
