#include "apps/egress-server/listeners.h"

#include <sys/socket.h>

#include <boost/asio/socket_base.hpp>

namespace tcpsteer::apps {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

// Opens and binds (not yet listening): with SO_REUSEPORT when the port is to be shared.
boost::system::error_code bindSocket(tcp::acceptor& acceptor, const tcp::endpoint& endpoint,
                                     bool share_port) {
  boost::system::error_code ec;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec && share_port) {
    int on = 1;
    if (setsockopt(acceptor.native_handle(), SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) != 0)
      ec.assign(errno, boost::system::system_category());
  }
  if (!ec) acceptor.bind(endpoint, ec);
  return ec;
}

}  // namespace

std::vector<std::unique_ptr<tcp::acceptor>> listenOnEveryLoop(
    const tcp::endpoint& endpoint, const std::vector<asio::io_context*>& loops,
    boost::system::error_code& ec) {
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors;
  const bool share_port = loops.size() > 1;
  tcp::endpoint shared = endpoint;
  ec.clear();
  if (share_port) {
    // The probe: bound without SO_REUSEPORT, it fails if anything listens on the address (and
    // picks the port when 0 was asked). Closed before the real sockets bind.
    tcp::acceptor probe(*loops.front());
    ec = bindSocket(probe, endpoint, false);
    if (!ec) shared = probe.local_endpoint(ec);
  }
  for (size_t i = 0; !ec && i < loops.size(); ++i) {
    auto acceptor = std::make_unique<tcp::acceptor>(*loops[i]);
    ec = bindSocket(*acceptor, shared, share_port);
    if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
    acceptors.push_back(std::move(acceptor));
  }
  if (ec) acceptors.clear();
  return acceptors;
}

}  // namespace tcpsteer::apps
