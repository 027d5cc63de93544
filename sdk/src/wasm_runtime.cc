// wasm build only: replaces the libc++/libc++abi pieces that would import WASI functions.
// libc++'s verbose-abort hook and libc++abi's no-exceptions operator new print to stderr, which
// imports wasi_snapshot_preview1.fd_write/fd_seek/fd_close. Envoy does provide those, but a module
// with no WASI imports loads on every host and needs no start-up allow-list. These paths are only
// reached on out-of-memory or a libc++ precondition failure, where trapping is all that is left to
// do.
#if defined(__wasm__)

#include <cstddef>
#include <cstdlib>
#include <new>

_LIBCPP_BEGIN_NAMESPACE_STD
[[noreturn]] void __libcpp_verbose_abort(const char* /*format*/, ...) {
  __builtin_trap();
}
_LIBCPP_END_NAMESPACE_STD

namespace {

void* allocateOrTrap(std::size_t size) {
  void* p = std::malloc(size == 0 ? 1 : size);
  if (p == nullptr) __builtin_trap();
  return p;
}

void* allocateAlignedOrTrap(std::size_t size, std::align_val_t alignment) {
  void* p = std::aligned_alloc(static_cast<std::size_t>(alignment), size == 0 ? 1 : size);
  if (p == nullptr) __builtin_trap();
  return p;
}

}  // namespace

void* operator new(std::size_t size) {
  return allocateOrTrap(size);
}
void* operator new[](std::size_t size) {
  return allocateOrTrap(size);
}
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  return std::malloc(size == 0 ? 1 : size);
}
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept {
  return std::malloc(size == 0 ? 1 : size);
}
void* operator new(std::size_t size, std::align_val_t alignment) {
  return allocateAlignedOrTrap(size, alignment);
}
void* operator new[](std::size_t size, std::align_val_t alignment) {
  return allocateAlignedOrTrap(size, alignment);
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete[](void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
  std::free(p);
}
void operator delete(void* p, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept {
  std::free(p);
}

#endif  // __wasm__
