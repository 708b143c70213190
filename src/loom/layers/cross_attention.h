#pragma once
// Multi-head attention whose queries come from one sequence and whose keys and values come from another
// (PyTorch's nn.MultiheadAttention, open_clip's Attention with k_x = v_x = context):
//   q = x W_q^T + b_q      x   [B*T,  in_x]  ->  [B*T,  H*D]
//   k = c W_k^T + b_k      ctx [B*Tk, in_c]  ->  [B*Tk, H*D]
//   v = c W_v^T + b_v
//   a = softmax(q_h k_h^T / sqrt(D)) v_h per head h (columns [h*D, (h+1)*D)); causal needs Tk == T
//   y = a W_o^T + b_o                        ->  [B*T,  out]
// CoCa's decoder cross-attention (text queries over image tokens) and attentional pooling (learned
// queries over ViT tokens) are this; so is self-attention on a packed in_proj (forward_self: the context
// is x itself, one GEMM with the [3*H*D, in] weight). The packed layout is nn.MultiheadAttention's: all q
// rows, then all k rows, then all v rows (not Megatron's per-head [q k v]); the core attention reads q, k
// and v as column blocks of the projection output, so no reordering is needed.
// Weights are passed per call as LinearParams views (valid between a ParamStore's acquire and release),
// so packed (rows of one in_proj_weight) and separate (q/k/v_proj_weight) parameters both work.
// No allocation in forward/backward: Saved and Scratch are made up front for the largest shapes.
#include <cstdint>

#include "loom/core/tensor.h"
#include "loom/layers/linear.h"

namespace loom {

struct AttentionProjections {
  LinearParams q, k, v, out;  // q: [H*D, in_x]; k, v: [H*D, in_c]; out: [out, H*D]. Biases optional.
};

class CrossAttention {
 public:
  // What the backward needs (per use: one per block, or one shared by blocks that recompute).
  struct Saved {
    Tensor q;     // [rows, H*D] (cross) or the packed [rows, 3*H*D] (self)
    Tensor kv;    // [ctx rows, 2*H*D]: k then v per row (cross only)
    Tensor core;  // [rows, H*D]: the attention output before out_proj
    Tensor lse;   // [B*H*T]
  };
  // Gradients that live only within one backward call (shareable by every user of the same shape).
  struct Scratch {
    Tensor dq, dkv, dcore;
  };

  CrossAttention() = default;
  CrossAttention(int heads, int head_dim, bool causal) : heads_(heads), head_dim_(head_dim), causal_(causal) {}
  int width() const { return heads_ * head_dim_; }

  // For up to `rows` query rows (B*T) and `ctx_rows` context rows (B*Tk); self: the packed form.
  Saved make_saved(int64_t rows, int64_t ctx_rows, bool self) const;
  Scratch make_scratch(int64_t rows, int64_t ctx_rows, bool self) const;

  // y [B*T, out] (overwritten, with b_o). Needs T queries and Tk keys per sample.
  void forward(const AttentionProjections& w, const float* x, const float* ctx, int B, int T, int Tk, float* y,
               Saved& s) const;
  // dx [B*T, in_x] and dctx [B*Tk, in_c] are overwritten, or added to with accumulate_dctx (a context
  // read by several blocks); parameter gradients accumulate.
  void backward(const AttentionProjections& w, const float* dy, const float* x, const float* ctx, int B, int T,
                int Tk, float* dx, float* dctx, const Saved& s, Scratch& scratch, bool accumulate_dctx = false) const;

  // Self-attention (context = x) with the packed projection qkv [3*H*D, in] (+ bias [3*H*D]).
  void forward_self(const LinearParams& qkv, const LinearParams& out, const float* x, int B, int T, float* y,
                    Saved& s) const;
  // dx overwritten; parameter gradients accumulate.
  void backward_self(const LinearParams& qkv, const LinearParams& out, const float* dy, const float* x, int B, int T,
                     float* dx, const Saved& s, Scratch& scratch) const;

 private:
  int heads_ = 0, head_dim_ = 0;
  bool causal_ = false;
};

}  // namespace loom
