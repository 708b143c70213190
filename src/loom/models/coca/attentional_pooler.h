#pragma once
// open_clip's AttentionalPooler: `queries` learned queries attend over a context of Tk tokens per sample
// with nn.MultiheadAttention(d_model, heads, kdim = vdim = context width):
//
//   out[b] = MHA(ln_q(query), ln_k(x[b]), ln_k(x[b]))        out [B*queries, d_model], x [B*Tk, context]
//
// with MHA(q, k, v) = concat_h softmax((q Wq_h^T + bq_h)(k Wk_h^T + bk_h)^T / sqrt(D)) (v Wv_h^T + bv_h),
// then out_proj (weight and bias). nn.MultiheadAttention keeps q/k/v weights in one packed
// in_proj_weight [3*d_model, d_model] when kdim == d_model, else as q_proj_weight [d, d], k_proj_weight and
// v_proj_weight [d, context]; in_proj_bias [3*d_model] is always packed (bq, bk, bv). CoCa uses it twice:
// attn_pool (256 queries over the ViT's tokens, context = ViT width) and attn_pool_contrastive (1 query
// over attn_pool's output, context = d_model).
//
// Parameters are registered in named_parameters() order (query, attn.*, ln_q, ln_k) under `prefix`.
// Buffers for max_batch samples of max_context tokens are reserved by the constructor; forward and
// backward allocate nothing. Parameter gradients accumulate. The Param views are read at each call (so
// the caller may acquire/release the store's unit around it).
#include <string>
#include <vector>

#include "loom/core/tensor.h"
#include "loom/layers/param_store.h"

namespace loom {

struct AttentionalPoolerShape {
  int queries = 256;
  int d_model = 512;
  int context_dim = 768;
  int heads = 8;
  float ln_eps = 1e-5f;  // ln_q and ln_k (open_clip's LayerNorm default)
};

class AttentionalPooler {
 public:
  AttentionalPooler(const AttentionalPoolerShape& s, ParamStore& store, const std::string& prefix, int max_batch,
                    int max_context);
  // open_clip's: query randn (std 1); nn.MultiheadAttention._reset_parameters: xavier_uniform_ on the
  // q/k/v weights (the packed one as one tensor), zero in_proj_bias and out_proj.bias, out_proj.weight
  // PyTorch's Linear default (uniform +-1/sqrt(d_model)); LayerNorms ones/zeros.
  void init_params(uint64_t seed) const;
  // x [B*Tk, context_dim] (row b*Tk + t); the pointer is kept for the backward, so x must stay unchanged
  // until then. Result in out() [B*queries, d_model].
  void forward(const float* x, int B, int Tk);
  const float* out() const { return out_.f32(); }
  // d_out [B*queries, d_model] of the last forward. dx [B*Tk, context_dim] ACCUMULATES (+=) the context's
  // gradient (null: not wanted); parameter gradients accumulate.
  void backward(const float* d_out, float* dx);
  // Indices of this pooler's parameters in the store, in registration order.
  const std::vector<int>& param_indices() const { return params_; }
  const AttentionalPoolerShape& shape() const { return s_; }

 private:
  struct Weights {
    float *query, *wq, *wk, *wv, *bias, *wo, *bo, *lnq_w, *lnq_b, *lnk_w, *lnk_b;
  };
  Weights values() const;
  Weights grads() const;

  AttentionalPoolerShape s_;
  ParamStore& store_;
  bool packed_ = false;
  int max_batch_, max_context_;
  int query_ = -1, wq_ = -1, wk_ = -1, wv_ = -1, in_w_ = -1, bias_ = -1, wo_ = -1, bo_ = -1;
  int lnq_w_ = -1, lnq_b_ = -1, lnk_w_ = -1, lnk_b_ = -1;
  std::vector<int> params_;
  // The last forward's batch and context.
  const float* x_ = nullptr;
  int B_ = 0, Tk_ = 0;
  // Activations: ln_k(x), its statistics, ln_q(query), its statistics, the projected queries repeated per
  // sample, the projected keys and values [B*Tk, 2d] (k | v), the attention output, log-sum-exp, output.
  Tensor xn_, mean_k_, rstd_k_, qn_, mean_q_, rstd_q_, q_, kv_, attn_, lse_, out_;
  // Backward scratch.
  Tensor d_attn_, dq_, dkv_, dq_sum_, dqn_, dxn_;
};

}  // namespace loom
