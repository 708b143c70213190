#pragma once
// Megatron's pre-LayerNorm GPT block:
//   x1  = x  + dropout(proj(attention(qkv(LN1(x)))) + b_proj)
//   out = x1 + dropout(fc2(gelu(fc1(LN2(x1)) + b_fc1)) + b_fc2)
// with fused QKV (per-head [q k v] layout), causal flash-style attention and tanh GELU.
// Tensor parallel as Megatron: QKV and fc1 are column-parallel (this rank holds heads/T heads and
// ffn/T columns), proj and fc2 row-parallel (partial sums reduced, bias added after); with sequence
// parallelism the LayerNorm/dropout/residual regions hold N/T token rows and the reductions become
// all-gather / reduce-scatter pairs.
#include <vector>

#include "loom/kernels/cpu/attention.h"
#include "loom/layers/activation_stash.h"
#include "loom/layers/layer.h"
#include "loom/layers/linear.h"
#include "loom/layers/param_store.h"
#include "loom/layers/workspace.h"
#include "loom/models/gpt_config.h"
#include "loom/parallel/tensor_parallel.h"

namespace loom {

// Activation recompute (Megatron's --recompute-granularity): full keeps only the block's input and
// re-runs its forward (same dropout streams, so bit-identical) just before the backward; selective keeps
// everything but the attention output, recomputed from the saved QKV.
// Half-precision activations (cfg.activation_dtype BF16/F16): the block computes in the model's shared fp32
// working set and keeps what it saves, its input included, in an ActivationStash per slot.
enum class Recompute { None, Selective, Full };

class TransformerBlock : public Layer {
 public:
  TransformerBlock(const GptConfig& cfg, int layer_index, ParamStore& store, Workspace* ws, TensorParallel tp,
                   Recompute recompute = Recompute::None);
  std::string name() const override { return "decoder.layers." + std::to_string(index_); }
  void allocate(int batch, int seq, int slots) override;
  void forward(const StepContext& ctx, const Tensor& in, Tensor& out) override;
  void backward(const StepContext& ctx, const Tensor& dout, Tensor& din) override;
  void init_params(uint64_t seed) override;

 private:
  struct Saved {          // what the backward needs, per micro-batch slot
    Tensor input;         // view of the block's input (the model keeps it alive)
    Tensor ln1, ln1_mean, ln1_rstd;
    Tensor ln1_full;      // all token rows of LN1's output (sequence parallel; else ln1 itself)
    Tensor qkv, attn, lse;
    Tensor x1;            // residual stream after the attention branch
    Tensor ln2, ln2_mean, ln2_rstd, ln2_full;
    Tensor fc1;           // fc1 output before its bias (bias is fused into GELU)
    Tensor gelu;
  };
  // Stash entries of the saved tensors (-1: not kept, e.g. the attention output under selective recompute).
  struct StashIds {
    int input = -1, ln1 = -1, ln1_mean = -1, ln1_rstd = -1, qkv = -1, attn = -1, lse = -1, x1 = -1, ln2 = -1,
        ln2_mean = -1, ln2_rstd = -1, fc1 = -1, gelu = -1;
  };
  void allocate_saved(Saved& s, int batch, int seq, bool with_attention) const;
  void declare_stash(int batch, int seq);
  bool half_activations() const { return cfg_.activation_dtype != DType::F32; }
  // The shared fp32 working set (full recompute, half-precision activations).
  Saved& working() const;
  // Forward into `s` (writing the block output to `out`), rounding saved activations to the activation
  // type; with stash_slot >= 0 also keeping them in that slot of the stash.
  void forward_into(Saved& s, const StepContext& ctx, const Tensor& in, float* out, int stash_slot);
  // Widens a slot's stashed activations into the working set.
  void restore(Saved& s, const StepContext& ctx);
  // Selective recompute: the attention output (and lse) rebuilt from the saved QKV.
  void recompute_attention(Saved& s, const StepContext& ctx) const;
  cpu::AttentionShape attention_shape(const MicroBatch& mb) const;
  LinearParams linear(int weight, int bias) const;
  uint64_t dropout_key(const StepContext& ctx, int which) const;
  // Row-parallel output: partial [N, h] sums -> this rank's [local rows, h] of the total.
  const float* reduce_partial(float* partial, float* local, int N) const;

  GptConfig cfg_;
  int index_;
  ParamStore& store_;
  Workspace* ws_;
  TensorParallel tp_;
  int local_heads_, local_ffn_;
  int ln1_w_, ln1_b_, qkv_w_, qkv_b_, proj_w_, proj_b_, ln2_w_, ln2_b_, fc1_w_, fc1_b_, fc2_w_, fc2_b_;
  Recompute recompute_;
  std::vector<Saved> saved_;  // per slot (fp32 activations)
  ActivationStash stash_;     // per slot (half-precision activations)
  Bf16Operands bf16_;         // the workspace's bf16 GEMM operands (--bf16), else null
  StashIds ids_;
};

}  // namespace loom
