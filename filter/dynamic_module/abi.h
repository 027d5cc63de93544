// The part of Envoy's dynamic-modules C ABI that tcpsteer uses, declared here from the facts of
// Envoy 1.40.0's abi.h (ABI version "v0.2.0", the string the pinned 1.40.0 binary matches; the
// index copy of abi.h said v0.1.0, which 1.40.0 calls deprecated; names as the binary exports them,
// checked with nm -D in tests/dynamic_module/dm_symbols_test.sh). Our own declarations, not Envoy's
// header: the module builds without Envoy's sources. Every handle is a pointer, every enum a C int,
// every buffer a (pointer, length) pair, so these match the C ABI whatever Envoy calls the types.
#pragma once

#include <cstddef>
#include <cstdint>

extern "C" {

// The version Envoy 1.40.0 expects from envoy_dynamic_module_on_program_init. A mismatch makes
// Envoy 1.40 log a warning and load anyway; rebuild for another Envoy (filter/README.md).
inline constexpr const char* kEnvoyDynamicModulesAbiVersion = "v0.2.0";

using envoy_dm_config_envoy_ptr = void*;         // Envoy's network filter config
using envoy_dm_config_module_ptr = const void*;  // ours
using envoy_dm_filter_envoy_ptr = void*;         // Envoy's filter of one connection
using envoy_dm_filter_module_ptr = const void*;  // ours

struct envoy_dm_envoy_buffer {  // owned by Envoy, valid for the documented window
  const char* ptr;
  size_t length;
};

struct envoy_dm_module_buffer {  // owned by the module, read or copied during the call
  const char* ptr;
  size_t length;
};

enum envoy_dm_log_level : int {
  envoy_dm_log_level_Trace,
  envoy_dm_log_level_Debug,
  envoy_dm_log_level_Info,
  envoy_dm_log_level_Warn,
  envoy_dm_log_level_Error,
  envoy_dm_log_level_Critical,
  envoy_dm_log_level_Off,
};

enum envoy_dm_data_status : int {
  envoy_dm_data_status_Continue,
  envoy_dm_data_status_StopIteration,
};

enum envoy_dm_metrics_result : int {
  envoy_dm_metrics_result_Success,
  envoy_dm_metrics_result_MetricNotFound,
  envoy_dm_metrics_result_InvalidLabels,
  envoy_dm_metrics_result_Frozen,
};

enum envoy_dm_close_type : int {
  envoy_dm_close_type_FlushWrite,
  envoy_dm_close_type_NoFlush,
  envoy_dm_close_type_FlushWriteAndDelay,
  envoy_dm_close_type_Abort,
  envoy_dm_close_type_AbortReset,
};

using envoy_dm_connection_event = int;  // RemoteClose, LocalClose, Connected, ConnectedZeroRtt

// Callbacks Envoy exports (the module calls them).
bool envoy_dynamic_module_callback_log_enabled(envoy_dm_log_level level);
void envoy_dynamic_module_callback_log(envoy_dm_log_level level, envoy_dm_module_buffer message);
bool envoy_dynamic_module_callback_network_filter_get_remote_address(
    envoy_dm_filter_envoy_ptr filter, envoy_dm_envoy_buffer* address_out, uint32_t* port_out);
bool envoy_dynamic_module_callback_network_filter_get_local_address(
    envoy_dm_filter_envoy_ptr filter, envoy_dm_envoy_buffer* address_out, uint32_t* port_out);
bool envoy_dynamic_module_callback_network_filter_get_requested_server_name(
    envoy_dm_filter_envoy_ptr filter, envoy_dm_envoy_buffer* name_out);
bool envoy_dynamic_module_callback_network_set_filter_state_typed(envoy_dm_filter_envoy_ptr filter,
                                                                  envoy_dm_module_buffer key,
                                                                  envoy_dm_module_buffer value);
bool envoy_dynamic_module_callback_network_set_filter_state_bytes(envoy_dm_filter_envoy_ptr filter,
                                                                  envoy_dm_module_buffer key,
                                                                  envoy_dm_module_buffer value);
envoy_dm_metrics_result envoy_dynamic_module_callback_network_filter_config_define_counter(
    envoy_dm_config_envoy_ptr config, envoy_dm_module_buffer name, size_t* id_out);
envoy_dm_metrics_result envoy_dynamic_module_callback_network_filter_increment_counter(
    envoy_dm_filter_envoy_ptr filter, size_t id, uint64_t value);
void envoy_dynamic_module_callback_network_filter_close(envoy_dm_filter_envoy_ptr filter,
                                                        envoy_dm_close_type close_type);

}  // extern "C"
