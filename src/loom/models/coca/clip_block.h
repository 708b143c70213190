#pragma once
// open_clip's ResidualAttentionBlock (the CLIP text tower's blocks and both kinds of CoCa decoder block):
//   x1  = x  + out_proj(attn(ln_1(x), kv))        kv = x (self, causal or not) or ln_1_kv(context) (cross)
//   out = x1 + c_proj(gelu(c_fc(ln_2(x1))))       exact (erf) GELU
// Parameters in named_parameters() order, open_clip's names and shapes: ln_1, attn.in_proj_weight
// [3W, W] (nn.MultiheadAttention's packed rows: all q, all k, all v), attn.in_proj_bias [3W],
// attn.out_proj, [ln_1_kv], ln_2, mlp.c_fc, mlp.c_proj. The cross block projects q from the text rows
// with in_proj rows [0, W) and k, v from the image tokens with rows [W, 3W) (views of the one weight).
// Activations live in Acts (one per block, or one shared by all blocks when they recompute), gradients
// that only live within one backward in Scratch (shared by every block of a tower).
#include <string>
#include <vector>

#include "loom/layers/cross_attention.h"
#include "loom/layers/norm.h"
#include "loom/layers/param_store.h"

namespace loom {

class ClipBlock {
 public:
  struct Acts {
    Tensor ln1, ln1_mean, ln1_rstd;  // [N, W], [N], [N]
    Tensor kv, kv_mean, kv_rstd;     // cross: ln_1_kv(context) [Nk, W]
    CrossAttention::Saved attn;
    Tensor x1;                       // [N, W] residual stream after the attention
    Tensor ln2, ln2_mean, ln2_rstd;
    Tensor fc1, act;                 // [N, F]: c_fc's output before its bias, GELU's output
  };
  struct Scratch {
    Tensor branch;  // [N, W] a branch's output; the gradient of a norm's output
    Tensor dx1;     // [N, W]
    Tensor dffn;    // [N, F]
    Tensor dkv;     // [Nk, W] (cross)
    CrossAttention::Scratch attn;
  };

  ClipBlock() = default;
  // Registers `prefix`.ln_1.weight ... `prefix`.mlp.c_proj.bias. cross: keys and values from a context
  // of the same width (CoCa's image tokens), through its own ln_1_kv.
  ClipBlock(ParamStore& store, const std::string& prefix, int width, int heads, int mlp_hidden, float eps, bool causal,
            bool cross);
  bool cross() const { return cross_; }
  // The parameter indices this block registered (its storage unit).
  const std::vector<int>& params() const { return params_; }

  Acts make_acts(int64_t rows, int64_t ctx_rows) const;
  Scratch make_scratch(int64_t rows, int64_t ctx_rows) const;

  // open_clip's TextTransformer init (also what the lead asks for the decoder): in_proj normal(attn_std),
  // out_proj and c_proj normal(proj_std), c_fc normal(fc_std); in_proj/out_proj biases 0 (Attention's
  // reset), c_fc/c_proj biases nn.Linear's default U(-1/sqrt(fan_in), 1/sqrt(fan_in)); norms 1 and 0.
  void init_params(uint64_t seed, float attn_std, float proj_std, float fc_std) const;

  // x [B*T, W] -> out [B*T, W] (out must not alias x); ctx [B*Tk, W] the raw context (cross only).
  void forward(const float* x, const float* ctx, int B, int T, int Tk, float* out, Acts& a) const;
  // dx [B*T, W] overwritten (may alias dout); dctx [B*Tk, W] accumulates (cross: the image tokens are
  // read by every cross block). Parameter gradients accumulate.
  void backward(const float* dout, const float* x, const float* ctx, int B, int T, int Tk, float* dx, float* dctx,
                const Acts& a, Scratch& s) const;

 private:
  LinearParams linear(int weight, int bias) const;
  AttentionProjections cross_projections() const;

  ParamStore* store_ = nullptr;
  int width_ = 0, heads_ = 0, ffn_ = 0;
  bool cross_ = false;
  Norm ln1_, ln1_kv_, ln2_;
  int in_w_ = -1, in_b_ = -1, out_w_ = -1, out_b_ = -1, fc_w_ = -1, fc_b_ = -1, proj_w_ = -1, proj_b_ = -1;
  CrossAttention attn_;
  std::vector<int> params_;
};

}  // namespace loom
