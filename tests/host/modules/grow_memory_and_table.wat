;; memory.grow a page at a time (to 1,024 pages), then past Envoy's engines' cap (16,384 pages);
;; and table.grow by 2^31-1. Growth past a cap fails with -1 before the host allocates anything;
;; the gauge "status" records what happened.
(module
  (import "env" "proxy_define_metric" (func $define (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_record_metric" (func $record (param i32 i64) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "status")
  (table 1 funcref)
  (func (export "malloc") (param i32) (result i32) (i32.const 1024))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_new_connection") (param i32) (result i32)
    (local $ok i32)
    (loop $pages  ;; to 1,024 pages, one at a time
      (if (i32.ne (memory.grow (i32.const 1)) (i32.const -1))
        (then (br_if $pages (i32.lt_u (memory.size) (i32.const 1024))))))
    ;; bit 0: one page past the cap refused; bit 1: table.grow by 2^31-1 refused;
    ;; bit 2: memory.size is still 1,024 pages
    (local.set $ok (i32.eq (memory.grow (i32.sub (i32.const 16385) (memory.size))) (i32.const -1)))
    (local.set $ok (i32.or (local.get $ok) (i32.shl
      (i32.eq (table.grow 0 (ref.null func) (i32.const 0x7fffffff)) (i32.const -1)) (i32.const 1))))
    (local.set $ok (i32.or (local.get $ok) (i32.shl
      (i32.eq (memory.size) (i32.const 1024)) (i32.const 2))))
    (drop (call $define (i32.const 1) (i32.const 16) (i32.const 6) (i32.const 8)))
    (drop (call $record (i32.load (i32.const 8)) (i64.extend_i32_u (local.get $ok))))
    (i32.const 0)))
