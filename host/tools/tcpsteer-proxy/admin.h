// The admin endpoint (Envoy's admin: /ready, /stats/prometheus): one request per connection, with
// a deadline on the whole exchange, so a client that never finishes its request holds nothing.
#pragma once

#include <boost/asio.hpp>

#include "host/tools/tcpsteer-proxy/stats.h"

namespace tcpsteer::proxy {

void startAdmin(boost::asio::ip::tcp::acceptor& acceptor, Stats& stats);

}  // namespace tcpsteer::proxy
