#include "host/tools/tcpsteer-proxy/listeners.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace tcpsteer::proxy {

ListeningSockets::~ListeningSockets() {
  for (int fd : fds_) ::close(fd);
}

Result<void> ListeningSockets::bind(const std::vector<host::ListenerConfig>& listeners) {
  for (const host::ListenerConfig& listener : listeners) {
    const auto& address = listener.address;
    sockaddr_storage storage{};
    socklen_t length = 0;
    auto* v4 = reinterpret_cast<sockaddr_in*>(&storage);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&storage);
    if (inet_pton(AF_INET, address.address.c_str(), &v4->sin_addr) == 1) {
      v4->sin_family = AF_INET;
      v4->sin_port = htons(address.port);
      length = sizeof(sockaddr_in);
    } else if (inet_pton(AF_INET6, address.address.c_str(), &v6->sin6_addr) == 1) {
      v6->sin6_family = AF_INET6;
      v6->sin6_port = htons(address.port);
      length = sizeof(sockaddr_in6);
    } else {
      return Error{"listener " + listener.name + ": '" + address.address +
                   "' is not an IP address"};
    }
    int fd = ::socket(storage.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return Error{"listener " + listener.name + ": socket: " + std::strerror(errno)};
    fds_.push_back(fd);
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);  // TIME_WAIT only
    if (::bind(fd, reinterpret_cast<sockaddr*>(&storage), length) != 0 ||
        ::listen(fd, SOMAXCONN) != 0) {
      return Error{"cannot listen on " + address.address + ":" + std::to_string(address.port) +
                   " (" + listener.name + "): " + std::strerror(errno)};
    }
  }
  return {};
}

}  // namespace tcpsteer::proxy
