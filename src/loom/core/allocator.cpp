#include "loom/core/allocator.h"

#include <atomic>
#include <sys/mman.h>

#include <cstdlib>
#include <new>

namespace loom {
namespace {
std::atomic<int64_t> g_allocated{0};
std::atomic<int64_t> g_max_allocated{0};
std::atomic<int64_t> g_num_allocs{0};
std::atomic<int> g_address_space_only{0};

void raise_peak(int64_t now) {
  int64_t peak = g_max_allocated.load();
  while (now > peak && !g_max_allocated.compare_exchange_weak(peak, now)) {
  }
}
}  // namespace

void* mem_alloc(size_t bytes) {
  if (bytes == 0) return nullptr;
  size_t rounded = (bytes + 63) & ~size_t(63);
  void* p = std::aligned_alloc(64, rounded);
  if (!p) throw std::bad_alloc();
  g_num_allocs++;
  raise_peak(g_allocated += int64_t(bytes));
  return p;
}

void mem_free(void* ptr, size_t bytes) {
  if (!ptr) return;
  std::free(ptr);
  g_allocated -= int64_t(bytes);
}

void* mem_map_zeroed(size_t bytes) {
  if (bytes == 0) return nullptr;
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  g_num_allocs++;
  raise_peak(g_allocated += int64_t(bytes));
  return p;
}

void mem_unmap(void* ptr, size_t bytes) {
  if (!ptr) return;
  munmap(ptr, bytes);
  g_allocated -= int64_t(bytes);
}

bool address_space_only() { return g_address_space_only.load() > 0; }
AddressSpaceOnly::AddressSpaceOnly() { g_address_space_only++; }
AddressSpaceOnly::~AddressSpaceOnly() { g_address_space_only--; }

MemoryStats memory_stats() { return {g_allocated.load(), g_max_allocated.load(), g_num_allocs.load()}; }

void reset_peak_memory() { g_max_allocated = g_allocated.load(); }

}  // namespace loom
