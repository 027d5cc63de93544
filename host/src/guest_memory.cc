#include "host/src/guest_memory.h"

#include <cstring>

#include "host/src/limits.h"

namespace tcpsteer::host {

using proxy_wasm::WasmResult;

bool GuestMemory::inBounds(uint64_t ptr, uint64_t size) const {
  uint64_t memory = engine_.memorySize();
  return ptr <= memory && size <= memory - ptr;
}

void GuestMemory::charge(uint64_t bytes) const {
  engine_.chargeHostWork((bytes + limits::kGuestBytesPerInstruction - 1) /
                         limits::kGuestBytesPerInstruction);
}

bool GuestMemory::view(uint64_t ptr, uint64_t size, std::string_view* out) const {
  if (!inBounds(ptr, size)) return false;
  charge(size);
  *out = size == 0
             ? std::string_view()
             : std::string_view(reinterpret_cast<const char*>(engine_.memoryData() + ptr), size);
  return true;
}

bool GuestMemory::read(uint64_t ptr, uint64_t size, std::string* out) const {
  std::string_view bytes;
  if (!view(ptr, size, &bytes)) return false;
  out->assign(bytes);
  return true;
}

bool GuestMemory::write(uint64_t ptr, std::string_view data) {
  if (!inBounds(ptr, data.size())) return false;
  charge(data.size());
  if (!data.empty()) std::memcpy(engine_.memoryData() + ptr, data.data(), data.size());
  return true;
}

bool GuestMemory::writeU32(uint64_t ptr, uint32_t value) {
  return write(ptr, std::string_view(reinterpret_cast<const char*>(&value), sizeof value));
}

bool GuestMemory::writeU64(uint64_t ptr, uint64_t value) {
  return write(ptr, std::string_view(reinterpret_cast<const char*>(&value), sizeof value));
}

WasmResult GuestMemory::copyOut(std::string_view data, uint64_t ptr_ptr, uint64_t size_ptr,
                                std::string* trap) {
  uint32_t address = 0;
  if (!data.empty()) {
    if (data.size() > UINT32_MAX) return WasmResult::kInvalidMemoryAccess;
    CallOutcome outcome = allocate_(static_cast<uint32_t>(data.size()));
    if (!outcome.ok()) {
      *trap = outcome.message;
      return WasmResult::kInternalFailure;
    }
    address = static_cast<uint32_t>(outcome.results.empty() ? 0 : outcome.results[0]);
    if (address == 0 || !write(address, data)) return WasmResult::kInvalidMemoryAccess;
  }
  if (!writeU32(ptr_ptr, address) || !writeU32(size_ptr, static_cast<uint32_t>(data.size())))
    return WasmResult::kInvalidMemoryAccess;
  return WasmResult::kOk;
}

}  // namespace tcpsteer::host
