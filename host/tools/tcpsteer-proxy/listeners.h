// The process binds each listener's address once (no SO_REUSEPORT: a second proxy, or a second
// listener, on the same address is refused at start instead of silently splitting traffic); every
// worker accepts on its own descriptor of that socket.
#pragma once

#include <vector>

#include "tcpsteer/host/envoy_config.h"
#include "tcpsteer/host/result.h"

namespace tcpsteer::proxy {

class ListeningSockets {
 public:
  ListeningSockets() = default;
  ~ListeningSockets();
  ListeningSockets(const ListeningSockets&) = delete;
  ListeningSockets& operator=(const ListeningSockets&) = delete;

  Result<void> bind(const std::vector<host::ListenerConfig>& listeners);
  const std::vector<int>& fds() const { return fds_; }

 private:
  std::vector<int> fds_;
};

}  // namespace tcpsteer::proxy
