;; A metric whose name is not UTF-8 and a log line that is not either: JSON output must survive.
(module
  (import "env" "proxy_define_metric" (func $define (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "bad\ff\fename")
  (func (export "malloc") (param i32) (result i32) (i32.const 1024))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_new_connection") (param i32) (result i32)
    (drop (call $define (i32.const 0) (i32.const 16) (i32.const 9) (i32.const 8)))
    (drop (call $log (i32.const 2) (i32.const 16) (i32.const 9)))
    (i32.const 0)))
