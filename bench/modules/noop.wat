;; The cost of a wasm network filter in Envoy before it does anything: the callbacks tcpsteer
;; exports (context create, new connection, delete) returning at once, no host call. What Envoy
;; pays per connection for the VM and its transitions alone (bench/envoy_bench.py).
(module
  (memory (export "memory") 1)
  (func (export "malloc") (param i32) (result i32) (i32.const 1024))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_new_connection") (param i32) (result i32) (i32.const 0))
  (func (export "proxy_on_delete") (param i32)))
