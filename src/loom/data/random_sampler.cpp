#include "loom/data/random_sampler.h"

#include <limits>
#include <random>

#include "loom/core/error.h"

namespace loom::data {

void torch_randperm(uint64_t seed, int64_t n, std::vector<int64_t>& out) {
  std::mt19937 engine(uint32_t(seed & 0xffffffffu));  // ATen's mt19937 seeds from the low 32 bits
  out.resize(size_t(n));
  if (n < int64_t(std::numeric_limits<uint32_t>::max() / 20)) {
    for (int64_t i = 0; i < n; i++) out[size_t(i)] = i;
    for (int64_t i = 0; i + 1 < n; i++) {
      const int64_t z = int64_t(uint32_t(engine()) % uint64_t(n - i));
      std::swap(out[size_t(i)], out[size_t(z + i)]);
    }
    return;
  }
  for (int64_t i = 0; i < n; i++) {
    const uint64_t hi = uint32_t(engine()), lo = uint32_t(engine());
    const int64_t z = int64_t(((hi << 32) | lo) % uint64_t(i + 1));
    out[size_t(i)] = out[size_t(z)];
    out[size_t(z)] = i;
  }
}

MegatronRandomSampler::MegatronRandomSampler(const RandomSamplerConfig& c) : c_(c) {
  require(c.micro_batch > 0 && c.dp_size > 0, "the cyclic data loader needs a positive micro-batch and data-parallel size");
  step_ = c.micro_batch * c.dp_size;
  active_ = c.total_samples - c.total_samples % step_;
  require(active_ > 0, "--dataloader-type cyclic: the dataset has " + std::to_string(c.total_samples) +
                           " samples, fewer than one micro-batch on every data-parallel rank (" +
                           std::to_string(step_) + ")");
  bucket_ = (c.total_samples / step_) * c.micro_batch;
  perm_size_ = c.data_sharding ? bucket_ : (c.total_samples / c.micro_batch) * c.micro_batch;
  perm_.reserve(size_t(perm_size_));
}

void MegatronRandomSampler::draw(int64_t epoch) {
  torch_randperm(uint64_t(epoch), perm_size_, perm_);
  epoch_ = epoch;
}

int64_t MegatronRandomSampler::index(int64_t position) {
  const int64_t within = position % step_, consumed = position - within;
  const int64_t rank = within / c_.micro_batch, b = within % c_.micro_batch;
  const int64_t epoch = consumed / active_, offset = consumed % active_;
  if (epoch != epoch_) draw(epoch);
  if (c_.data_sharding) return rank * bucket_ + perm_[size_t(offset / c_.dp_size + b)];
  return perm_[size_t(offset + rank + b * c_.dp_size)];
}

}  // namespace loom::data
