#include "host/src/import_table.h"

#include "host/src/import_functions.h"

namespace tcpsteer::host {
namespace {

// clang-format off
constexpr ImportRow kImportTable[] = {
    {"env", "proxy_log", "(i32, i32, i32) -> i32", kStartup | kAllocator, 0, Abis::kAll, &proxy::proxy_log},
    {"env", "proxy_get_status", "(i32, i32, i32) -> i32", kNoWindow, 0, Abis::kAll, &proxy::proxy_get_status},
    {"env", "proxy_set_property", "(i32, i32, i32, i32) -> i32", kNoWindow, 0, Abis::kAll, &proxy::proxy_set_property},
    {"env", "proxy_get_property", "(i32, i32, i32, i32) -> i32", kNoWindow, 0, Abis::kAll, &proxy::proxy_get_property},
    {"env", "proxy_send_local_response", "(i32, i32, i32, i32, i32, i32, i32, i32) -> i32", kNoWindow, 0, Abis::kAll, &proxy::proxy_send_local_response},
    {"env", "proxy_get_shared_data", "(i32, i32, i32, i32, i32) -> i32", kNoWindow, 0, Abis::kAll, &proxy::proxy_get_shared_data},
    {"env", "proxy_set_shared_data", "(i32, i32, i32, i32, i32) -> i32", kNoWindow, 0, Abis::kAll, &proxy::proxy_set_shared_data},
    {"env", "proxy_register_shared_queue", "(i32, i32, i32) -> i32", kNoWindow, 0, Abis::kAll, &proxy::proxy_register_shared_queue},
    {"env", "proxy_resolve_shared_queue", "(i32, i32, i32, i32, i32) -> i32", kNoWindow, 0, Abis::kAll, &proxy::proxy_resolve_shared_queue},
    {"env", "proxy_dequeue_shared_queue", "(i32, i32, i32) -> i32", kNoWindow, 0, Abis::kAll, &proxy::proxy_dequeue_shared_queue},
    {"env", "proxy_enqueue_shared_queue", "(i32, i32, i32) -> i32", kNoWindow, 0, Abis::kAll, &proxy::proxy_enqueue_shared_queue},
    {"env", "proxy_get_header_map_value", "(i32, i32, i32, i32, i32) -> i32", kNoWindow, 0, Abis::kAll, &proxy::proxy_get_header_map_value},
    {"env", "proxy_add_header_map_value", "(i32, i32, i32, i32, i32) -> i32", kNoWindow, 0, Abis::kAll, &proxy::proxy_add_header_map_value},
    {"env", "proxy_replace_header_map_value", "(i32, i32, i32, i32, i32) -> i32", kNoWindow, 0, Abis::kAll, &proxy::proxy_replace_header_map_value},
    {"env", "proxy_remove_header_map_value", "(i32, i32, i32) -> i32", kNoWindow, 0, Abis::kAll, &proxy::proxy_remove_header_map_value},
    {"env", "proxy_get_header_map_pairs", "(i32, i32, i32) -> i32", kNoWindow, 0, Abis::kAll, &proxy::proxy_get_header_map_pairs},
    {"env", "proxy_set_header_map_pairs", "(i32, i32, i32) -> i32", kNoWindow, 0, Abis::kAll, &proxy::proxy_set_header_map_pairs},
    {"env", "proxy_get_header_map_size", "(i32, i32) -> i32", kNoWindow, 0, Abis::kAll, &proxy::proxy_get_header_map_size},
    {"env", "proxy_get_buffer_status", "(i32, i32, i32) -> i32", kNoWindow, 0, Abis::kAll, &proxy::proxy_get_buffer_status},
    {"env", "proxy_get_buffer_bytes", "(i32, i32, i32, i32, i32) -> i32", kNoWindow, 0, Abis::kAll, &proxy::proxy_get_buffer_bytes},
    {"env", "proxy_set_buffer_bytes", "(i32, i32, i32, i32, i32) -> i32", kNoWindow, 0, Abis::kAll, &proxy::proxy_set_buffer_bytes},
    {"env", "proxy_http_call", "(i32, i32, i32, i32, i32, i32, i32, i32, i32, i32) -> i32", kNoWindow, 0, Abis::kAll, &proxy::proxy_http_call},
    {"env", "proxy_grpc_call", "(i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32) -> i32", kNoWindow, 0, Abis::kAll, &proxy::proxy_grpc_call},
    {"env", "proxy_grpc_stream", "(i32, i32, i32, i32, i32, i32, i32, i32, i32) -> i32", kNoWindow, 0, Abis::kAll, &proxy::proxy_grpc_stream},
    {"env", "proxy_grpc_close", "(i32) -> i32", kNoWindow, 0, Abis::kAll, &proxy::proxy_grpc_close},
    {"env", "proxy_grpc_cancel", "(i32) -> i32", kNoWindow, 0, Abis::kAll, &proxy::proxy_grpc_cancel},
    {"env", "proxy_grpc_send", "(i32, i32, i32, i32) -> i32", kNoWindow, 0, Abis::kAll, &proxy::proxy_grpc_send},
    {"env", "proxy_set_tick_period_milliseconds", "(i32) -> i32", kNoWindow, 0, Abis::kAll, &proxy::proxy_set_tick_period_milliseconds},
    {"env", "proxy_get_current_time_nanoseconds", "(i32) -> i32", kNoWindow, 0, Abis::kAll, &proxy::proxy_get_current_time_nanoseconds},
    {"env", "proxy_define_metric", "(i32, i32, i32, i32) -> i32", kNoWindow, 0, Abis::kAll, &proxy::proxy_define_metric},
    {"env", "proxy_increment_metric", "(i32, i64) -> i32", kNoWindow, 0, Abis::kAll, &proxy::proxy_increment_metric},
    {"env", "proxy_record_metric", "(i32, i64) -> i32", kNoWindow, 0, Abis::kAll, &proxy::proxy_record_metric},
    {"env", "proxy_get_metric", "(i32, i32) -> i32", kNoWindow, 0, Abis::kAll, &proxy::proxy_get_metric},
    {"env", "proxy_set_effective_context", "(i32) -> i32", kNoWindow, 0, Abis::kAll, &proxy::proxy_set_effective_context},
    {"env", "proxy_done", "() -> i32", kNoWindow, 0, Abis::kAll, &proxy::proxy_done},
    {"env", "proxy_call_foreign_function", "(i32, i32, i32, i32, i32, i32) -> i32", kNoWindow, 0, Abis::kAll, &proxy::proxy_call_foreign_function},
    {"env", "proxy_continue_stream", "(i32) -> i32", kNoWindow, 0, Abis::k0_2_x, &proxy::proxy_continue_stream},
    {"env", "proxy_close_stream", "(i32) -> i32", kNoWindow, 0, Abis::k0_2_x, &proxy::proxy_close_stream},
    {"env", "proxy_get_log_level", "(i32) -> i32", kNoWindow, 0, Abis::k0_2_1, &proxy::proxy_get_log_level},
    {"env", "proxy_get_configuration", "(i32, i32) -> i32", kNoWindow, 0, Abis::k0_1_0, &proxy::proxy_get_configuration},
    {"env", "proxy_continue_request", "() -> i32", kNoWindow, 0, Abis::k0_1_0, &proxy::proxy_continue_request},
    {"env", "proxy_continue_response", "() -> i32", kNoWindow, 0, Abis::k0_1_0, &proxy::proxy_continue_response},
    {"env", "proxy_clear_route_cache", "() -> i32", kNoWindow, 0, Abis::k0_1_0, &proxy::proxy_clear_route_cache},
    {"env", "pthread_equal", "(i32, i32) -> i32", kNoWindow, 0, Abis::kAll, &proxy::pthread_equal},
    {"env", "emscripten_notify_memory_growth", "(i32) -> ()", kNoWindow, 0, Abis::kAll, &proxy::emscripten_notify_memory_growth},
    {"env", "envoy_resolve_dns", "(i32, i32, i32) -> i32", kNoWindow, 0, Abis::kAll, &proxy::envoy_resolve_dns},
    {"wasi", "fd_write", "(i32, i32, i32, i32) -> i32", kStartup | kAllocator, 1, Abis::kAll, &wasi::fd_write},
    {"wasi", "fd_read", "(i32, i32, i32, i32) -> i32", kNoWindow, 1, Abis::kAll, &wasi::fd_read},
    {"wasi", "fd_seek", "(i32, i64, i32, i32) -> i32", kNoWindow, 1, Abis::kAll, &wasi::fd_seek},
    {"wasi", "fd_close", "(i32) -> i32", kNoWindow, 1, Abis::kAll, &wasi::fd_close},
    {"wasi", "fd_fdstat_get", "(i32, i32) -> i32", kNoWindow, 1, Abis::kAll, &wasi::fd_fdstat_get},
    {"wasi", "environ_get", "(i32, i32) -> i32", kStartup, 1, Abis::kAll, &wasi::environ_get},
    {"wasi", "environ_sizes_get", "(i32, i32) -> i32", kStartup, 1, Abis::kAll, &wasi::environ_sizes_get},
    {"wasi", "args_get", "(i32, i32) -> i32", kStartup, 1, Abis::kAll, &wasi::args_get},
    {"wasi", "args_sizes_get", "(i32, i32) -> i32", kStartup, 1, Abis::kAll, &wasi::args_sizes_get},
    {"wasi", "clock_time_get", "(i32, i64, i32) -> i32", kStartup | kAllocator, 1, Abis::kAll, &wasi::clock_time_get},
    {"wasi", "random_get", "(i32, i32) -> i32", kStartup, 1, Abis::kAll, &wasi::random_get},
    {"wasi", "proc_exit", "(i32) -> ()", kNoWindow, 1, Abis::kAll, &wasi::proc_exit},
    {"wasi", "path_open", "(i32, i32, i32, i32, i32, i64, i64, i32, i32) -> i32", kNoWindow, 1, Abis::kAll, &wasi::path_open},
    {"wasi", "fd_prestat_get", "(i32, i32) -> i32", kStartup, 1, Abis::kAll, &wasi::fd_prestat_get},
    {"wasi", "fd_prestat_dir_name", "(i32, i32, i32) -> i32", kStartup, 1, Abis::kAll, &wasi::fd_prestat_dir_name},
    {"wasi", "sched_yield", "() -> i32", kNoWindow, 2, Abis::kAll, &wasi::sched_yield},
    {"wasi", "poll_oneoff", "(i32, i32, i32, i32) -> i32", kNoWindow, 2, Abis::kAll, &wasi::poll_oneoff},
    {"wasi", "fd_fdstat_set_flags", "(i32, i32) -> i32", kStartup, 2, Abis::kAll, &wasi::fd_fdstat_set_flags},
};
// clang-format on

}  // namespace

std::span<const ImportRow> importTable() {
  return kImportTable;
}

const ImportRow* findImport(std::string_view module, std::string_view name) {
  if (module == "wasi_snapshot_preview1" || module == "wasi_unstable") module = "wasi";
  for (const ImportRow& row : kImportTable) {
    if (row.module == module && row.name == name) return &row;
  }
  return nullptr;
}

bool importAvailable(const ImportRow& row, std::string_view abi_version, WasiTier tier) {
  if (row.wasi_tier > static_cast<int>(tier)) return false;
  switch (row.abis) {
    case Abis::k0_1_0:
      return abi_version == "0_1_0";
    case Abis::k0_2_x:
      return abi_version == "0_2_0" || abi_version == "0_2_1";
    case Abis::k0_2_1:
      return abi_version == "0_2_1";
    case Abis::kAll:
      return true;
  }
  return false;
}

}  // namespace tcpsteer::host
