#include "loom/core/allocator.h"

#include <atomic>
#include <cstdlib>
#include <new>

namespace loom {
namespace {
std::atomic<int64_t> g_allocated{0};
std::atomic<int64_t> g_max_allocated{0};
std::atomic<int64_t> g_num_allocs{0};

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

MemoryStats memory_stats() { return {g_allocated.load(), g_max_allocated.load(), g_num_allocs.load()}; }

void reset_peak_memory() { g_max_allocated = g_allocated.load(); }

}  // namespace loom
