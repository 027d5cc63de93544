// Envoy's shared key-value store (with compare-and-swap) and shared queues, for one VM. Bounded in
// entries and bytes (limits::kMaxSharedData*, kMaxSharedQueues, kMaxQueued*): past a cap the call
// fails with limits::kHostLimitStatus and nothing is stored.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "proxy_wasm/abi_types.h"

namespace tcpsteer::host {

class SharedData {
 public:
  proxy_wasm::WasmResult get(std::string_view key, std::string_view* value, uint32_t* cas) const;
  proxy_wasm::WasmResult set(std::string_view key, std::string_view value, uint32_t cas);

 private:
  struct Entry {
    std::string value;
    uint32_t cas = 0;
  };
  std::map<std::string, Entry, std::less<>> entries_;
  size_t bytes_ = 0;
};

class SharedQueues {
 public:
  proxy_wasm::WasmResult registerQueue(std::string_view name, uint32_t* token);
  proxy_wasm::WasmResult resolve(std::string_view name, uint32_t* token) const;
  proxy_wasm::WasmResult enqueue(uint32_t token, std::string_view data);
  proxy_wasm::WasmResult dequeue(uint32_t token, std::string* data);

 private:
  std::map<std::string, uint32_t, std::less<>> tokens_;
  std::vector<std::deque<std::string>> queues_;  // token - 1
  size_t bytes_ = 0;
};

}  // namespace tcpsteer::host
