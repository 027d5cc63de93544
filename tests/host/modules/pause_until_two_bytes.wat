;; Holds the chain (Pause) until the client has sent two bytes or half-closed; counts how often it
;; saw end_of_stream (counter "eos_seen") so a test can check the half-close arrives once.
(module
  (import "env" "proxy_define_metric" (func $define (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_increment_metric" (func $increment (param i32 i64) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "eos_seen")
  (func (export "malloc") (param i32) (result i32) (i32.const 1024))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_new_connection") (param i32) (result i32) (i32.const 1))
  (func (export "proxy_on_downstream_data") (param $id i32) (param $size i32) (param $eos i32) (result i32)
    (if (local.get $eos) (then
      (drop (call $define (i32.const 0) (i32.const 16) (i32.const 8) (i32.const 8)))
      (drop (call $increment (i32.load (i32.const 8)) (i64.const 1)))))
    (i32.eqz (i32.or (local.get $eos) (i32.ge_u (local.get $size) (i32.const 2))))))
