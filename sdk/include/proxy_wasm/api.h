// Typed wrappers over the host functions: results instead of raw status codes, owned buffers
// instead of raw host-malloc'd pointers. No wrapper ever traps; failures come back as a WasmResult.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string_view>
#include <utility>

#include "proxy_wasm/abi.h"

namespace proxy_wasm {

// Bytes the host allocated in our memory through malloc; freed on destruction.
class WasmData {
 public:
  WasmData() = default;
  WasmData(char* data, size_t size) : data_(data), size_(size) {}
  WasmData(WasmData&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}
  WasmData& operator=(WasmData&& other) noexcept;
  WasmData(const WasmData&) = delete;
  WasmData& operator=(const WasmData&) = delete;
  ~WasmData();

  std::string_view view() const { return {data_, size_}; }
  // Takes over bytes the host allocated, freeing the ones held before.
  void reset(char* data, size_t size);
  size_t size() const { return size_; }

 private:
  char* data_ = nullptr;
  size_t size_ = 0;
};

template <typename T>
struct Result {
  WasmResult status = WasmResult::kOk;
  T value{};

  bool ok() const { return status == WasmResult::kOk; }
};

WasmResult log(LogLevel level, std::string_view message);
// The host's current level; Info if the host cannot say. Check it before building a costly message.
LogLevel logLevel();
inline bool logEnabled(LogLevel level) {
  return level >= logLevel();
}

// A property path with its segments already joined by NUL, as the host reads it, fixed at compile
// time: PropertyPath("source\0address"). Every segment ends in NUL as in the upstream C++ SDK (the
// literal's own terminator ends the last one). Reading one copies nothing on the module's side.
class PropertyPath {
 public:
  template <size_t N>
  consteval explicit PropertyPath(const char (&joined)[N]) : joined_(joined, N) {}
  std::string_view joined() const { return joined_; }

 private:
  std::string_view joined_;
};
Result<WasmData> getProperty(PropertyPath path);
// The same into a buffer the caller keeps (a root context's, reused connection after connection):
// no Result to move per call. `out` is empty unless the status is kOk.
WasmResult getProperty(PropertyPath path, WasmData& out);
// Path segments are joined with NUL, as Envoy expects: getProperty({"source", "address"}); paths of
// up to 256 bytes are joined on the stack, longer ones are refused with BadArgument.
Result<WasmData> getProperty(std::initializer_list<std::string_view> path);
WasmResult setProperty(std::string_view key, std::string_view value);
Result<WasmData> getBufferBytes(BufferType type, size_t start, size_t length);
Result<WasmData> callForeignFunction(std::string_view name, std::string_view arguments);

Result<uint32_t> defineMetric(MetricType type, std::string_view name);
WasmResult incrementMetric(uint32_t metric_id, int64_t delta);
WasmResult recordMetric(uint32_t metric_id, uint64_t value);
Result<uint64_t> getMetric(uint32_t metric_id);

Result<uint64_t> currentTimeNanoseconds();
WasmResult setTickPeriodMilliseconds(uint32_t period);
WasmResult continueStream(StreamType type);
WasmResult closeStream(StreamType type);

}  // namespace proxy_wasm
