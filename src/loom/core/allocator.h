#pragma once
// Every tensor's storage comes from here, 64-byte aligned for AVX-512 loads, and is counted so the
// trainer can print Megatron's memory line (allocated / max allocated) and tests can measure peaks.
#include <cstddef>
#include <cstdint>

namespace loom {

struct MemoryStats {
  int64_t allocated = 0;      // bytes live now
  int64_t max_allocated = 0;  // high-water mark since the last reset_peak()
  int64_t num_allocs = 0;     // allocations ever made (a step that allocates shows up here)
};

void* mem_alloc(size_t bytes);
void mem_free(void* ptr, size_t bytes);
MemoryStats memory_stats();
void reset_peak_memory();

}  // namespace loom
