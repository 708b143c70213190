#pragma once
// A model is an ordered list of layers (embedding, transformer blocks, output head), so a pipeline stage
// is a slice of the list. Each layer has an explicit forward and backward over the residual stream,
// [rows = batch x seq, hidden] fp32. What a layer saves for its backward lives in per-micro-batch
// slots it allocates up front, so schedules that keep several micro-batches in flight need no change
// to the layers and the step loop never allocates.
#include <cstdint>
#include <string>

#include "loom/core/tensor.h"

namespace loom {

class ParamStore;

// The data of one micro-batch, as the layers see it. Rows are b * seq + t.
struct MicroBatch {
  int batch = 0, seq = 0;
  const int32_t* tokens = nullptr;        // [rows]
  const int32_t* positions = nullptr;     // [rows]
  const int32_t* labels = nullptr;        // [rows]
  const float* loss_mask = nullptr;       // [rows]
  const int32_t* key_start = nullptr;     // [rows] first key each token attends (document masking), or null
  int rows() const { return batch * seq; }
};

// What varies per forward/backward call.
struct StepContext {
  const MicroBatch* mb = nullptr;
  int slot = 0;                 // which saved-activation slot this micro-batch uses
  bool training = true;         // dropout on, gradients wanted
  uint64_t rng_key = 0;         // dropout stream of this micro-batch; layers derive their own from it
  float loss_grad_scale = 1.f;  // d(total objective)/d(this micro-batch's mean loss): 1/M x loss scale
  // Outputs of the loss layer for this micro-batch:
  double* loss_sum = nullptr;   // sum of mask x token loss
  double* mask_sum = nullptr;   // sum of mask
};

class Layer {
 public:
  virtual ~Layer() = default;
  virtual std::string name() const = 0;
  // Reserve activation memory for micro-batches of up to `rows` rows in `slots` slots.
  virtual void allocate(int batch, int seq, int slots) = 0;
  // in: [rows, hidden] (ignored by the embedding); out: [rows, hidden] (ignored by the head).
  virtual void forward(const StepContext& ctx, const Tensor& in, Tensor& out) = 0;
  // dout: gradient of the output (ignored by the head); din: gradient of the input, overwritten
  // (ignored by the embedding). Parameter gradients accumulate.
  virtual void backward(const StepContext& ctx, const Tensor& dout, Tensor& din) = 0;
  // Write initial values into this layer's parameters (they live in the model's ParamStore).
  virtual void init_params(uint64_t seed) = 0;
};

}  // namespace loom
