#include "loom/models/coca/clip_text.h"

#include <cmath>
#include <cstring>
#include <string>

#include "loom/core/error.h"
#include "loom/kernels/cpu/embedding.h"
#include "loom/kernels/cpu/gemm.h"
#include "loom/layers/init.h"

namespace loom {

ClipTextTower::ClipTextTower(const CocaConfig& cfg, ParamStore& store, int max_batch, bool recompute)
    : cfg_(cfg.text), embed_dim_(cfg.embed_dim), store_(store), max_batch_(max_batch), recompute_(recompute) {
  const ClipTextConfig& t = cfg_;
  const int64_t W = t.width, ctx = t.context_length, N = int64_t(max_batch) * ctx;
  // named_parameters() order: the module's own parameters, then token_embedding, blocks, ln_final.
  pos_ = store.add("text.positional_embedding", {ctx, W}, true);  // ndim >= 2; the groups helper decides
  proj_ = store.add("text.text_projection", {W, embed_dim_}, true);
  tok_ = store.add("text.token_embedding.weight", {t.vocab_size, W}, true);
  for (int i = 0; i < t.layers; i++)
    blocks_.emplace_back(store, "text.transformer.resblocks." + std::to_string(i), t.width, t.heads, t.mlp_hidden,
                         t.ln_eps, true, false);
  TransformerConfig tc;
  tc.normalization = NormKind::LayerNorm;
  tc.layernorm_epsilon = t.ln_eps;
  tc.hidden_size = t.width;
  ln_first_ = int(store.all().size());
  ln_final_ = Norm(tc, store, "text.ln_final", TensorParallel{});

  positions_ = Tensor({N}, DType::I32);
  for (int64_t r = 0; r < N; r++) positions_.i32()[r] = int32_t(r % ctx);
  for (int i = 0; i <= t.layers; i++) hidden_.push_back(Tensor({N, W}));
  const int n_acts = recompute ? 1 : t.layers;
  for (int i = 0; i < n_acts; i++) acts_.push_back(blocks_[0].make_acts(N, 0));
  scratch_ = blocks_[0].make_scratch(N, 0);
  if (recompute) recompute_out_ = Tensor({N, W});
  tokens_ = Tensor({N, W});
  ln_mean_ = Tensor({N});
  ln_rstd_ = Tensor({N});
  pooled_ = Tensor({int64_t(max_batch), W});
  d_pooled_ = Tensor({int64_t(max_batch), W});
  latent_ = Tensor({int64_t(max_batch), int64_t(embed_dim_)});
  d_hidden_ = Tensor({N, W});
  eot_.assign(size_t(max_batch), 0);
}

std::vector<std::vector<int>> ClipTextTower::units() const {
  std::vector<std::vector<int>> u;
  u.push_back({tok_, pos_});
  for (const ClipBlock& b : blocks_) u.push_back(b.params());
  u.push_back({ln_first_, ln_first_ + 1, proj_});
  return u;
}

void ClipTextTower::init_params(uint64_t seed) {
  const float W = float(cfg_.width);
  const float attn_std = 1.f / std::sqrt(W);
  const float proj_std = attn_std / std::sqrt(2.f * float(cfg_.layers));
  const float fc_std = 1.f / std::sqrt(2.f * W);
  store_.acquire(unit(0), false);
  init_normal(store_.at(tok_), seed, 0.02f);
  init_normal(store_.at(pos_), seed, 0.01f);
  store_.commit(unit(0));
  for (size_t i = 0; i < blocks_.size(); i++) {
    store_.acquire(unit(int(i) + 1), false);
    blocks_[i].init_params(seed, attn_std, proj_std, fc_std);
    store_.commit(unit(int(i) + 1));
  }
  const int head = unit(int(blocks_.size()) + 1);
  store_.acquire(head, false);
  ln_final_.init_params();
  init_normal(store_.at(proj_), seed, attn_std);
  store_.commit(head);
}

void ClipTextTower::forward(const int32_t* ids, int B) {
  const int ctx = cfg_.context_length, W = cfg_.width, E = embed_dim_, N = B * ctx;
  if (B < 1 || B > max_batch_)
    throw std::logic_error("ClipTextTower: batch " + std::to_string(B) + " outside [1, " + std::to_string(max_batch_) + "]");
  for (int r = 0; r < N; r++)
    if (ids[r] < 0 || ids[r] >= cfg_.vocab_size)
      fail("text token id " + std::to_string(ids[r]) + " is outside the vocabulary [0, " +
           std::to_string(cfg_.vocab_size) + ")");
  B_ = B;
  ids_ = ids;
  for (int b = 0; b < B; b++) {  // torch.argmax: the first of equal maxima
    int best = 0;
    for (int t = 1; t < ctx; t++)
      if (ids[b * ctx + t] > ids[b * ctx + best]) best = t;
    eot_[size_t(b)] = best;
  }

  store_.acquire(unit(0), false);
  cpu::embedding_forward(ids, positions_.i32(), store_.at(tok_).value.f32(), store_.at(pos_).value.f32(),
                         hidden_[0].f32(), N, W);
  store_.release(unit(0), false);
  for (size_t i = 0; i < blocks_.size(); i++) {
    store_.acquire(unit(int(i) + 1), false);
    blocks_[i].forward(hidden_[i].f32(), nullptr, B, ctx, 0, hidden_[i + 1].f32(), acts_[recompute_ ? 0 : i]);
    store_.release(unit(int(i) + 1), false);
  }
  const int head = unit(int(blocks_.size()) + 1);
  store_.acquire(head, false);
  ln_final_.forward(hidden_.back().f32(), tokens_.f32(), ln_mean_.f32(), ln_rstd_.f32(), N);
  for (int b = 0; b < B; b++)
    std::memcpy(pooled_.f32() + size_t(b) * W, tokens_.f32() + (size_t(b) * ctx + eot_[size_t(b)]) * W,
                sizeof(float) * size_t(W));
  cpu::gemm(false, false, B, E, W, 1.f, pooled_.f32(), W, store_.at(proj_).value.f32(), E, 0.f, latent_.f32(), E);
  store_.release(head, false);
}

void ClipTextTower::backward(const float* d_latent, const float* d_tokens) {
  const int B = B_, ctx = cfg_.context_length, W = cfg_.width, E = embed_dim_, N = B * ctx;
  const int head = unit(int(blocks_.size()) + 1);
  float* dx = d_hidden_.f32();
  store_.acquire(head, true);
  const Param& proj = store_.at(proj_);
  // latent = pooled P: dP += pooled^T d_latent, d_pooled = d_latent P^T, scattered to the EOT rows.
  cpu::gemm(true, false, W, E, B, 1.f, pooled_.f32(), W, d_latent, E, 1.f, proj.grad.f32(), E);
  cpu::gemm(false, true, B, W, E, 1.f, d_latent, E, proj.value.f32(), E, 0.f, d_pooled_.f32(), W);
  float* dtok = scratch_.branch.f32();  // the gradient of ln_final's output
  if (d_tokens)
    std::memcpy(dtok, d_tokens, sizeof(float) * size_t(N) * W);
  else
    std::memset(dtok, 0, sizeof(float) * size_t(N) * W);
  for (int b = 0; b < B; b++) {
    float* row = dtok + (size_t(b) * ctx + eot_[size_t(b)]) * W;
    const float* d = d_pooled_.f32() + size_t(b) * W;
    for (int c = 0; c < W; c++) row[c] += d[c];
  }
  std::memset(dx, 0, sizeof(float) * size_t(N) * W);
  ln_final_.backward(dtok, hidden_.back().f32(), ln_mean_.f32(), ln_rstd_.f32(), dx, N);
  store_.release(head, true);

  for (size_t i = blocks_.size(); i-- > 0;) {
    const int u = unit(int(i) + 1);
    store_.acquire(u, true);
    ClipBlock::Acts& a = acts_[recompute_ ? 0 : i];
    if (recompute_) blocks_[i].forward(hidden_[i].f32(), nullptr, B, ctx, 0, recompute_out_.f32(), a);
    blocks_[i].backward(dx, hidden_[i].f32(), nullptr, B, ctx, 0, dx, nullptr, a, scratch_);
    store_.release(u, true);
  }
  store_.acquire(unit(0), true);
  cpu::embedding_backward(dx, ids_, positions_.i32(), store_.at(tok_).grad.f32(), store_.at(pos_).grad.f32(), N, W);
  store_.release(unit(0), true);
}

}  // namespace loom
