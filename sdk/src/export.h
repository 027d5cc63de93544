// How the SDK's export files declare a proxy_on_* function the host calls (the export exists only
// in the wasm build; natively these are plain functions for tests).
#pragma once

#include <cstdint>

#include "proxy_wasm/context.h"

#if defined(__wasm__)
#define PROXY_WASM_EXPORT(name) __attribute__((export_name(#name)))
#else
#define PROXY_WASM_EXPORT(name)
#endif

namespace proxy_wasm {

inline uint32_t statusOf(FilterStatus status) {
  return static_cast<uint32_t>(status);
}

}  // namespace proxy_wasm
