;; Calls proxy_get_property from _initialize (a static constructor): Envoy traps "restricted_callback".
(module
  (import "env" "proxy_get_property" (func $get_property (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 336) "plugin_root_id")
  (func (export "malloc") (param i32) (result i32) (i32.const 8192))
  (func (export "_initialize")
    (drop (call $get_property (i32.const 336) (i32.const 14) (i32.const 600) (i32.const 604))))
  (func (export "proxy_abi_version_0_2_1")))
