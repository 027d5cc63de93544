;; A module Envoy would refuse: an import it does not provide, a WASI import, and a callback with the
;; wrong signature. check_module.py must reject it (ctest check_module_rejects_bad_module).
(module
  (import "env" "getaddrinfo" (func (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "malloc") (param i32) (result i32) (i32.const 0))
  (func (export "_initialize"))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_delete") (param i32))
  ;; must return i32
  (func (export "proxy_on_new_connection") (param i32)))
