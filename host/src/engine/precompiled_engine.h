// A second engine behind the WasmEngine seam: the filter module translated to C by wasm2c at build
// time and compiled natively, so tcpsteer-host can replay the real module at native speed. It runs
// only the exact module it was built from (byte-for-byte); any other module uses the interpreter.
// It has no instruction budget and no call-depth guard: it trusts the module it was compiled from.
// Traps (out-of-bounds access, unreachable, a failing host function) still end the call as a trap.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "host/src/engine/wasm_engine.h"

extern "C" {
#include "wasm-rt.h"
// Ends the current precompiled call as a trap (called by the wasm2c runtime and by import thunks).
[[noreturn]] void tcpsteer_precompiled_trap(void);
// The same with a wasm_rt_trap_t code (the wasm2c runtime's WASM_RT_TRAP_HANDLER).
[[noreturn]] void tcpsteer_precompiled_trap_code(int code);
}

namespace tcpsteer::host {

namespace precompiled {

// Where the generated import thunks send calls: the engine, which owns the host functions.
class ImportSink {
 public:
  virtual ~ImportSink() = default;
  // False: the host function trapped (the thunk then ends the call as a trap).
  virtual bool callImport(uint32_t slot, const uint64_t* args, uint64_t* results) = 0;
};

struct ImportName {
  const char* module;
  const char* name;
};

struct ExportEntry {
  const char* name;
  uint32_t param_count;
  uint32_t result_count;
  void (*call)(void* instance, const uint64_t* args, uint64_t* results);
};

// Everything the generated file (gen_bindings.py) knows about the translated module.
struct ModuleBinding {
  std::span<const unsigned char> module_bytes;
  std::span<const ImportName> imports;
  std::span<const ExportEntry> exports;
  size_t instance_size;
  size_t instance_align;
  void (*init_module)();
  void (*instantiate)(void* instance, ImportSink* sink);
  void (*free)(void* instance);
  wasm_rt_memory_t* (*memory)(void* instance);
};

const ModuleBinding& binding();  // defined by the generated file

}  // namespace precompiled

// True when this build has a precompiled module and `module` is exactly it.
bool precompiledMatches(std::span<const uint8_t> module);

// The precompiled engine for `module`; an error when precompiledMatches is false.
Result<std::unique_ptr<WasmEngine>> makePrecompiledEngine(std::span<const uint8_t> module);

}  // namespace tcpsteer::host
