#include "host/src/shared_data.h"

#include "host/src/limits.h"

namespace tcpsteer::host {

using proxy_wasm::WasmResult;

WasmResult SharedData::get(std::string_view key, std::string_view* value, uint32_t* cas) const {
  auto it = entries_.find(key);
  if (it == entries_.end()) return WasmResult::kNotFound;
  *value = it->second.value;
  *cas = it->second.cas;
  return WasmResult::kOk;
}

WasmResult SharedData::set(std::string_view key, std::string_view value, uint32_t cas) {
  auto it = entries_.find(key);
  uint32_t current = it == entries_.end() ? 0 : it->second.cas;
  if (cas != 0 && cas != current) return WasmResult::kCasMismatch;
  size_t old_bytes = it == entries_.end() ? 0 : key.size() + it->second.value.size();
  size_t new_bytes = key.size() + value.size();
  if ((it == entries_.end() && entries_.size() >= limits::kMaxSharedDataEntries) ||
      bytes_ - old_bytes + new_bytes > limits::kMaxSharedDataBytes) {
    return limits::kHostLimitStatus;
  }
  if (it == entries_.end()) it = entries_.emplace(std::string(key), Entry{}).first;
  it->second.value.assign(value);
  it->second.cas = current + 1;
  bytes_ = bytes_ - old_bytes + new_bytes;
  return WasmResult::kOk;
}

WasmResult SharedQueues::registerQueue(std::string_view name, uint32_t* token) {
  if (auto it = tokens_.find(name); it != tokens_.end()) {
    *token = it->second;
    return WasmResult::kOk;
  }
  if (queues_.size() >= limits::kMaxSharedQueues || name.size() > limits::kMaxSharedQueueNameBytes)
    return limits::kHostLimitStatus;
  queues_.emplace_back();
  *token = static_cast<uint32_t>(queues_.size());
  tokens_.emplace(std::string(name), *token);
  return WasmResult::kOk;
}

WasmResult SharedQueues::resolve(std::string_view name, uint32_t* token) const {
  auto it = tokens_.find(name);
  if (it == tokens_.end()) return WasmResult::kNotFound;
  *token = it->second;
  return WasmResult::kOk;
}

WasmResult SharedQueues::enqueue(uint32_t token, std::string_view data) {
  if (token == 0 || token > queues_.size()) return WasmResult::kNotFound;
  auto& queue = queues_[token - 1];
  if (queue.size() >= limits::kMaxQueuedItems || bytes_ + data.size() > limits::kMaxQueuedBytes)
    return limits::kHostLimitStatus;
  queue.emplace_back(data);
  bytes_ += data.size();
  return WasmResult::kOk;
}

WasmResult SharedQueues::dequeue(uint32_t token, std::string* data) {
  if (token == 0 || token > queues_.size()) return WasmResult::kNotFound;
  auto& queue = queues_[token - 1];
  if (queue.empty()) return WasmResult::kEmpty;
  *data = std::move(queue.front());
  queue.pop_front();
  bytes_ -= data->size();
  return WasmResult::kOk;
}

}  // namespace tcpsteer::host
