;; Hands the host out-of-bounds pointers and records each returned status in a gauge, so the test
;; can check InvalidMemoryAccess (6) came back instead of a host crash.
(module
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
  (import "env" "proxy_get_property" (func $get_property (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_define_metric" (func $define (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_record_metric" (func $record (param i32 i64) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 256) "log_status")                 ;; 10 bytes
  (data (i32.const 272) "property_path_status")       ;; 20 bytes
  (data (i32.const 304) "property_result_status")     ;; 22 bytes
  (data (i32.const 336) "source\00address\00")        ;; 15 bytes
  (global $heap (mut i32) (i32.const 8192))
  (func (export "malloc") (param $n i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.add (global.get $heap) (local.get $n)))
    (local.get $p))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func $metric (param $name i32) (param $len i32) (result i32)
    (drop (call $define (i32.const 1) (local.get $name) (local.get $len) (i32.const 512)))
    (i32.load (i32.const 512)))
  (func (export "proxy_on_new_connection") (param i32) (result i32)
    (drop (call $record (call $metric (i32.const 256) (i32.const 10))
      (i64.extend_i32_u (call $log (i32.const 2) (i32.const 65530) (i32.const 100)))))
    (drop (call $record (call $metric (i32.const 272) (i32.const 20))
      (i64.extend_i32_u (call $get_property (i32.const -16) (i32.const 15) (i32.const 600) (i32.const 604)))))
    (drop (call $record (call $metric (i32.const 304) (i32.const 22))
      (i64.extend_i32_u (call $get_property (i32.const 336) (i32.const 15) (i32.const 65534) (i32.const 604)))))
    (i32.const 0)))
