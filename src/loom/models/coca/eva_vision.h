#pragma once
// CoCa's vision side as EVA-CLIP builds it for log 000: an EVA-02 ViT (EVAVisionTransformer with subln,
// SwiGLU, 2D RoPE, no final norm) followed by open_clip's cascade of attentional poolers.
//
//   x0     = [cls; patches(images) Wpe^T + bpe] + pos_embed                     [B*T, W], T = grid^2 + 1
//   block  : h = norm1(x); q = h Wq^T + q_bias, k = h Wk^T, v = h Wv^T + v_bias; 2D RoPE on the q and k
//            of the patch tokens (not CLS); a = attention(q, k, v) (bidirectional, scale 1/sqrt(D));
//            x = x + proj(inner_attn_ln(a)); h = norm2(x); x = x + w3(ffn_ln(silu(w1 h) * (w2 h)))
//   tokens = ln_post(attn_pool(x_L))                                            [B*Q, E]  (decoder context)
//   pooled = attn_pool_contrastive(tokens)[:, 0]                                [B, E]
//   latent = pooled @ visual.proj                                               [B, E]   (before L2 norm)
//
// Where ln_post sits is not in log 000 (open_clip applies ln_post before its poolers, on the ViT width, but
// this model's ln_post has the pooler width E): it is read from the shapes. attn_pool_contrastive's ln_k
// has width E, so it pools attn_pool's output (open_clip's "cascade"), and ln_post must sit between the two
// poolers or after the contrastive one; we take tokens = ln_post(attn_pool(x)), which also normalises the
// decoder's context (the lead's composition: the decoder reads tokens()).
//
// Parameters: exactly coca_parameter_specs' "visual" entries, in that order (cls_token, pos_embed, proj,
// patch_embed.proj.*, blocks.i.*, attn_pool.*, attn_pool_contrastive.*, ln_post.*). Units for
// ParamStore::acquire/release: [0] the embeddings (cls, pos, patch embedding), [1..L] one per block,
// [L+1] the head (proj, both poolers, ln_post); the caller passes them to ParamStore::finalize (after
// set_first_unit() when other towers' units come first).
//
// Every buffer is reserved by the constructor for max_batch images; forward and backward allocate
// nothing. Parameter gradients accumulate. recompute: full activation recompute per block (EVA-CLIP's
// grad_checkpointing): only each block's input is kept; the block's forward reruns just before its
// backward, giving bitwise the same gradients.
#include <cstdint>
#include <memory>
#include <vector>

#include "loom/core/tensor.h"
#include "loom/kernels/cpu/rope.h"
#include "loom/layers/param_store.h"
#include "loom/models/coca/attentional_pooler.h"
#include "loom/models/coca/coca_config.h"

namespace loom {

class EvaVisionTower {
 public:
  EvaVisionTower(const CocaConfig& cfg, ParamStore& store, int max_batch, bool recompute = false);
  ~EvaVisionTower();

  // The store's unit index of this tower's first unit (default 0).
  void set_first_unit(int u) { first_unit_ = u; }
  // The parameter indices of each unit, in unit order (embeddings, blocks, head).
  std::vector<std::vector<int>> units() const;
  int num_units() const { return cfg_.vision.layers + 2; }

  // EVA's init (trunc-normal std 0.02 for cls/pos and every Linear, zero Linear biases and q/v biases,
  // LayerNorms 1/0, attn.proj and mlp.w3 weights divided by sqrt(2 * (block + 1)), the patch embedding as
  // PyTorch's Conv2d default) and open_clip's for the poolers and visual.proj (randn * E^-0.5). Unit by
  // unit (acquire, write, commit), so sharded or half-precision storage works.
  void init_params(uint64_t seed);

  // images [B, 3, S, S], normalised, B <= max_batch.
  void forward(const float* images, int B);
  const float* latent() const { return latent_.f32(); }  // [B, E]
  const float* tokens() const { return tokens_.f32(); }  // [B*Q, E], row b*Q + q
  int batch() const { return B_; }

  // The gradients of latent() [B, E] and tokens() [B*Q, E] (either may be null: zero) of the last forward.
  void backward(const float* d_latent, const float* d_tokens);

  const cpu::RopeTable& rope() const { return *rope_; }
  const CocaConfig& config() const { return cfg_; }

 private:
  struct BlockParams;
  struct BlockActs;
  struct Weights;
  void embed_forward(const float* images, int B);
  void embed_backward(const float* d, int B);
  void block_forward(int l, const float* x, float* out, BlockActs& a, int B);
  void block_backward(int l, const float* x, BlockActs& a, float* d, int B);
  void rope_rows(float* qk, int B, bool inverse) const;

  CocaConfig cfg_;
  ParamStore& store_;
  int max_batch_;
  bool recompute_;
  int first_unit_ = 0;
  int B_ = 0;
  // Parameter indices.
  int cls_ = -1, pos_ = -1, proj_ = -1, pe_w_ = -1, pe_b_ = -1, ln_post_w_ = -1, ln_post_b_ = -1;
  std::vector<BlockParams> blocks_;
  std::unique_ptr<AttentionalPooler> pool_, pool_c_;
  std::unique_ptr<cpu::RopeTable> rope_;
  std::vector<int32_t> patch_pos_;  // 0..grid^2-1: the RoPE position of each patch token

  // Activations.
  Tensor patches_, pe_;             // im2col [B*N, 3*P*P]; patch embedding [B*N, W]
  std::vector<Tensor> xs_;          // residual stream: x0 and each block's output [B*T, W]
  std::vector<BlockActs> acts_;     // one per block (one shared slot with recompute)
  Tensor recompute_out_;            // the discarded output of a recomputed block
  Tensor tokens_, mean_post_, rstd_post_, latent_;
  // Scratch.
  Tensor d_, dgn_, dg_, du_, dh_, dan_, dattn_, dqkv_, dcol_, bias_cat_, dbias_cat_, dpe_;
  Tensor dpooled_, dtok_, dtokpre_;
};

}  // namespace loom
