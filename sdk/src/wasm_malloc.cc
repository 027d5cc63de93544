// wasm build only: a small segregated-fit allocator that replaces wasi-libc's dlmalloc (8.8 KB of
// code, over a quarter of the module's size budget) and the byte-loop memcpy/memmove/memset (2.6
// KB, replaced by the bulk-memory instructions memory.copy / memory.fill that Envoy's V8 and wabt
// execute natively).
//
// Design: power-of-two size classes from 16 bytes to 1 GiB, one free list per class, a 16-byte
// header holding the class. Freed blocks are reused by the next allocation of their class, so a
// steady connection load allocates no new pages after warm-up. Memory comes from memory.grow;
// nothing is ever returned to the host, as with dlmalloc on wasm. Single-threaded, as every
// proxy-wasm VM is.
#if defined(__wasm__)

#include <cstddef>
#include <cstdint>
#include <cstring>

extern "C" unsigned char __heap_base;  // provided by wasm-ld: first byte after data and stack

namespace {

constexpr size_t kHeaderSize =
    16;                          // keeps payloads 16-byte aligned (alignof(max_align_t) on wasm32)
constexpr size_t kMinClass = 4;  // 16 bytes
constexpr size_t kClassCount = 31;  // up to 2^30 bytes
constexpr size_t kPageSize = 65536;

struct FreeBlock {
  FreeBlock* next;
};

FreeBlock* free_lists[kClassCount] = {};
uintptr_t bump = 0;
uintptr_t bump_end = 0;

size_t classFor(size_t total) {
  if (total <= (size_t{1} << kMinClass)) return kMinClass;
  return 32 - static_cast<size_t>(__builtin_clz(static_cast<unsigned>(total - 1)));
}

void* carve(size_t bytes) {
  if (bump == 0) {
    bump = (reinterpret_cast<uintptr_t>(&__heap_base) + 15) & ~uintptr_t{15};
    bump_end = __builtin_wasm_memory_size(0) * kPageSize;
  }
  if (bump_end - bump < bytes) {
    size_t pages = (bytes - (bump_end - bump) + kPageSize - 1) / kPageSize;
    size_t old_pages = __builtin_wasm_memory_grow(0, pages);
    if (old_pages == SIZE_MAX) return nullptr;
    // Memory is contiguous: the new pages extend the current bump region.
    if (bump_end != old_pages * kPageSize) bump = (old_pages * kPageSize + 15) & ~uintptr_t{15};
    bump_end = (old_pages + pages) * kPageSize;
    if (bump_end - bump < bytes) return nullptr;
  }
  void* block = reinterpret_cast<void*>(bump);  // NOLINT(performance-no-int-to-ptr): an allocator
  bump += bytes;
  return block;
}

void* allocate(size_t size) {
  if (size > (size_t{1} << (kClassCount - 1)) - kHeaderSize) return nullptr;
  size_t cls = classFor(size + kHeaderSize);
  auto* header = reinterpret_cast<size_t*>(free_lists[cls]);
  if (header != nullptr) {
    free_lists[cls] = free_lists[cls]->next;
  } else {
    header = static_cast<size_t*>(carve(size_t{1} << cls));
    if (header == nullptr) return nullptr;
  }
  header[0] = cls;
  return reinterpret_cast<unsigned char*>(header) + kHeaderSize;
}

size_t capacityOf(void* p) {
  auto* header = reinterpret_cast<size_t*>(static_cast<unsigned char*>(p) - kHeaderSize);
  return (size_t{1} << header[0]) - kHeaderSize;
}

}  // namespace

extern "C" {

void* malloc(size_t size) {
  return allocate(size);
}

void free(void* p) {
  if (p == nullptr) return;
  auto* header = reinterpret_cast<size_t*>(static_cast<unsigned char*>(p) - kHeaderSize);
  size_t cls = header[0];
  if (cls < kMinClass || cls >= kClassCount) __builtin_trap();  // not our block: heap corruption
  auto* block = reinterpret_cast<FreeBlock*>(header);
  block->next = free_lists[cls];
  free_lists[cls] = block;
}

void* calloc(size_t count, size_t size) {
  size_t total = 0;
  if (__builtin_mul_overflow(count, size, &total)) return nullptr;
  void* p = allocate(total);
  if (p != nullptr) __builtin_memset(p, 0, total);
  return p;
}

void* realloc(void* p, size_t size) {
  if (p == nullptr) return allocate(size);
  size_t capacity = capacityOf(p);
  if (size <= capacity) return p;
  void* grown = allocate(size);
  if (grown == nullptr) return nullptr;
  __builtin_memcpy(grown, p, capacity);
  free(p);
  return grown;
}

// Payloads are 16-byte aligned; stricter alignments are not used by this project.
void* aligned_alloc(size_t alignment, size_t size) {
  return alignment <= kHeaderSize ? allocate(size) : nullptr;
}

int posix_memalign(void** out, size_t alignment, size_t size) {
  *out = aligned_alloc(alignment, size);
  return *out == nullptr ? 12 /* ENOMEM */ : 0;
}

size_t malloc_usable_size(void* p) {
  return p == nullptr ? 0 : capacityOf(p);
}

// With -mbulk-memory these builtins compile to single memory.copy / memory.fill instructions.
void* memcpy(void* __restrict dst, const void* __restrict src, size_t n) {
  return __builtin_memcpy(dst, src, n);
}
void* memmove(void* dst, const void* src, size_t n) {
  return __builtin_memmove(dst, src, n);
}
void* memset(void* dst, int value, size_t n) {
  return __builtin_memset(dst, value, n);
}

}  // extern "C"

#endif  // __wasm__
