;; malloc calls proxy_get_property, which Envoy forbids inside the allocator: "restricted_callback".
(module
  (import "env" "proxy_get_property" (func $get_property (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 336) "source\00address\00")
  (func (export "malloc") (param $n i32) (result i32)
    (drop (call $get_property (i32.const 336) (i32.const 15) (i32.const 600) (i32.const 604)))
    (i32.const 8192))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_new_connection") (param i32) (result i32)
    (drop (call $get_property (i32.const 336) (i32.const 15) (i32.const 600) (i32.const 604)))
    (i32.const 0)))
