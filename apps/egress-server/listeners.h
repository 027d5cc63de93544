// The listening sockets of one address: one per event loop, all on the same port.
//
// Each loop accepts for itself from a socket of its own, and the kernel spreads new connections
// over them (SO_REUSEPORT). One shared acceptor handing connections to the other loops cost a
// cross-thread wake-up per connection (an epoll_ctl on the other loop's interrupter, often a
// futex): 3-4 % more CPU per new connection, measured. Every loop accepting from one shared socket
// cost 20 % more (each connection woke every loop, all but one found nothing).
//
// SO_REUSEPORT would let a second process bind the port beside us and silently take half the
// connections: a probe socket without it binds the address first, so the port is refused when
// anything already listens there, and a second egress-server's own probe fails against ours. Only
// a process of the same user that sets SO_REUSEPORT itself could join, and that user can already
// signal or trace this one.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <memory>
#include <vector>

namespace tcpsteer::apps {

// One listening socket per loop, in that loop, bound to endpoint (port 0: one port the kernel
// picks, shared by all). Empty, with ec set, when the address cannot be used.
std::vector<std::unique_ptr<boost::asio::ip::tcp::acceptor>> listenOnEveryLoop(
    const boost::asio::ip::tcp::endpoint& endpoint,
    const std::vector<boost::asio::io_context*>& loops, boost::system::error_code& ec);

}  // namespace tcpsteer::apps
