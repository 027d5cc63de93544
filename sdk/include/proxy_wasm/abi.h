// proxy-wasm ABI 0.2.1: the host functions this SDK imports and the enums of the spec.
// Every import here is in Envoy's host list (tests/fixtures/envoy-host-imports.txt); only those a
// module actually calls end up in its import section.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "proxy_wasm/abi_types.h"

namespace proxy_wasm {

std::string_view resultName(WasmResult result);

}  // namespace proxy_wasm

#if defined(__wasm__)
#define PROXY_WASM_IMPORT(name) __attribute__((import_module("env"), import_name(#name)))
#else
// Outside wasm32 these are plain declarations: the SDK is only built into the module
// (sdk/README.md).
#define PROXY_WASM_IMPORT(name)
#endif

extern "C" {
PROXY_WASM_IMPORT(proxy_log)
uint32_t proxy_log(uint32_t level, const char* message, size_t message_size);
PROXY_WASM_IMPORT(proxy_get_log_level)
uint32_t proxy_get_log_level(uint32_t* level);
PROXY_WASM_IMPORT(proxy_get_property)
uint32_t proxy_get_property(const char* path, size_t path_size, char** value, size_t* value_size);
PROXY_WASM_IMPORT(proxy_set_property)
uint32_t proxy_set_property(const char* path, size_t path_size, const char* value,
                            size_t value_size);
PROXY_WASM_IMPORT(proxy_get_buffer_bytes)
uint32_t proxy_get_buffer_bytes(uint32_t type, size_t start, size_t length, char** data,
                                size_t* size);
PROXY_WASM_IMPORT(proxy_call_foreign_function)
uint32_t proxy_call_foreign_function(const char* name, size_t name_size, const char* args,
                                     size_t args_size, char** results, size_t* results_size);
PROXY_WASM_IMPORT(proxy_define_metric)
uint32_t proxy_define_metric(uint32_t type, const char* name, size_t name_size,
                             uint32_t* metric_id);
PROXY_WASM_IMPORT(proxy_increment_metric)
uint32_t proxy_increment_metric(uint32_t metric_id, int64_t offset);
PROXY_WASM_IMPORT(proxy_record_metric)
uint32_t proxy_record_metric(uint32_t metric_id, uint64_t value);
PROXY_WASM_IMPORT(proxy_get_metric)
uint32_t proxy_get_metric(uint32_t metric_id, uint64_t* value);
PROXY_WASM_IMPORT(proxy_get_current_time_nanoseconds)
uint32_t proxy_get_current_time_nanoseconds(uint64_t* nanoseconds);
PROXY_WASM_IMPORT(proxy_set_tick_period_milliseconds)
uint32_t proxy_set_tick_period_milliseconds(uint32_t period);
PROXY_WASM_IMPORT(proxy_continue_stream)
uint32_t proxy_continue_stream(uint32_t stream_type);
PROXY_WASM_IMPORT(proxy_close_stream)
uint32_t proxy_close_stream(uint32_t stream_type);
}
