;; proxy_on_new_connection must return i32: Envoy fails the VM with "Bad function signature".
(module
  (memory (export "memory") 1)
  (func (export "malloc") (param i32) (result i32) (i32.const 1024))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_new_connection") (param i32)))
