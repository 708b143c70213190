#include "loom/layers/activation_stash.h"

#include <stdexcept>

#include "loom/kernels/cpu/precision.h"

namespace loom {

int ActivationStash::add(int64_t n, DType type) {
  if (!slots_.empty()) throw std::logic_error("ActivationStash: entries are declared before allocate");
  entries_.push_back({bytes_, n, type});
  bytes_ += (n * int64_t(dtype_size(type)) + 63) / 64 * 64;  // each entry 64-byte aligned
  return int(entries_.size()) - 1;
}

void ActivationStash::allocate(int slots) {
  slots_.clear();
  for (int s = 0; s < slots; s++) slots_.push_back(Tensor({bytes_ / 4}, DType::F32));
}

void* ActivationStash::data(int slot, const Entry& e, int64_t n) const {
  if (n > e.n) throw std::logic_error("ActivationStash: more elements than declared");
  return static_cast<char*>(slots_.at(size_t(slot)).raw()) + e.offset;
}

void ActivationStash::put(int slot, int id, float* x, int64_t n) {
  const Entry& e = entries_.at(size_t(id));
  cpu::round_and_store(x, data(slot, e, n), e.type, long(n));
}

void ActivationStash::get(int slot, int id, float* x, int64_t n) const {
  const Entry& e = entries_.at(size_t(id));
  cpu::to_f32(data(slot, e, n), e.type, x, long(n));
}

}  // namespace loom
