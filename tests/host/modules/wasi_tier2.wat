;; Imports sched_yield, which only Envoy 1.34+ (proxy-wasm-cpp-host c4d7bb0) provides.
(module
  (import "wasi_snapshot_preview1" "sched_yield" (func (result i32)))
  (memory (export "memory") 1)
  (func (export "malloc") (param i32) (result i32) (i32.const 1024))
  (func (export "proxy_abi_version_0_2_1")))
