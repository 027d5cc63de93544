;; 400 log lines of 64 KiB in one callback (25 MiB: three times what the host keeps; a longer flood
;; runs out of budget, the host's copying being charged to it: huge_guest_copies.wat).
(module
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
  (import "env" "proxy_define_metric" (func $define (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_record_metric" (func $record (param i32 i64) (result i32)))
  (memory (export "memory") 2)
  (data (i32.const 16) "status")
  (global $heap (mut i32) (i32.const 65536))
  (func (export "malloc") (param $n i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.add (global.get $heap) (local.get $n)))
    (local.get $p))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_context_create") (param i32 i32))
  ;; status(value): the gauge "status" := value
  (func $status (param $v i32)
    (drop (call $define (i32.const 1) (i32.const 16) (i32.const 6) (i32.const 8)))
    (drop (call $record (i32.load (i32.const 8)) (i64.extend_i32_u (local.get $v)))))
  (func (export "proxy_on_new_connection") (param i32) (result i32)
    (local $i i32)
    (loop $again
      (call $status (call $log (i32.const 2) (i32.const 0) (i32.const 65536)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $again (i32.lt_u (local.get $i) (i32.const 400))))
    (i32.const 0)))
