#include "tcpsteer/host/read_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace tcpsteer::host {

Result<std::string> readRegularFile(const std::string& path, uint64_t max_bytes) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer; the type is checked right after.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return Error{"cannot read " + path + ": " + std::strerror(errno)};
  struct stat info{};
  std::string out;
  std::string problem;
  if (::fstat(fd, &info) != 0) {
    problem = std::strerror(errno);
  } else if (!S_ISREG(info.st_mode)) {
    problem = S_ISDIR(info.st_mode) ? "is a directory" : "not a regular file";
  } else if (static_cast<uint64_t>(info.st_size) > max_bytes) {
    problem = "larger than the limit of " + std::to_string(max_bytes) + " bytes";
  } else {
    out.resize(static_cast<size_t>(info.st_size));
    size_t done = 0;
    while (done < out.size()) {
      ssize_t n = ::read(fd, out.data() + done, out.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;  // the file shrank while being read: take what is there
      done += static_cast<size_t>(n);
    }
    out.resize(done);
  }
  ::close(fd);
  if (!problem.empty()) return Error{"cannot read " + path + ": " + problem};
  return out;
}

}  // namespace tcpsteer::host
