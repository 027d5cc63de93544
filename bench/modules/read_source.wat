;; noop.wat plus one property read per connection: source.address, as tcpsteer reads it in
;; proxy_on_new_connection (the host allocates the value through malloc).
(module
  (import "env" "proxy_get_property" (func $get_property (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "source\00address")
  (func (export "malloc") (param i32) (result i32) (i32.const 1024))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_new_connection") (param i32) (result i32)
    (drop (call $get_property (i32.const 16) (i32.const 14) (i32.const 64) (i32.const 68)))
    (i32.const 0))
  (func (export "proxy_on_delete") (param i32)))
