#pragma once
// Turning samples of seq+1 tokens into the micro-batch the model consumes (Megatron's get_batch with
// get_ltor_masks_and_position_ids), into buffers owned by the caller and reused every step.
#include <cstdint>
#include <functional>
#include <vector>

#include "loom/data/gpt_data.h"
#include "loom/layers/layer.h"

namespace loom {

// A split of a dataset: sample i is seq+1 token ids.
struct SampleSet {
  int64_t size = 0;
  std::function<void(int64_t index, int32_t* tokens)> get;
};

using BatchOptions = data::BatchOptions;

class BatchBuffer {
 public:
  BatchBuffer(int batch, int seq);
  // Loads samples [first, first + batch) (indices wrap around the set) and builds the micro-batch.
  const MicroBatch& load(const SampleSet& set, int64_t first, const BatchOptions& opt);
  const MicroBatch& micro_batch() const { return mb_; }
  std::vector<int32_t>& samples() { return samples_; }
  float* loss_mask() { return loss_mask_.data(); }  // adjustable after build()
  // Build from samples_ already filled by the caller.
  const MicroBatch& build(const BatchOptions& opt);

 private:
  int batch_, seq_;
  std::vector<int32_t> samples_, tokens_, labels_, positions_, key_start_;
  std::vector<float> loss_mask_;
  MicroBatch mb_;
};

}  // namespace loom
