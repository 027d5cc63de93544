;; read_source.wat plus the foreign call tcpsteer makes: set_envoy_filter_state with
;; envoy.tcp_proxy.cluster = egress1 (SetEnvoyFilterStateArguments: path = 1, value = 2).
(module
  (import "env" "proxy_get_property" (func $get_property (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_call_foreign_function"
    (func $foreign (param i32 i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "source\00address")
  (data (i32.const 128) "set_envoy_filter_state")
  (data (i32.const 160) "\0a\17envoy.tcp_proxy.cluster\12\07egress1")
  (func (export "malloc") (param i32) (result i32) (i32.const 1024))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_new_connection") (param i32) (result i32)
    (drop (call $get_property (i32.const 16) (i32.const 14) (i32.const 64) (i32.const 68)))
    (drop (call $foreign (i32.const 128) (i32.const 22) (i32.const 160) (i32.const 34)
                         (i32.const 72) (i32.const 76)))
    (i32.const 0))
  (func (export "proxy_on_delete") (param i32)))
