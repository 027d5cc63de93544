#include "host/src/log_store.h"

#include "host/src/limits.h"

namespace tcpsteer::host {

void LogStore::add(LogLevel level, uint32_t context_id, std::string_view message) {
  const bool cut = message.size() > limits::kMaxLogMessageBytes;
  if (cut) message = message.substr(0, limits::kMaxLogMessageBytes);
  if (bytes_ + message.size() > limits::kMaxRetainedLogBytes) {
    ++dropped_;
    if (!dropping_) {
      dropping_ = true;
      entries_.push_back(LogEntry{LogLevel::kWarn, context_id,
                                  "tcpsteer-host: log lines dropped: more than " +
                                      std::to_string(limits::kMaxRetainedLogBytes) +
                                      " bytes of log lines were written before they were read"});
    }
    return;
  }
  std::string kept(message);
  if (cut) kept += " [cut at " + std::to_string(limits::kMaxLogMessageBytes) + " bytes]";
  bytes_ += kept.size();
  entries_.push_back(LogEntry{level, context_id, std::move(kept)});
}

void LogStore::addHostLine(LogLevel level, uint32_t context_id, std::string message) {
  entries_.push_back(LogEntry{level, context_id, std::move(message)});
}

void LogStore::clear() {
  entries_.clear();
  bytes_ = 0;
  dropping_ = false;
}

}  // namespace tcpsteer::host
