// The WASI functions Envoy provides (tier 1; tier 2 when configured): stdout/stderr become log
// lines, the environment is vm_config.environment_variables, the rest is what Envoy answers.
#include <cstring>

#include "host/src/import_functions.h"
#include "host/src/limits.h"

namespace tcpsteer::host::wasi {
namespace {

// WASI errno values (wasi_snapshot_preview1).
enum Errno : uint32_t {
  kSuccess = 0,
  kBadf = 8,
  kFault = 21,
  kInval = 28,
  kNoent = 44,
  kNosys = 52,
  kNotsup = 58
};
constexpr uint32_t kStdout = 1;
constexpr uint32_t kStderr = 2;
constexpr uint32_t kClockMonotonic = 1;
constexpr uint8_t kRightFdWrite = 64;
constexpr uint32_t kMaxRandomBytes = 65536;  // Envoy's random_get limit

bool isOutput(uint32_t fd) {
  return fd == kStdout || fd == kStderr;
}

}  // namespace

uint32_t fd_write(ImportCall& call) {
  uint32_t fd = call.u32(0);
  if (!isOutput(fd)) return kBadf;
  uint32_t count = call.u32(2);
  if (count > limits::kMaxWasiIovecs) return kInval;
  // A short write is legal: bytes past the log line cap are not taken (and not reported written).
  std::string text;
  for (uint32_t i = 0; i < count && text.size() < limits::kMaxLogMessageBytes; ++i) {
    std::string_view iov;
    if (!call.memory.view(call.u32(1) + 8ULL * i, 8, &iov)) return kFault;
    uint32_t base = 0;
    uint32_t length = 0;
    std::memcpy(&base, iov.data(), 4);
    std::memcpy(&length, iov.data() + 4, 4);
    std::string_view part;
    if (!call.memory.view(base, length, &part)) return kFault;
    text.append(part.substr(0, limits::kMaxLogMessageBytes - text.size()));
  }
  if (!call.memory.writeU32(call.u32(3), static_cast<uint32_t>(text.size()))) return kFault;
  if (!text.empty() && text.back() == '\n') text.pop_back();
  call.envoy.log(fd == kStdout ? LogLevel::kInfo : LogLevel::kError, text);
  return kSuccess;
}

uint32_t fd_fdstat_get(ImportCall& call) {
  if (!isOutput(call.u32(0))) return kBadf;
  std::string stat(24, '\0');
  stat[8] = static_cast<char>(kRightFdWrite);  // rights_base
  return call.memory.write(call.u32(1), stat) ? kSuccess : kFault;
}

namespace {
// environ_sizes_get and environ_get walk the same entries.
uint32_t environment(ImportCall& call, bool sizes_only) {
  uint32_t count = 0;
  uint32_t bytes = 0;
  uint32_t pointer_slot = call.u32(0);
  uint32_t buffer = call.u32(1);
  for (const auto& [key, value] : call.envoy.options.environment) {
    std::string entry = key;
    entry += '=';
    entry += value;
    entry.push_back('\0');
    if (!sizes_only && (!call.memory.writeU32(pointer_slot + 4ULL * count, buffer + bytes) ||
                        !call.memory.write(uint64_t{buffer} + bytes, entry))) {
      return kFault;
    }
    ++count;
    bytes += static_cast<uint32_t>(entry.size());
  }
  if (sizes_only &&
      (!call.memory.writeU32(call.u32(0), count) || !call.memory.writeU32(call.u32(1), bytes)))
    return kFault;
  return kSuccess;
}
}  // namespace

uint32_t environ_sizes_get(ImportCall& call) {
  return environment(call, true);
}
uint32_t environ_get(ImportCall& call) {
  return environment(call, false);
}

uint32_t args_sizes_get(ImportCall& call) {
  return call.memory.writeU32(call.u32(0), 0) && call.memory.writeU32(call.u32(1), 0) ? kSuccess
                                                                                      : kFault;
}
uint32_t args_get(ImportCall& /*call*/) {
  return kSuccess;  // no arguments
}

uint32_t clock_time_get(ImportCall& call) {
  if (call.args[0] > kClockMonotonic) return kNotsup;
  return call.memory.writeU64(call.u32(2), call.envoy.now()) ? kSuccess : kFault;
}

uint32_t random_get(ImportCall& call) {
  if (call.u32(1) > kMaxRandomBytes) return kInval;
  std::string bytes(call.u32(1), '\0');
  for (char& c : bytes) c = static_cast<char>(call.envoy.random());
  return call.memory.write(call.u32(0), bytes) ? kSuccess : kFault;
}

uint32_t fd_read(ImportCall& /*call*/) {
  return kNosys;
}
uint32_t fd_prestat_dir_name(ImportCall& /*call*/) {
  return kNosys;
}
uint32_t poll_oneoff(ImportCall& /*call*/) {
  return kNosys;
}
uint32_t fd_fdstat_set_flags(ImportCall& /*call*/) {
  return kNosys;
}
uint32_t path_open(ImportCall& /*call*/) {
  return kNoent;
}
uint32_t fd_prestat_get(ImportCall& /*call*/) {
  return kBadf;  // no preopened directories
}
uint32_t fd_seek(ImportCall& /*call*/) {
  return kSuccess;
}
uint32_t fd_close(ImportCall& /*call*/) {
  return kSuccess;
}
uint32_t sched_yield(ImportCall& /*call*/) {
  return kSuccess;
}
// Envoy logs proc_exit and neither traps nor exits.
uint32_t proc_exit(ImportCall& /*call*/) {
  return kSuccess;
}

}  // namespace tcpsteer::host::wasi
