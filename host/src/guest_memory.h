// The guest's linear memory as the host functions see it: every access bounds-checked against the
// current size (memory may grow, and move, during any guest call), and the host's copy-out of a
// value into memory the guest allocates (proxy-wasm-cpp-host's copyToPointerSize).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "host/src/engine/wasm_engine.h"
#include "proxy_wasm/abi_types.h"

namespace tcpsteer::host {

class GuestMemory {
 public:
  // allocate calls the module's allocator export (inside the allocator window).
  using Allocate = std::function<CallOutcome(uint32_t size)>;
  GuestMemory(WasmEngine& engine, Allocate allocate)
      : engine_(engine), allocate_(std::move(allocate)) {}

  bool inBounds(uint64_t ptr, uint64_t size) const;
  // Every access below is charged to the calling guest's budget
  // (limits::kGuestBytesPerInstruction). A view of guest bytes: valid only until the next guest
  // call.
  bool view(uint64_t ptr, uint64_t size, std::string_view* out) const;
  bool read(uint64_t ptr, uint64_t size, std::string* out) const;
  bool write(uint64_t ptr, std::string_view data);
  bool writeU32(uint64_t ptr, uint32_t value);
  bool writeU64(uint64_t ptr, uint64_t value);

  // Allocates data.size() bytes in the guest, copies data there and writes the address and size to
  // ptr_ptr/size_ptr. Empty values allocate nothing and write 0/0. A failing allocator traps the
  // calling guest (*trap set).
  proxy_wasm::WasmResult copyOut(std::string_view data, uint64_t ptr_ptr, uint64_t size_ptr,
                                 std::string* trap);

 private:
  void charge(uint64_t bytes) const;

  WasmEngine& engine_;
  Allocate allocate_;
};

}  // namespace tcpsteer::host
