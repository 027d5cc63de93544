# Toolchain for the proxy-wasm module: Debian's clang-19 targeting wasm32-wasi (WASI reactor).
# Debian's wasi-libc layout works with the wasm32-wasi triple (not wasm32-wasip1).
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR wasm32)
set(TCPSTEER_WASM_BUILD ON)

set(CMAKE_C_COMPILER clang-19)
set(CMAKE_CXX_COMPILER clang++-19)
set(CMAKE_C_COMPILER_TARGET wasm32-wasi)
set(CMAKE_CXX_COMPILER_TARGET wasm32-wasi)

# The compiler cannot link a plain executable without our exports; only compile during checks.
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)

# bulk-memory: memcpy/memset become memory.copy/memory.fill (V8, wabt, wasmtime and WAMR all run them).
set(CMAKE_C_FLAGS_INIT "-fno-exceptions -mbulk-memory")
set(CMAKE_CXX_FLAGS_INIT "-fno-exceptions -fno-rtti -fno-c++-static-destructors -fno-threadsafe-statics -mbulk-memory")
set(CMAKE_C_FLAGS_RELEASE "-Oz -flto -DNDEBUG" CACHE STRING "" FORCE)
set(CMAKE_CXX_FLAGS_RELEASE "-Oz -flto -DNDEBUG" CACHE STRING "" FORCE)
# No static archives in this build: Debian ships no llvm-ar-19, and LTO bitcode needs a matching
# archiver. The sdk and filter core are INTERFACE libraries whose sources compile into the module.
