#pragma once
// AdamW over a model's ParamStore: fp32 moments in flat buffers laid out like the parameters; weight
// decay per parameter (Megatron: none on biases and norms).
// ZeRO (sharded over a data-parallel group): the rank keeps the moments of one contiguous 1/D of the
// flat buffer, updates only those parameters and all-gathers the rest (Megatron's distributed
// optimizer, DeepSpeed ZeRO stage 1/2 for the optimizer state).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "loom/core/dtype.h"
#include "loom/core/tensor.h"
#include "loom/layers/param_store.h"

namespace loom {

struct AdamWOptions {
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.01;
};

namespace dist {
class Communicator;
}
class OffloadedMoments;

class AdamW {
 public:
  // shard_over: the data-parallel group to shard the state over (null: no sharding).
  AdamW(ParamStore& params, AdamWOptions opt, std::shared_ptr<dist::Communicator> shard_over = nullptr);
  ~AdamW();
  // One update with learning rate lr; advances the step count.
  void step(double lr);
  int64_t steps() const { return step_; }
  void set_steps(int64_t s) { step_ = s; }
  const AdamWOptions& options() const { return opt_; }
  bool sharded() const { return shard_ != nullptr; }
  // This rank's element range of the flat buffers (everything without sharding).
  int64_t shard_begin() const { return shard_begin_; }
  int64_t shard_end() const { return shard_end_; }
  // --offload-optimizer nvme: move the moments into a file under `dir`, streamed through 3 blocks of
  // `block_elements` during each step.
  void offload(const std::string& dir, int64_t block_elements);
  bool offloaded() const { return offload_ != nullptr; }
  // The full moments in the flat layout (collective over the shard group when sharded), and back.
  void gather_state(std::vector<float>& m, std::vector<float>& v);
  void set_state(const float* m, const float* v);

  // Mixed precision (Megatron's Float16Optimizer): the model's weights become `model_dtype` values and
  // this optimizer keeps the fp32 main weights (of its shard), updating them and writing the rounded
  // result back to the model after every step. Call after the weights are initialised or loaded.
  void use_main_weights(DType model_dtype);
  bool has_main_weights() const { return main_.defined(); }
  // The fp32 main weights in the flat layout (collective over the shard group when sharded).
  void gather_main_weights(std::vector<float>& w);

 private:
  ParamStore& params_;
  AdamWOptions opt_;
  std::shared_ptr<dist::Communicator> shard_;
  int64_t shard_begin_ = 0, shard_end_ = 0;
  Tensor m_, v_;  // [shard_end - shard_begin]
  Tensor main_;   // fp32 main weights of the shard (mixed precision only)
  std::unique_ptr<OffloadedMoments> offload_;
  DType model_dtype_ = DType::F32;
  int64_t step_ = 0;
};

// Megatron's clip_grad_norm_fp32 given the model's total norm: coeff = max_norm / (norm + 1e-6);
// gradients scaled when coeff < 1.
void clip_grads(ParamStore& params, double norm, double max_norm);

}  // namespace loom
