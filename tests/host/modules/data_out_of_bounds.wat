;; An active data segment past the end of memory: instantiation fails.
(module
  (memory (export "memory") 1)
  (data (i32.const 65535) "xy")
  (func (export "malloc") (param i32) (result i32) (i32.const 1024))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_context_create") (param i32 i32)))
