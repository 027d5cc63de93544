#include "host/src/log_store.h"

#include "host/src/limits.h"

namespace tcpsteer::host {

void LogStore::add(LogLevel level, uint32_t context_id, std::string message) {
  if (message.size() > limits::kMaxLogMessageBytes) {
    message.resize(limits::kMaxLogMessageBytes);
    message += " [cut at " + std::to_string(limits::kMaxLogMessageBytes) + " bytes]";
  }
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
  bytes_ += message.size();
  entries_.push_back(LogEntry{level, context_id, std::move(message)});
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
