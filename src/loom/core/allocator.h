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
// Address space only (the memory preflight): while an AddressSpaceOnly scope is alive on any thread,
// new storage comes from fresh anonymous mappings (MAP_NORESERVE) that the kernel backs with zero pages
// on first touch, so building a model counts its bytes exactly without making them resident. Storage
// made in the scope must be freed with mem_unmap (Storage remembers which it got).
void* mem_map_zeroed(size_t bytes);
void mem_unmap(void* ptr, size_t bytes);
bool address_space_only();
class AddressSpaceOnly {
 public:
  AddressSpaceOnly();
  ~AddressSpaceOnly();
  AddressSpaceOnly(const AddressSpaceOnly&) = delete;
  AddressSpaceOnly& operator=(const AddressSpaceOnly&) = delete;
};
MemoryStats memory_stats();
void reset_peak_memory();

}  // namespace loom
