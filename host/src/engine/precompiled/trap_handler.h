/* Force-included into the wasm2c runtime (wasm-rt-impl.c) so that its WASM_RT_TRAP_HANDLER hook can
   name the engine's handler: traps jump to the calling thread's innermost precompiled call. */
void tcpsteer_precompiled_trap_code(int code);
