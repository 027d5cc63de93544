// The import table of Envoy's proxy-wasm host: one row per function a module may import, with
// its exact signature, the restricted windows it may run in (proxy-wasm-cpp-host's start-up and
// allocator allow-lists), the ABI versions and WASI tier that have it, and the function that
// serves it. Rows are in the order of tests/fixtures/envoy-host-imports.txt, which a test compares
// with this table. The serving functions (proxy_imports.cc, wasi_imports.cc) only move data between
// guest memory and EnvoyHost.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "host/src/envoy_host.h"
#include "host/src/guest_memory.h"

namespace tcpsteer::host {

// One call of an import: its raw arguments (i32 zero-extended), the guest memory and Envoy's side.
struct ImportCall {
  std::span<const uint64_t> args;
  GuestMemory& memory;
  EnvoyHost& envoy;
  std::string trap;  // set by the function: the guest call traps with this message

  uint32_t u32(size_t index) const { return static_cast<uint32_t>(args[index]); }
};

// Returns the import's result word (a WasmResult for env functions, a WASI errno for WASI ones).
using ImportFunction = uint32_t (*)(ImportCall& call);

enum ImportWindow : uint8_t { kNoWindow = 0, kStartup = 1, kAllocator = 2 };
enum class Abis : uint8_t { kAll, k0_1_0, k0_2_x, k0_2_1 };

struct ImportRow {
  std::string_view
      module;  // "env" or "wasi" (served as both wasi_snapshot_preview1 and wasi_unstable)
  std::string_view name;
  std::string_view signature;  // FuncSig::text() form
  uint8_t windows;             // ImportWindow bits
  int wasi_tier;               // 0 for env functions
  Abis abis;
  ImportFunction function;

  bool allowedAtStartup() const { return (windows & kStartup) != 0; }
  bool allowedInAllocator() const { return (windows & kAllocator) != 0; }
  bool returnsValue() const { return !signature.ends_with("-> ()"); }
};

std::span<const ImportRow> importTable();
// The row serving module.name ("wasi_snapshot_preview1"/"wasi_unstable" map to "wasi"); nullptr if
// Envoy has no such function.
const ImportRow* findImport(std::string_view module, std::string_view name);
// Whether a host of this ABI version and WASI tier provides the row's function.
bool importAvailable(const ImportRow& row, std::string_view abi_version, WasiTier tier);

// Export signatures the host checks (proxy-wasm-cpp-host getFunctions): a mismatch fails the VM.
struct ExportSpec {
  const char* name;
  const char* signature;
  const char* signature_0_1_0;  // where ABI 0.1.0 differs
};
inline constexpr ExportSpec kExportSpecs[] = {
    {"malloc", "(i32) -> i32", nullptr},
    {"proxy_on_memory_allocate", "(i32) -> i32", nullptr},
    {"_initialize", "() -> ()", nullptr},
    {"main", "(i32, i32) -> i32", nullptr},
    {"__main_void", "() -> i32", nullptr},
    {"_start", "() -> ()", nullptr},
    {"proxy_on_context_create", "(i32, i32) -> ()", nullptr},
    {"proxy_on_vm_start", "(i32, i32) -> i32", nullptr},
    {"proxy_validate_configuration", "(i32, i32) -> i32", nullptr},
    {"proxy_on_configure", "(i32, i32) -> i32", nullptr},
    {"proxy_on_tick", "(i32) -> ()", nullptr},
    {"proxy_on_new_connection", "(i32) -> i32", nullptr},
    {"proxy_on_downstream_data", "(i32, i32, i32) -> i32", nullptr},
    {"proxy_on_upstream_data", "(i32, i32, i32) -> i32", nullptr},
    {"proxy_on_downstream_connection_close", "(i32, i32) -> ()", nullptr},
    {"proxy_on_upstream_connection_close", "(i32, i32) -> ()", nullptr},
    {"proxy_on_request_headers", "(i32, i32, i32) -> i32", "(i32, i32) -> i32"},
    {"proxy_on_request_body", "(i32, i32, i32) -> i32", nullptr},
    {"proxy_on_request_trailers", "(i32, i32) -> i32", nullptr},
    {"proxy_on_request_metadata", "(i32, i32) -> i32", nullptr},
    {"proxy_on_response_headers", "(i32, i32, i32) -> i32", "(i32, i32) -> i32"},
    {"proxy_on_response_body", "(i32, i32, i32) -> i32", nullptr},
    {"proxy_on_response_trailers", "(i32, i32) -> i32", nullptr},
    {"proxy_on_response_metadata", "(i32, i32) -> i32", nullptr},
    {"proxy_on_http_call_response", "(i32, i32, i32, i32, i32) -> ()", nullptr},
    {"proxy_on_grpc_receive_initial_metadata", "(i32, i32, i32) -> ()", nullptr},
    {"proxy_on_grpc_receive_trailing_metadata", "(i32, i32, i32) -> ()", nullptr},
    {"proxy_on_grpc_receive", "(i32, i32, i32) -> ()", nullptr},
    {"proxy_on_grpc_close", "(i32, i32, i32) -> ()", nullptr},
    {"proxy_on_queue_ready", "(i32, i32) -> ()", nullptr},
    {"proxy_on_foreign_function", "(i32, i32, i32) -> ()", nullptr},
    {"proxy_on_done", "(i32) -> i32", nullptr},
    {"proxy_on_log", "(i32) -> ()", nullptr},
    {"proxy_on_delete", "(i32) -> ()", nullptr},
    {"envoy_on_resolve_dns", "(i32, i32, i32) -> ()", nullptr},
    {"envoy_on_stats_update", "(i32, i32) -> ()", nullptr},
};
}  // namespace tcpsteer::host
