// The log lines a module writes (proxy_log, WASI stdout/stderr), kept until the embedder takes
// them. Bounded: a line is cut at limits::kMaxLogMessageBytes, and once
// limits::kMaxRetainedLogBytes are held, further lines are dropped and counted (one warn line says
// so) instead of growing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tcpsteer/host/vm.h"

namespace tcpsteer::host {

class LogStore {
 public:
  // Copies at most limits::kMaxLogMessageBytes of message, and nothing once dropping.
  void add(LogLevel level, uint32_t context_id, std::string_view message);
  // Lines the host itself writes (VM failures): never dropped.
  void addHostLine(LogLevel level, uint32_t context_id, std::string message);
  const std::vector<LogEntry>& entries() const { return entries_; }
  void clear();
  uint64_t dropped() const { return dropped_; }

 private:
  std::vector<LogEntry> entries_;
  size_t bytes_ = 0;
  uint64_t dropped_ = 0;
  bool dropping_ = false;
};

}  // namespace tcpsteer::host
