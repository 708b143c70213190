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
  // (ignored by the embedding). Parameter gradients accumulate. The input half, then the weight half (a
  // layer may interleave them when it need not keep anything for a later weight half: the same bits).
  virtual void backward(const StepContext& ctx, const Tensor& dout, Tensor& din) {
    backward_input(ctx, dout, din);
    backward_weight(ctx);
  }
  // The backward's two halves, which a zero-bubble pipeline runs apart (Qi et al.'s B and W): the input
  // gradient, with the cheap parameter gradients that fall out of it (norms, most biases, the embedding
  // lookup), and keeping what the weight half reads; then the weight GEMMs' gradients of the same
  // micro-batch (ctx.slot). Each parameter's gradient accumulates in one of the two, so W passes run in
  // micro-batch order accumulate in the order of the fused backward.
  virtual void backward_input(const StepContext& ctx, const Tensor& dout, Tensor& din) = 0;
  virtual void backward_weight(const StepContext& ctx) = 0;
  // Before allocate(): keep what backward_weight reads per slot (until the slot's next forward), so it may
  // run after other micro-batches' passes. Otherwise it must follow its backward_input directly.
  void defer_weight_grads(bool on) { deferred_weights_ = on; }
  // Write initial values into this layer's parameters (they live in the model's ParamStore).
  virtual void init_params(uint64_t seed) = 0;

 protected:
  bool deferred_weights_ = false;
};

}  // namespace loom
