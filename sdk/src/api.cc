#include "proxy_wasm/api.h"

#include <cstdlib>
#include <string>

namespace proxy_wasm {

WasmData& WasmData::operator=(WasmData&& other) noexcept {
  if (this != &other) {
    ::free(data_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

void WasmData::reset(char* data, size_t size) {
  ::free(data_);
  data_ = data;
  size_ = size;
}

WasmData::~WasmData() {
  ::free(data_);
}

std::string_view resultName(WasmResult result) {
  switch (result) {
    case WasmResult::kOk:
      return "Ok";
    case WasmResult::kNotFound:
      return "NotFound";
    case WasmResult::kBadArgument:
      return "BadArgument";
    case WasmResult::kSerializationFailure:
      return "SerializationFailure";
    case WasmResult::kParseFailure:
      return "ParseFailure";
    case WasmResult::kBadExpression:
      return "BadExpression";
    case WasmResult::kInvalidMemoryAccess:
      return "InvalidMemoryAccess";
    case WasmResult::kEmpty:
      return "Empty";
    case WasmResult::kCasMismatch:
      return "CasMismatch";
    case WasmResult::kResultMismatch:
      return "ResultMismatch";
    case WasmResult::kInternalFailure:
      return "InternalFailure";
    case WasmResult::kBrokenConnection:
      return "BrokenConnection";
    case WasmResult::kUnimplemented:
      return "Unimplemented";
  }
  return "Unknown";
}

namespace {

WasmResult toResult(uint32_t status) {
  return static_cast<WasmResult>(status);
}

// Takes ownership whatever the status, so a host that wrote a buffer and then failed leaks nothing.
Result<WasmData> ownedResult(uint32_t status, char* data, size_t size) {
  return {toResult(status), WasmData(data, size)};
}

}  // namespace

WasmResult log(LogLevel level, std::string_view message) {
  return toResult(proxy_log(static_cast<uint32_t>(level), message.data(), message.size()));
}

LogLevel logLevel() {
  uint32_t level = static_cast<uint32_t>(LogLevel::kInfo);
  if (proxy_get_log_level(&level) != 0 || level > static_cast<uint32_t>(LogLevel::kCritical)) {
    return LogLevel::kInfo;
  }
  return static_cast<LogLevel>(level);
}

Result<WasmData> getProperty(PropertyPath path) {
  char* data = nullptr;
  size_t size = 0;
  uint32_t status = proxy_get_property(path.joined().data(), path.joined().size(), &data, &size);
  return ownedResult(status, data, size);
}

WasmResult getProperty(PropertyPath path, WasmData& out) {
  char* data = nullptr;
  size_t size = 0;
  uint32_t status = proxy_get_property(path.joined().data(), path.joined().size(), &data, &size);
  out.reset(status == 0 ? data : nullptr, status == 0 ? size : 0);
  if (status != 0) ::free(data);
  return toResult(status);
}

Result<WasmData> getProperty(std::initializer_list<std::string_view> path) {
  // Long enough for node.metadata.LABELS.<key>: a label key is at most 253 + 1 + 63 bytes.
  constexpr size_t kMaxJoined = 512;
  char joined[kMaxJoined];
  size_t size = 0;
  for (std::string_view segment : path) {
    if (segment.size() >= kMaxJoined - size) return {WasmResult::kBadArgument, {}};
    __builtin_memcpy(joined + size, segment.data(), segment.size());
    size += segment.size();
    joined[size++] = '\0';  // every segment ends in NUL, as in the upstream C++ SDK
  }
  char* data = nullptr;
  size_t value_size = 0;
  uint32_t status = proxy_get_property(joined, size, &data, &value_size);
  return ownedResult(status, data, value_size);
}

WasmResult setProperty(std::string_view key, std::string_view value) {
  return toResult(proxy_set_property(key.data(), key.size(), value.data(), value.size()));
}

Result<WasmData> getBufferBytes(BufferType type, size_t start, size_t length) {
  char* data = nullptr;
  size_t size = 0;
  uint32_t status =
      proxy_get_buffer_bytes(static_cast<uint32_t>(type), start, length, &data, &size);
  return ownedResult(status, data, size);
}

Result<WasmData> callForeignFunction(std::string_view name, std::string_view arguments) {
  char* data = nullptr;
  size_t size = 0;
  uint32_t status = proxy_call_foreign_function(name.data(), name.size(), arguments.data(),
                                                arguments.size(), &data, &size);
  return ownedResult(status, data, size);
}

Result<uint32_t> defineMetric(MetricType type, std::string_view name) {
  Result<uint32_t> result;
  result.status = toResult(
      proxy_define_metric(static_cast<uint32_t>(type), name.data(), name.size(), &result.value));
  return result;
}

WasmResult incrementMetric(uint32_t metric_id, int64_t delta) {
  return toResult(proxy_increment_metric(metric_id, delta));
}

WasmResult recordMetric(uint32_t metric_id, uint64_t value) {
  return toResult(proxy_record_metric(metric_id, value));
}

Result<uint64_t> getMetric(uint32_t metric_id) {
  Result<uint64_t> result;
  result.status = toResult(proxy_get_metric(metric_id, &result.value));
  return result;
}

Result<uint64_t> currentTimeNanoseconds() {
  Result<uint64_t> result;
  result.status = toResult(proxy_get_current_time_nanoseconds(&result.value));
  return result;
}

WasmResult setTickPeriodMilliseconds(uint32_t period) {
  return toResult(proxy_set_tick_period_milliseconds(period));
}

WasmResult continueStream(StreamType type) {
  return toResult(proxy_continue_stream(static_cast<uint32_t>(type)));
}

WasmResult closeStream(StreamType type) {
  return toResult(proxy_close_stream(static_cast<uint32_t>(type)));
}

}  // namespace proxy_wasm
