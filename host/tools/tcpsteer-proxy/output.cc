#include "host/tools/tcpsteer-proxy/output.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <mutex>

namespace tcpsteer::proxy {
namespace {
std::mutex g_mutex;
std::atomic<uint64_t> g_dropped{0};
}  // namespace

void emit(const std::string& line) {
  std::string text = line + '\n';
  std::lock_guard<std::mutex> lock(g_mutex);
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(STDOUT_FILENO, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {  // EPIPE, EBADF, ENOSPC...: the line is lost, the proxy goes on
      ++g_dropped;
      return;
    }
    done += static_cast<size_t>(n);
  }
}

uint64_t droppedOutputLines() {
  return g_dropped.load();
}

}  // namespace tcpsteer::proxy
