#pragma once
// The decoder language model of the GPT and Llama families (one ModelConfig describes either; Llama is
// GPT plus flags, as in Megatron-Core) as an ordered list of layers: [embedding, block 0 .. block L-1,
// output head].
// The model owns the parameters (one ParamStore), the residual-stream activations between layers for
// each micro-batch slot, and the scratch the layers share. A pipeline stage will own a slice of the list.
#include <functional>
#include <memory>
#include <vector>

#include "loom/layers/layer.h"
#include "loom/layers/lm_head.h"
#include "loom/layers/param_store.h"
#include "loom/layers/workspace.h"
#include "loom/models/decoder_counts.h"
#include "loom/parallel/tensor_parallel.h"

namespace loom {

namespace dist {
class Communicator;
}

// Which part of the model a pipeline stage (or one virtual chunk of it) holds: transformer blocks
// [first_block, first_block + num_blocks), plus the embedding on the first stage and the final
// LayerNorm and output layer on the last. The default is the whole model.
struct StageSpec {
  int first_block = 0;
  int num_blocks = -1;  // -1: all blocks from first_block
  bool embedding = true;
  bool head = true;
  int flat_multiple = 16;  // pad the flat parameter buffer to a multiple of this (16 x data-parallel size for ZeRO)
  // Zero-bubble pipelines: the layers keep what their weight halves read per slot, so backward_weight
  // may run after later micro-batches' passes (Layer::defer_weight_grads).
  bool defer_weight_grads = false;
};

// The chunks pipeline rank `rank` of P holds, with V virtual stages each (Megatron's layout: chunk c of
// rank r holds the blocks of virtual stage c x P + r; the embedding is on rank 0 chunk 0, the head on rank
// P-1 chunk V-1). first/last_stage_layers (0: even split) are Megatron's
// --decoder-first/last-pipeline-num-layers. Throws UserError when the blocks do not divide.
std::vector<StageSpec> decoder_pipeline_chunks(int num_layers, int P, int V, int rank, int first_stage_layers = 0,
                                           int last_stage_layers = 0);

// An automatic split (--pipeline-split cost): `costs` are the forward costs of [embedding, block 0 ..
// block L-1, output layer] (measured by --profile-layers, or modelled); stages take contiguous runs of
// blocks, the first also the embedding and the last the output layer, chosen to minimise the most
// expensive stage. Returns the number of blocks of each stage.
std::vector<int> split_by_cost(const std::vector<double>& costs, int P);
// Modelled costs for split_by_cost: training FLOPs per token of each layer (the output layer's
// vocabulary GEMMs included), the embedding as a memory-bound pass.
std::vector<double> decoder_layer_costs(const ModelConfig& cfg);

class DecoderModel {
 public:
  // Activations are reserved for micro-batches of up to batch x seq tokens in `slots` slots.
  // storage: how the parameters are held (half precision, ZeRO sharding); see ParamStorage.
  DecoderModel(const ModelConfig& cfg, int batch, int seq, int slots = 1, TensorParallel tp = {}, StageSpec stage = {},
           ParamStorage storage = {});

  const ModelConfig& config() const { return cfg_; }
  const TensorParallel& tensor_parallel() const { return tp_; }
  const StageSpec& stage() const { return stage_; }
  int slots() const { return int(hidden_.size()); }
  // Pipeline boundaries: where a non-first stage receives its input activations, what a non-last stage
  // sends on, and (after backward) the gradient of the stage's input to send back.
  Tensor& stage_input(int slot) { return input_[size_t(slot)]; }
  const Tensor& stage_output(int slot) const { return hidden_[size_t(slot)].back(); }
  const Tensor& stage_input_grad() const { return input_grad_; }
  // The word-embedding copy of a last stage that lacks the embedding (null otherwise).
  Param* tied_output_weight() { return tied_output_ < 0 ? nullptr : &store_.at(tied_output_); }
  ParamStore& params() { return store_; }
  const ParamStore& params() const { return store_; }
  std::vector<std::unique_ptr<Layer>>& layers() { return layers_; }
  // Parameters [first, second) of the store belong to layer i (the tied output weight to the embedding).
  std::pair<int, int> layer_params(int i) const { return layer_params_[size_t(i)]; }

  void init(uint64_t seed);
  // Forward through every layer; the head adds the micro-batch's loss to ctx.loss_sum / mask_sum and,
  // when ctx.training, prepares the loss gradient.
  void forward(const StepContext& ctx);
  // Backward through every layer in reverse, accumulating parameter gradients; `after_layer(i)` (if set)
  // runs once layer i is done (data parallelism starts reducing finished gradients there). A stage
  // without the head takes the gradient of its output in `output_grad` (from the next stage).
  void backward(const StepContext& ctx, const std::function<void(int)>& after_layer = {},
                const Tensor* output_grad = nullptr);
  // The backward's halves (each layer's backward_input, then backward_weight, is backward): the input
  // gradients of every layer in reverse (stage_input_grad() after), and later, on a model built with
  // StageSpec::defer_weight_grads, the weight gradients of the same micro-batch (ctx.slot). The weight
  // halves of a model's micro-batches must run in micro-batch order for 1F1B's accumulation order.
  void backward_input(const StepContext& ctx, const Tensor* output_grad = nullptr);
  // `after_layer(i)` (if set) runs once layer i's weight half is done (a pipeline drives its transfers there).
  void backward_weight(const StepContext& ctx, const std::function<void(int)>& after_layer = {});
  // Logits [rows.size(), padded vocab] at the given rows after a forward with ctx.training == false and
  // no loss outputs (generation, one process).
  void logits(const std::vector<int>& rows, float* out);

  // Sum of squared gradients this rank contributes to the model's norm: split parameters always,
  // tensor-parallel replicas only on tensor-parallel rank 0, tied copies never (each parameter once).
  // Over the stored gradients this rank holds (its slices under ZeRO-2/3).
  double local_grad_sum_squares() const;
  // The same parameters' count of exactly-zero gradient elements (Megatron's count_zeros_fp32) and sum of
  // squared weights (calc_params_l2_norm: the stored model weights, this rank's slices under ZeRO-3).
  int64_t local_grad_zeros() const;
  double local_param_sum_squares() const;
  // Sums the gradients of replicated parameters that are partial per rank (sequence parallelism).
  void reduce_partial_replica_grads();
  // Sums the stored gradient of parameter `param` over `group` (the tied word embedding over the
  // embedding group), in fp32 whatever the storage type.
  void all_reduce_param_grad(int param, dist::Communicator& group);
  // fp32 staging for reducing half-precision gradients in chunks (undefined with fp32 gradients).
  const Tensor& grad_staging() const { return grad_staging_; }
  // Bytes allocated for activations (every slot's saved tensors and residual stream) and layer scratch.
  int64_t activation_bytes() const { return activation_bytes_; }
  // Bytes of the bf16 GEMM operand buffers (--bf16: a layer's weight, input and output gradient in bf16).
  int64_t gemm_operand_bytes() const { return gemm_operand_bytes_; }
  // Elements of the output layer's logit chunk (0 on a stage without the head).
  int64_t logit_chunk_numel() const { return head_ ? ws_.logits.numel() : 0; }
  // Parameters of the whole model (all tensor-parallel ranks), from the local shapes.
  int64_t num_params_on_rank() const;

  // --profile-layers: forward wall time and calls per layer, since the last take_profile().
  void set_profiling(bool on) { profiling_ = on; }
  struct LayerTime {
    std::string label;  // "embed", block index, "lm_head"
    double total_ms = 0;
    int calls = 0;
  };
  std::vector<LayerTime> take_profile();

 private:
  ModelConfig cfg_;
  TensorParallel tp_;
  StageSpec stage_;
  ParamStore store_;
  Workspace ws_;
  std::vector<std::unique_ptr<Layer>> layers_;
  std::vector<std::pair<int, int>> layer_params_;
  LmHead* head_ = nullptr;
  // The residual stream between layers, rounded to cfg.residual_dtype(). fp32 activations: [slot][i], the
  // output of layer i, kept for the backward (blocks read their input there). Half precision: blocks keep
  // their own input in half, so only each slot's last boundary (the head's input, or the stage's output)
  // is kept and the others pass through two shared buffers.
  std::vector<std::vector<Tensor>> hidden_;
  Tensor passing_[2];
  size_t boundaries_ = 0;
  int64_t activation_bytes_ = 0;
  int64_t gemm_operand_bytes_ = 0;  // layers that write a boundary: all but the head
  Tensor boundary(int slot, size_t i, int rows);
  int head_weight_skip(size_t layer) const;  // the parameter layer's backward leaves alone (-1: none)
  // dout: the gradient of this stage's output (the head forms its own in the forward); din: scratch.
  void start_backward(const StepContext& ctx, const Tensor* output_grad, Tensor& dout, Tensor& din);
  std::vector<Tensor> input_;                // [slot]: received input (stages without the embedding)
  Tensor grad_a_, grad_b_;                   // ping-pong gradients of the residual stream
  Tensor input_grad_;                        // view of the buffer holding the last backward's input gradient
  int tied_output_ = -1;
  int own_output_ = -1;                      // an untied output layer's weight
  int output_weight_ = -1;                   // the output layer's weight (the word embedding when tied)
  bool profiling_ = false;
  std::vector<LayerTime> profile_;
  Tensor partial_grads_;                     // staging for reduce_partial_replica_grads
  Tensor grad_staging_;                      // fp32 chunks of half-precision gradients being reduced
};

}  // namespace loom
