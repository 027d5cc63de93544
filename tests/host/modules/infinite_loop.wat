;; Never returns from proxy_on_new_connection: only an instruction budget stops it.
(module
  (memory (export "memory") 1)
  (func (export "malloc") (param i32) (result i32) (i32.const 1024))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_new_connection") (param i32) (result i32)
    (loop $forever (br $forever))
    (i32.const 0)))
