#pragma once
// Megatron's MegatronPretrainingRandomSampler (--dataloader-type cyclic): a new random order of the
// dataset every epoch, drawn by torch.randperm with a torch.Generator seeded by the epoch number.
//
// Megatron's sampler, per data-parallel rank r of dp, micro-batch mbs, for a dataset of `total` samples:
//   g = mbs x dp, active = total - total % g (the last partial step of each epoch is dropped);
//   at consumed samples C: epoch = C // active, offset = C % active;
//   data sharding (the default): each rank owns a bucket of (total // g) x mbs consecutive samples and
//     reads r x bucket + randperm(bucket)[offset // dp + b] for b < mbs;
//   --no-data-sharding: reads randperm((total // mbs) x mbs)[offset + r + b x dp].
// Megatron's iterator advances C by g per micro-batch, so sample b of rank r at consumed samples C is
// the same whether the run started there (resumed from a checkpoint) or read its way there.
//
// Loom's trainer names the sample it wants by Megatron's sequential position (C + r x mbs + b, see
// Trainer::first_sample); `index` turns that position into the dataset index the random sampler reads.
#include <cstdint>
#include <vector>

namespace loom::data {

// torch.randperm(n, generator=g) on the CPU after g.manual_seed(seed), as ATen computes it: mt19937
// seeded with the low 32 bits of `seed`; for n < 2^32 / 20, a forward Fisher-Yates where step i swaps
// i with i + (draw % (n - i)); above, the inside-out variant with 64-bit draws (two 32-bit draws, the
// first as the high half) modulo i + 1, as ATen has done since it stopped using 32-bit draws for large n.
// Fills `out` (resized to n; no allocation when its capacity suffices).
void torch_randperm(uint64_t seed, int64_t n, std::vector<int64_t>& out);

struct RandomSamplerConfig {
  int64_t total_samples = 0;  // len(dataset)
  int64_t micro_batch = 1;
  int64_t dp_size = 1;
  bool data_sharding = true;  // Megatron's --no-data-sharding clears it
};

class MegatronRandomSampler {
 public:
  // UserError when the dataset cannot fill one micro-batch on every rank (Megatron divides by zero).
  explicit MegatronRandomSampler(const RandomSamplerConfig& c);
  // The dataset index read at Megatron's sequential position `position` (>= 0).
  int64_t index(int64_t position);
  int64_t epoch_of(int64_t consumed) const { return consumed / active_; }
  int64_t active_samples() const { return active_; }  // samples one epoch reads (all ranks)

 private:
  void draw(int64_t epoch);
  RandomSamplerConfig c_;
  int64_t step_ = 0, active_ = 0, perm_size_ = 0, bucket_ = 0;
  int64_t epoch_ = -1;  // the epoch perm_ holds
  std::vector<int64_t> perm_;
};

}  // namespace loom::data
