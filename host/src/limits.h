// Every limit the host puts on what a module, a configuration or a file can make it hold, in one
// place (proxy-wasm-cpp-host's limits.h plays this role in Envoy). Load-time limits are those of
// Envoy's engines (V8's wasm limits, cpp-host's memory cap); run-time caps bound each host-side
// structure a module can grow inside one callback, so no loop of host calls exhausts the host.
// A call that would pass a run-time cap fails with kHostLimitStatus and leaves the state as it was.
#pragma once

#include <cstddef>
#include <cstdint>

#include "proxy_wasm/abi_types.h"

namespace tcpsteer::host::limits {

// --- files (tcpsteer-host) ---
inline constexpr uint64_t kMaxModuleFileBytes = uint64_t{64} << 20;  // a .wasm file
inline constexpr uint64_t kMaxConfigFileBytes = uint64_t{4} << 20;   // --config @FILE, envoy.yaml

// --- the module at load (V8: src/wasm/wasm-limits.h; cpp-host: 1 GiB of linear memory) ---
inline constexpr uint64_t kMaxTypes = 1'000'000;
inline constexpr uint64_t kMaxImports = 100'000;
inline constexpr uint64_t kMaxExports = 100'000;
inline constexpr uint64_t kMaxFunctions = 1'000'000;
inline constexpr uint64_t kMaxFunctionLocals = 50'000;
inline constexpr uint64_t kMaxFunctionBodyBytes = 7'654'321;
inline constexpr uint64_t kMaxTables = 100'000;
inline constexpr uint64_t kMaxTableElements = 10'000'000;  // initial size, and the cap on growth
inline constexpr uint64_t kMaxMemories = 1;
inline constexpr uint64_t kMaxMemoryPages = 16'384;  // 1 GiB, also the cap on memory.grow
inline constexpr uint64_t kMaxGlobals = 1'000'000;
inline constexpr uint64_t kMaxDataSegments = 100'000;
inline constexpr uint64_t kMaxElementSegments = 10'000'000;

// --- execution ---
inline constexpr uint64_t kDefaultInstructionBudget = 50'000'000;  // per top-level callback

// The host's work on guest memory counts against that budget: one instruction per this many bytes
// of guest memory an import views, reads or writes. A memcpy moves far more than 8 bytes in the
// time the interpreter takes for one instruction, so a module pays at least what it costs.
inline constexpr uint64_t kGuestBytesPerInstruction = 8;

// --- what one VM retains on the host side ---
inline constexpr size_t kMaxLogMessageBytes = size_t{1} << 20;     // longer lines are cut
inline constexpr size_t kMaxRetainedLogBytes = size_t{8} << 20;    // until the caller takes them
inline constexpr uint32_t kMaxWasiIovecs = 1024;                   // IOV_MAX
inline constexpr size_t kMaxStreamBufferBytes = size_t{16} << 20;  // a data buffer the filter edits
inline constexpr size_t kMaxMetrics = 10'000;
inline constexpr size_t kMaxMetricNameBytes = 4096;
inline constexpr size_t kMaxHistogramValues = 100'000;  // recorded values kept per histogram
inline constexpr size_t kMaxProperties = 1'000;         // proxy_set_property keys per context
inline constexpr size_t kMaxPropertyBytes = size_t{1} << 20;
inline constexpr size_t kMaxPropertyPathBytes = 4096;            // longer paths name no property
inline constexpr size_t kMaxFilterStateBytes = size_t{1} << 20;  // set_envoy_filter_state argument
inline constexpr size_t kMaxSharedDataEntries = 10'000;
inline constexpr size_t kMaxSharedDataBytes = size_t{16} << 20;
inline constexpr size_t kMaxSharedQueues = 1'000;
inline constexpr size_t kMaxSharedQueueNameBytes = 4096;
inline constexpr size_t kMaxQueuedItems = 10'000;            // per queue
inline constexpr size_t kMaxQueuedBytes = size_t{16} << 20;  // all queues

// The status of a host call refused by a run-time cap (the ABI has no "resource exhausted").
inline constexpr proxy_wasm::WasmResult kHostLimitStatus = proxy_wasm::WasmResult::kInternalFailure;

}  // namespace tcpsteer::host::limits
