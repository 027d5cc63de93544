#include "host/tools/tcpsteer-proxy/relay.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "host/tools/tcpsteer-proxy/output.h"

namespace tcpsteer::proxy {
namespace {

using namespace asio::experimental::awaitable_operators;
constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);

}  // namespace

asio::awaitable<void> Signal::wait() {
  co_await timer_.async_wait(kNoThrow);
}

std::string endpointText(const tcp::endpoint& endpoint) {
  auto address = endpoint.address();
  if (address.is_v6()) return "[" + address.to_string() + "]:" + std::to_string(endpoint.port());
  return address.to_string() + ":" + std::to_string(endpoint.port());
}

Relay::Relay(tcp::socket downstream, RelayContext context)
    : down_(std::move(downstream)),
      up_(down_.get_executor()),
      context_(context),
      wake_(down_.get_executor()),
      idle_timer_(down_.get_executor()),
      cluster_(context.listener.cluster) {
  ++context_.stats.downstream_cx_total;
  ++context_.stats.downstream_cx_active;
  touch();
}

Relay::~Relay() {
  --context_.stats.downstream_cx_active;
}

void Relay::close(const std::string& reason) {
  if (closing_) return;
  closing_ = true;
  end_reason_ = reason;
  boost::system::error_code ignored;
  down_.close(ignored);
  up_.close(ignored);
  wake_.notify();
  idle_timer_.cancel();
}

void Relay::continueToTcpProxy(const std::optional<std::string>& cluster) {
  started_ = true;
  cluster_override_ = cluster;
  wake_.notify();
}

void Relay::writeUpstream(std::string_view bytes, bool end_of_stream) {
  to_up_.pending.append(bytes);
  to_up_.end |= end_of_stream;
  wake_.notify();
}

void Relay::writeDownstream(std::string_view bytes, bool end_of_stream) {
  to_down_.pending.append(bytes);
  to_down_.end |= end_of_stream;
  wake_.notify();
}

void Relay::closeConnection() {
  close("closed by the filter");
}

asio::awaitable<void> Relay::run() {
  auto self = shared_from_this();  // alive until the last loop returns
  boost::system::error_code ec;
  source_ = endpointText(down_.remote_endpoint(ec));
  destination_ = endpointText(down_.local_endpoint(ec));
  down_.non_blocking(true, ec);
  if (filter_) {
    filter_->onNewConnection(source_, destination_);
  } else {
    continueToTcpProxy(std::nullopt);
  }
  co_await ((readLoop(down_, true) && proceed()) || idleWatchdog());
  close("done");
  if (filter_) filter_->onClose();
  // What tcp_proxy did (NC, UF, or the upstream reached), then why the connection ended.
  std::string outcome = outcome_.empty()        ? end_reason_
                        : end_reason_ == "done" ? outcome_
                                                : outcome_ + " (" + end_reason_ + ")";
  emit("[access] listener=" + context_.listener.name + " cluster=" + cluster_ + " src=" + source_ +
       " dst=" + destination_ + " " + outcome + " bytes_up=" + std::to_string(to_up_.written) +
       " bytes_down=" + std::to_string(to_down_.written));
}

// Reads one side and hands each chunk to the filter (or straight to the other side). Stops reading
// while the filter holds kMaxStreamBufferBytes or the other side is a high watermark behind.
asio::awaitable<void> Relay::readLoop(tcp::socket& from, bool downstream) {
  Outbox& next = downstream ? to_up_ : to_down_;
  while (!closing_) {
    while (!closing_ && (next.pending.size() >= kRelayHighWatermark ||
                         (downstream && filter_ &&
                          filter_->heldDownstreamBytes() >= host::limits::kMaxStreamBufferBytes))) {
      co_await wake_.wait();
    }
    if (closing_) break;
    auto [wait_ec] = co_await from.async_wait(tcp::socket::wait_read, kNoThrow);
    if (closing_) break;
    if (wait_ec) {
      close(std::string(downstream ? "downstream" : "upstream") + " error: " + wait_ec.message());
      break;
    }
    boost::system::error_code ec;
    size_t n = from.read_some(asio::buffer(context_.read_buffer), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) continue;
    bool eof = ec == asio::error::eof;
    if (ec && !eof) {
      close(std::string(downstream ? "downstream" : "upstream") + " reset: " + ec.message());
      break;
    }
    touch();
    std::string_view bytes(context_.read_buffer.data(), eof ? 0 : n);
    if (downstream) {
      filter_ ? filter_->onDownstreamData(bytes, eof) : writeUpstream(bytes, eof);
    } else {
      filter_ ? filter_->onUpstreamData(bytes, eof) : writeDownstream(bytes, eof);
    }
    if (eof) {
      // The client went away while the filter still held the chain: tcp_proxy never starts.
      if (downstream && !started_) close("closed before tcp_proxy started");
      break;
    }
  }
}

asio::awaitable<void> Relay::writeLoop(tcp::socket& to, Outbox& box) {
  while (true) {
    while (!closing_ && box.pending.empty() && !box.end) co_await wake_.wait();
    if (closing_) co_return;
    if (!box.pending.empty()) {
      std::string out;
      out.swap(box.pending);  // the relay keeps no buffer once the bytes are written
      auto [ec, n] = co_await asio::async_write(to, asio::buffer(out), kNoThrow);
      box.written += n;
      touch();
      wake_.notify();  // a reader may wait for this side to drain
      if (ec) {
        if (!closing_) close("write failed: " + ec.message());
        co_return;
      }
      continue;
    }
    boost::system::error_code ignored;
    to.shutdown(tcp::socket::shutdown_send, ignored);  // pass the half-close on
    box.ended = true;
    if (to_up_.ended && to_down_.ended) close("done");
    co_return;
  }
}

asio::awaitable<void> Relay::proceed() {
  while (!started_ && !closing_) co_await wake_.wait();
  if (closing_) co_return;
  if (cluster_override_) cluster_ = *cluster_override_;
  auto found = context_.clusters.find(cluster_);
  if (found == context_.clusters.end()) {
    ++context_.stats.no_cluster;
    outcome_ = "no cluster '" + cluster_ + "' (NC)";
    close("done");
    co_return;
  }
  if (!co_await connectUpstream(found->second)) co_return;
  up_.non_blocking(true);
  co_await (writeLoop(up_, to_up_) && readLoop(up_, false) && writeLoop(down_, to_down_));
}

asio::awaitable<bool> Relay::connectUpstream(const host::ClusterConfig& cluster) {
  const auto& target = cluster.endpoints[context_.next_endpoint++ % cluster.endpoints.size()];
  tcp::endpoint endpoint(asio::ip::make_address(target.address), target.port);
  asio::steady_timer timer(up_.get_executor());
  timer.expires_after(std::chrono::milliseconds(cluster.connect_timeout_ms));
  auto result = co_await (up_.async_connect(endpoint, kNoThrow) || timer.async_wait(kNoThrow));
  if (closing_) co_return false;
  boost::system::error_code ec =
      result.index() == 0 ? std::get<0>(std::get<0>(result)) : asio::error::timed_out;
  if (ec) {
    ++context_.stats.upstream_cx_connect_fail;
    outcome_ =
        "upstream connect to " + endpointText(endpoint) + " failed: " + ec.message() + " (UF)";
    close("done");
    co_return false;
  }
  outcome_ = "-> " + endpointText(endpoint);
  touch();
  co_return true;
}

// tcp_proxy's idle_timeout: no bytes read or written either way for that long closes both sides.
asio::awaitable<void> Relay::idleWatchdog() {
  const auto idle = std::chrono::milliseconds(context_.listener.idle_timeout_ms);
  while (!closing_) {
    if (idle.count() == 0) {
      idle_timer_.expires_at(asio::steady_timer::time_point::max());
    } else {
      idle_timer_.expires_at(last_activity_ + idle);
    }
    auto [ec] = co_await idle_timer_.async_wait(kNoThrow);
    if (ec || closing_) co_return;  // cancelled: the connection ended
    if (std::chrono::steady_clock::now() - last_activity_ >= idle) {
      ++context_.stats.idle_timeout;
      close("idle timeout");
      co_return;
    }
  }
}

}  // namespace tcpsteer::proxy
