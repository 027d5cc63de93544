// The import table of Envoy's proxy-wasm host: every function a module may import, with its exact
// signature and in which restricted windows it may be called (proxy-wasm-cpp-host's start-up and
// allocator allow-lists). Kept in the order of tests/fixtures/envoy-host-imports.txt, which a test
// compares with this table.
#pragma once

#include <string_view>

namespace tcpsteer::host {

struct HostFunctionSpec {
  std::string_view
      module;  // "env" or "wasi" (served as both wasi_snapshot_preview1 and wasi_unstable)
  std::string_view name;
  std::string_view signature;  // FuncSig::text() form
  bool allowed_at_startup;
  bool allowed_in_allocator;
  int wasi_tier;  // 0 for env functions
  int abi;        // 0 = every ABI, 1 = 0.1.0 only, 2 = 0.2.x only, 21 = 0.2.1 only
};

inline constexpr HostFunctionSpec kHostFunctions[] = {
    {"env", "proxy_log", "(i32, i32, i32) -> i32", true, true, 0, 0},
    {"env", "proxy_get_status", "(i32, i32, i32) -> i32", false, false, 0, 0},
    {"env", "proxy_set_property", "(i32, i32, i32, i32) -> i32", false, false, 0, 0},
    {"env", "proxy_get_property", "(i32, i32, i32, i32) -> i32", false, false, 0, 0},
    {"env", "proxy_send_local_response", "(i32, i32, i32, i32, i32, i32, i32, i32) -> i32", false,
     false, 0, 0},
    {"env", "proxy_get_shared_data", "(i32, i32, i32, i32, i32) -> i32", false, false, 0, 0},
    {"env", "proxy_set_shared_data", "(i32, i32, i32, i32, i32) -> i32", false, false, 0, 0},
    {"env", "proxy_register_shared_queue", "(i32, i32, i32) -> i32", false, false, 0, 0},
    {"env", "proxy_resolve_shared_queue", "(i32, i32, i32, i32, i32) -> i32", false, false, 0, 0},
    {"env", "proxy_dequeue_shared_queue", "(i32, i32, i32) -> i32", false, false, 0, 0},
    {"env", "proxy_enqueue_shared_queue", "(i32, i32, i32) -> i32", false, false, 0, 0},
    {"env", "proxy_get_header_map_value", "(i32, i32, i32, i32, i32) -> i32", false, false, 0, 0},
    {"env", "proxy_add_header_map_value", "(i32, i32, i32, i32, i32) -> i32", false, false, 0, 0},
    {"env", "proxy_replace_header_map_value", "(i32, i32, i32, i32, i32) -> i32", false, false, 0,
     0},
    {"env", "proxy_remove_header_map_value", "(i32, i32, i32) -> i32", false, false, 0, 0},
    {"env", "proxy_get_header_map_pairs", "(i32, i32, i32) -> i32", false, false, 0, 0},
    {"env", "proxy_set_header_map_pairs", "(i32, i32, i32) -> i32", false, false, 0, 0},
    {"env", "proxy_get_header_map_size", "(i32, i32) -> i32", false, false, 0, 0},
    {"env", "proxy_get_buffer_status", "(i32, i32, i32) -> i32", false, false, 0, 0},
    {"env", "proxy_get_buffer_bytes", "(i32, i32, i32, i32, i32) -> i32", false, false, 0, 0},
    {"env", "proxy_set_buffer_bytes", "(i32, i32, i32, i32, i32) -> i32", false, false, 0, 0},
    {"env", "proxy_http_call", "(i32, i32, i32, i32, i32, i32, i32, i32, i32, i32) -> i32", false,
     false, 0, 0},
    {"env", "proxy_grpc_call",
     "(i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32) -> i32", false, false, 0, 0},
    {"env", "proxy_grpc_stream", "(i32, i32, i32, i32, i32, i32, i32, i32, i32) -> i32", false,
     false, 0, 0},
    {"env", "proxy_grpc_close", "(i32) -> i32", false, false, 0, 0},
    {"env", "proxy_grpc_cancel", "(i32) -> i32", false, false, 0, 0},
    {"env", "proxy_grpc_send", "(i32, i32, i32, i32) -> i32", false, false, 0, 0},
    {"env", "proxy_set_tick_period_milliseconds", "(i32) -> i32", false, false, 0, 0},
    {"env", "proxy_get_current_time_nanoseconds", "(i32) -> i32", false, false, 0, 0},
    {"env", "proxy_define_metric", "(i32, i32, i32, i32) -> i32", false, false, 0, 0},
    {"env", "proxy_increment_metric", "(i32, i64) -> i32", false, false, 0, 0},
    {"env", "proxy_record_metric", "(i32, i64) -> i32", false, false, 0, 0},
    {"env", "proxy_get_metric", "(i32, i32) -> i32", false, false, 0, 0},
    {"env", "proxy_set_effective_context", "(i32) -> i32", false, false, 0, 0},
    {"env", "proxy_done", "() -> i32", false, false, 0, 0},
    {"env", "proxy_call_foreign_function", "(i32, i32, i32, i32, i32, i32) -> i32", false, false, 0,
     0},
    {"env", "proxy_continue_stream", "(i32) -> i32", false, false, 0, 2},
    {"env", "proxy_close_stream", "(i32) -> i32", false, false, 0, 2},
    {"env", "proxy_get_log_level", "(i32) -> i32", false, false, 0, 21},
    {"env", "proxy_get_configuration", "(i32, i32) -> i32", false, false, 0, 1},
    {"env", "proxy_continue_request", "() -> i32", false, false, 0, 1},
    {"env", "proxy_continue_response", "() -> i32", false, false, 0, 1},
    {"env", "proxy_clear_route_cache", "() -> i32", false, false, 0, 1},
    {"env", "pthread_equal", "(i32, i32) -> i32", false, false, 0, 0},
    {"env", "emscripten_notify_memory_growth", "(i32) -> ()", false, false, 0, 0},
    {"env", "envoy_resolve_dns", "(i32, i32, i32) -> i32", false, false, 0, 0},
    {"wasi", "fd_write", "(i32, i32, i32, i32) -> i32", true, true, 1, 0},
    {"wasi", "fd_read", "(i32, i32, i32, i32) -> i32", false, false, 1, 0},
    {"wasi", "fd_seek", "(i32, i64, i32, i32) -> i32", false, false, 1, 0},
    {"wasi", "fd_close", "(i32) -> i32", false, false, 1, 0},
    {"wasi", "fd_fdstat_get", "(i32, i32) -> i32", false, false, 1, 0},
    {"wasi", "environ_get", "(i32, i32) -> i32", true, false, 1, 0},
    {"wasi", "environ_sizes_get", "(i32, i32) -> i32", true, false, 1, 0},
    {"wasi", "args_get", "(i32, i32) -> i32", true, false, 1, 0},
    {"wasi", "args_sizes_get", "(i32, i32) -> i32", true, false, 1, 0},
    {"wasi", "clock_time_get", "(i32, i64, i32) -> i32", true, true, 1, 0},
    {"wasi", "random_get", "(i32, i32) -> i32", true, false, 1, 0},
    {"wasi", "proc_exit", "(i32) -> ()", false, false, 1, 0},
    {"wasi", "path_open", "(i32, i32, i32, i32, i32, i64, i64, i32, i32) -> i32", false, false, 1,
     0},
    {"wasi", "fd_prestat_get", "(i32, i32) -> i32", true, false, 1, 0},
    {"wasi", "fd_prestat_dir_name", "(i32, i32, i32) -> i32", true, false, 1, 0},
    {"wasi", "sched_yield", "() -> i32", false, false, 2, 0},
    {"wasi", "poll_oneoff", "(i32, i32, i32, i32) -> i32", false, false, 2, 0},
    {"wasi", "fd_fdstat_set_flags", "(i32, i32) -> i32", true, false, 2, 0},
};

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
