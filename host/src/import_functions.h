// The functions that serve Envoy's imports, one per import, named as the import (the table in
// import_table.cc binds each to its row). env functions return a WasmResult, WASI ones an errno.
#pragma once

#include <cstdint>

#include "host/src/import_table.h"
#include "host/src/properties.h"

namespace tcpsteer::host::proxy {
uint32_t proxy_log(ImportCall& call);
uint32_t proxy_get_status(ImportCall& call);
uint32_t proxy_set_property(ImportCall& call);
uint32_t proxy_get_property(ImportCall& call);
uint32_t proxy_send_local_response(ImportCall& call);
uint32_t proxy_get_shared_data(ImportCall& call);
uint32_t proxy_set_shared_data(ImportCall& call);
uint32_t proxy_register_shared_queue(ImportCall& call);
uint32_t proxy_resolve_shared_queue(ImportCall& call);
uint32_t proxy_dequeue_shared_queue(ImportCall& call);
uint32_t proxy_enqueue_shared_queue(ImportCall& call);
uint32_t proxy_get_header_map_value(ImportCall& call);
uint32_t proxy_add_header_map_value(ImportCall& call);
uint32_t proxy_replace_header_map_value(ImportCall& call);
uint32_t proxy_remove_header_map_value(ImportCall& call);
uint32_t proxy_get_header_map_pairs(ImportCall& call);
uint32_t proxy_set_header_map_pairs(ImportCall& call);
uint32_t proxy_get_header_map_size(ImportCall& call);
uint32_t proxy_get_buffer_status(ImportCall& call);
uint32_t proxy_get_buffer_bytes(ImportCall& call);
uint32_t proxy_set_buffer_bytes(ImportCall& call);
uint32_t proxy_http_call(ImportCall& call);
uint32_t proxy_grpc_call(ImportCall& call);
uint32_t proxy_grpc_stream(ImportCall& call);
uint32_t proxy_grpc_close(ImportCall& call);
uint32_t proxy_grpc_cancel(ImportCall& call);
uint32_t proxy_grpc_send(ImportCall& call);
uint32_t proxy_set_tick_period_milliseconds(ImportCall& call);
uint32_t proxy_get_current_time_nanoseconds(ImportCall& call);
uint32_t proxy_define_metric(ImportCall& call);
uint32_t proxy_increment_metric(ImportCall& call);
uint32_t proxy_record_metric(ImportCall& call);
uint32_t proxy_get_metric(ImportCall& call);
uint32_t proxy_set_effective_context(ImportCall& call);
uint32_t proxy_done(ImportCall& call);
uint32_t proxy_call_foreign_function(ImportCall& call);
uint32_t proxy_continue_stream(ImportCall& call);
uint32_t proxy_close_stream(ImportCall& call);
uint32_t proxy_get_log_level(ImportCall& call);
uint32_t proxy_get_configuration(ImportCall& call);
uint32_t proxy_continue_request(ImportCall& call);
uint32_t proxy_continue_response(ImportCall& call);
uint32_t proxy_clear_route_cache(ImportCall& call);
uint32_t pthread_equal(ImportCall& call);
uint32_t emscripten_notify_memory_growth(ImportCall& call);
uint32_t envoy_resolve_dns(ImportCall& call);
}  // namespace tcpsteer::host::proxy

namespace tcpsteer::host::wasi {
uint32_t fd_write(ImportCall& call);
uint32_t fd_read(ImportCall& call);
uint32_t fd_seek(ImportCall& call);
uint32_t fd_close(ImportCall& call);
uint32_t fd_fdstat_get(ImportCall& call);
uint32_t environ_get(ImportCall& call);
uint32_t environ_sizes_get(ImportCall& call);
uint32_t args_get(ImportCall& call);
uint32_t args_sizes_get(ImportCall& call);
uint32_t clock_time_get(ImportCall& call);
uint32_t random_get(ImportCall& call);
uint32_t proc_exit(ImportCall& call);
uint32_t path_open(ImportCall& call);
uint32_t fd_prestat_get(ImportCall& call);
uint32_t fd_prestat_dir_name(ImportCall& call);
uint32_t sched_yield(ImportCall& call);
uint32_t poll_oneoff(ImportCall& call);
uint32_t fd_fdstat_set_flags(ImportCall& call);
}  // namespace tcpsteer::host::wasi
