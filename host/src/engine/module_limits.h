// Load-time limits on a module's binary, checked before any engine reads it: the engines reserve
// memory from the counts a module declares (wabt reserves a vector of the data count section's
// size, and creates tables and function frames of the declared sizes), so a 13-byte module could
// otherwise ask for gigabytes. Each refusal names the limit (host/src/limits.h).
#pragma once

#include <cstdint>
#include <span>

#include "tcpsteer/host/result.h"

namespace tcpsteer::host {

Result<void> checkModuleLimits(std::span<const uint8_t> module);

}  // namespace tcpsteer::host
