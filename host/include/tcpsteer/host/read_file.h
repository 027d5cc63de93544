// Reading a file a user names (a module, a configuration): only regular files, at most max_bytes,
// so a directory, /dev/zero or a FIFO is one clear error instead of a hang or an empty "file".
#pragma once

#include <cstdint>
#include <string>

#include "tcpsteer/host/result.h"

namespace tcpsteer::host {

Result<std::string> readRegularFile(const std::string& path, uint64_t max_bytes);

}  // namespace tcpsteer::host
