;; Traps in proxy_on_new_connection for the second connection (context id 3): the VM fails there.
(module
  (memory (export "memory") 1)
  (func (export "malloc") (param i32) (result i32) (i32.const 1024))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_new_connection") (param $id i32) (result i32)
    (if (i32.eq (local.get $id) (i32.const 3)) (then unreachable))
    (i32.const 0)))
