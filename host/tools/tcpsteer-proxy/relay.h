// One downstream connection through the chain [network filter] -> tcp_proxy, as Envoy runs it:
// the filter sees every event first; once it continues, tcp_proxy connects to the cluster it
// chose (else its own), and bytes flow both ways with backpressure and half-close; tcp_proxy's
// idle_timeout closes a connection with no bytes either way. Readers wait for readability and read
// into the worker's one buffer, so a connection holds only the bytes in flight.
#pragma once

#include <boost/asio.hpp>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "host/tools/tcpsteer-proxy/network_filter.h"
#include "host/tools/tcpsteer-proxy/stats.h"
#include "tcpsteer/host/envoy_config.h"

namespace tcpsteer::proxy {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

// Bytes queued towards one socket before its reader stops reading (Envoy's buffer high watermark).
inline constexpr size_t kRelayHighWatermark = size_t{1} << 20;

// A wake-up for coroutines on one io_context: waiters re-check their condition after each wake.
// The timer never expires; notify() cancels every pending wait. (Setting the expiry in wait() would
// itself cancel the other waiters, and two waiters would wake each other forever.)
class Signal {
 public:
  explicit Signal(const asio::any_io_executor& executor) : timer_(executor) {
    timer_.expires_at(asio::steady_timer::time_point::max());
  }
  asio::awaitable<void> wait();
  void notify() { timer_.cancel(); }

 private:
  asio::steady_timer timer_;
};

struct RelayContext {
  const host::ListenerConfig& listener;
  const std::map<std::string, host::ClusterConfig>& clusters;
  Stats& stats;
  std::span<char> read_buffer;  // the worker's: used between a readiness wait and the next await
  size_t& next_endpoint;        // round robin over a cluster's endpoints, per worker
};

class Relay final : public NetworkFilterCallbacks, public std::enable_shared_from_this<Relay> {
 public:
  Relay(tcp::socket downstream, RelayContext context);
  ~Relay() override;
  Relay(const Relay&) = delete;
  Relay& operator=(const Relay&) = delete;

  // nullptr: the chain is tcp_proxy alone.
  void setFilter(std::unique_ptr<NetworkFilter> filter) { filter_ = std::move(filter); }
  asio::awaitable<void> run();
  void close(const std::string& reason);

  // NetworkFilterCallbacks
  void continueToTcpProxy(const std::optional<std::string>& cluster) override;
  void writeUpstream(std::string_view bytes, bool end_of_stream) override;
  void writeDownstream(std::string_view bytes, bool end_of_stream) override;
  void closeConnection() override;

 private:
  struct Outbox {
    std::string pending;  // released, not yet written
    bool end = false;     // pass the half-close on after pending
    bool ended = false;   // shutdown(send) done
    uint64_t written = 0;
  };

  asio::awaitable<void> readLoop(tcp::socket& from, bool downstream);
  asio::awaitable<void> writeLoop(tcp::socket& to, Outbox& box);
  asio::awaitable<void> proceed();
  asio::awaitable<bool> connectUpstream(const host::ClusterConfig& cluster);
  asio::awaitable<void> idleWatchdog();
  void touch() { last_activity_ = std::chrono::steady_clock::now(); }

  tcp::socket down_;
  tcp::socket up_;
  RelayContext context_;
  std::unique_ptr<NetworkFilter> filter_;
  Signal wake_;
  asio::steady_timer idle_timer_;
  Outbox to_up_;
  Outbox to_down_;
  bool started_ = false;  // the chain reached tcp_proxy
  bool closing_ = false;
  std::optional<std::string> cluster_override_;
  std::string cluster_;
  std::string outcome_;     // what tcp_proxy did: "-> ENDPOINT", NC or UF
  std::string end_reason_;  // why the connection ended ("done": both sides finished)
  std::string source_;
  std::string destination_;
  std::chrono::steady_clock::time_point last_activity_;
};

std::string endpointText(const tcp::endpoint& endpoint);

}  // namespace tcpsteer::proxy
