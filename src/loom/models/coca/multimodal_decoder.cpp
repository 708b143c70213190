#include "loom/models/coca/multimodal_decoder.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "loom/kernels/cpu/cross_entropy.h"
#include "loom/layers/init.h"

namespace loom {

namespace {
// At most 512 rows of logits at once ([512, 49408] fp32: 97 MiB, as DecoderModel), in equal chunks: every
// chunk rereads and rewrites the whole projection gradient, so a short last chunk is not worth its pass.
constexpr int kLogitChunkRows = cpu::kLmHeadChunkRows;
}

MultimodalDecoder::MultimodalDecoder(const CocaConfig& cfg, ParamStore& store, int max_batch, bool recompute)
    : cfg_(cfg.decoder),
      ctx_(cfg.text.context_length),
      queries_(cfg.pooler.queries),
      pad_id_(cfg.text.pad_id),
      store_(store),
      max_batch_(max_batch),
      recompute_(recompute) {
  const CocaDecoderConfig& d = cfg_;
  if (ctx_ < 2) throw std::invalid_argument("MultimodalDecoder: the context must hold at least 2 tokens");
  const int64_t W = d.width, N = int64_t(max_batch) * T(), Nk = int64_t(max_batch) * queries_;
  // named_parameters() order: text_projection (the module's own), resblocks, cross_attn, ln_final.
  proj_ = store.add("text_decoder.text_projection", {W, d.vocab_size}, true);
  for (int i = 0; i < d.layers; i++)
    self_.emplace_back(store, "text_decoder.resblocks." + std::to_string(i), d.width, d.heads, d.mlp_hidden, d.ln_eps,
                       true, false);
  for (int i = 0; i < d.layers; i++)
    cross_.emplace_back(store, "text_decoder.cross_attn." + std::to_string(i), d.width, d.heads, d.mlp_hidden,
                        d.ln_eps, false, true);
  TransformerConfig tc;
  tc.normalization = NormKind::LayerNorm;
  tc.layernorm_epsilon = d.ln_eps;
  tc.hidden_size = d.width;
  ln_first_ = int(store.all().size());
  ln_final_ = Norm(tc, store, "text_decoder.ln_final", TensorParallel{});

  for (int i = 0; i <= 2 * d.layers; i++) hidden_.push_back(Tensor({N, W}));
  const int n_acts = recompute ? 1 : d.layers;
  for (int i = 0; i < n_acts; i++) {
    self_acts_.push_back(self_[0].make_acts(N, Nk));
    cross_acts_.push_back(cross_[0].make_acts(N, Nk));
  }
  self_scratch_ = self_[0].make_scratch(N, Nk);
  cross_scratch_ = cross_[0].make_scratch(N, Nk);
  cross_scratch_.branch = self_scratch_.branch;  // shared: both only live within one backward
  cross_scratch_.dx1 = self_scratch_.dx1;
  cross_scratch_.dffn = self_scratch_.dffn;
  cross_scratch_.attn.dcore = self_scratch_.attn.dcore;
  cross_scratch_.attn.dq = self_scratch_.attn.dq;  // [N, 3W] holds the cross block's [N, W]
  if (recompute) recompute_out_ = Tensor({N, W});
  normed_ = Tensor({N, W});
  d_normed_ = Tensor({N, W});
  ln_mean_ = Tensor({N});
  ln_rstd_ = Tensor({N});
  labels_ = Tensor({N}, DType::I32);
  token_loss_ = Tensor({N});
  row_scale_ = Tensor({N});
  const int64_t chunks = (N + kLogitChunkRows - 1) / kLogitChunkRows;
  chunk_rows_ = int((N + chunks - 1) / chunks);
  logits_ = Tensor({int64_t(chunk_rows_), int64_t(d.vocab_size)});
  d_hidden_ = Tensor({N, W});
  d_text_ = Tensor({int64_t(max_batch) * ctx_, W});
  d_image_ = Tensor({Nk, W});
}

std::vector<std::vector<int>> MultimodalDecoder::units() const {
  std::vector<std::vector<int>> u;
  for (const ClipBlock& b : self_) u.push_back(b.params());
  for (const ClipBlock& b : cross_) u.push_back(b.params());
  u.push_back({ln_first_, ln_first_ + 1, proj_});
  return u;
}

void MultimodalDecoder::init_params(uint64_t seed) {
  // open_clip's MultimodalTransformer.init_parameters (the text tower's rule with the decoder's width and
  // layers).
  const float W = float(cfg_.width);
  const float attn_std = 1.f / std::sqrt(W);
  const float proj_std = attn_std / std::sqrt(2.f * float(cfg_.layers));
  const float fc_std = 1.f / std::sqrt(2.f * W);
  const int L = cfg_.layers;
  for (int i = 0; i < 2 * L; i++) {
    store_.acquire(unit(i), false);
    (i < L ? self_[size_t(i)] : cross_[size_t(i - L)]).init_params(seed, attn_std, proj_std, fc_std);
    store_.commit(unit(i));
  }
  store_.acquire(unit(2 * L), false);
  ln_final_.init_params();
  init_normal(store_.at(proj_), seed, attn_std);
  store_.commit(unit(2 * L));
}

void MultimodalDecoder::head(int N, float scale) {
  const int W = cfg_.width, V = cfg_.vocab_size;
  cpu::LmHeadScratch scratch{logits_.f32(), chunk_rows_};
  scratch.w_transposed = true;
  const Param& proj = store_.at(proj_);
  if (scale == 0.f) {
    cpu::lm_head_cross_entropy(normed_.f32(), proj.value.f32(), labels_.i32(), nullptr, token_loss_.f32(), nullptr,
                               nullptr, N, V, W, scratch);
    return;
  }
  const float per_target = count_ > 0 ? float(double(scale) / double(count_)) : 0.f;
  std::fill_n(row_scale_.f32(), N, per_target);  // pad rows (label -1) get no gradient from the kernel
  cpu::lm_head_cross_entropy(normed_.f32(), proj.value.f32(), labels_.i32(), row_scale_.f32(), token_loss_.f32(),
                             d_normed_.f32(), proj.grad.f32(), N, V, W, scratch);
}

double MultimodalDecoder::forward(const float* text_tokens, const int32_t* ids, const float* image_tokens, int B,
                                  int64_t* targets, float grad_scale) {
  const int W = cfg_.width, t_len = T(), N = B * t_len, L = cfg_.layers;
  if (B < 1 || B > max_batch_)
    throw std::logic_error("MultimodalDecoder: batch " + std::to_string(B) + " outside [1, " +
                           std::to_string(max_batch_) + "]");
  B_ = B;
  image_ = image_tokens;
  // Teacher forcing: row (b, t) reads the text tower's token t and predicts ids[b, t + 1].
  float* x0 = hidden_[0].f32();
  int32_t* labels = labels_.i32();
  count_ = 0;
  for (int b = 0; b < B; b++) {
    std::memcpy(x0 + size_t(b) * t_len * W, text_tokens + size_t(b) * ctx_ * W, sizeof(float) * size_t(t_len) * W);
    for (int t = 0; t < t_len; t++) {
      const int32_t id = ids[b * ctx_ + t + 1];
      const bool pad = id == pad_id_;
      labels[b * t_len + t] = pad ? -1 : id;
      count_ += pad ? 0 : 1;
    }
  }
  for (int i = 0; i < L; i++) {
    const size_t a = recompute_ ? 0 : size_t(i);
    store_.acquire(unit(i), false);
    self_[size_t(i)].forward(hidden_[size_t(2 * i)].f32(), nullptr, B, t_len, 0, hidden_[size_t(2 * i + 1)].f32(),
                             self_acts_[a]);
    store_.release(unit(i), false);
    store_.acquire(unit(L + i), false);
    cross_[size_t(i)].forward(hidden_[size_t(2 * i + 1)].f32(), image_tokens, B, t_len, queries_,
                              hidden_[size_t(2 * i + 2)].f32(), cross_acts_[a]);
    store_.release(unit(L + i), false);
  }
  // With a known scale only the projection's gradient is written here (ln_final's waits for the backward).
  fused_scale_ = grad_scale;
  const bool fused = grad_scale != 0.f;
  store_.acquire(unit(2 * L), fused);
  ln_final_.forward(hidden_.back().f32(), normed_.f32(), ln_mean_.f32(), ln_rstd_.f32(), N);
  head(N, grad_scale);
  store_.release(unit(2 * L), fused);
  double sum = 0;
  const float* tl = token_loss_.f32();
  for (int r = 0; r < N; r++) sum += tl[r];  // pad rows are 0
  if (targets) *targets = count_;
  return count_ > 0 ? sum / double(count_) : 0.0;
}

void MultimodalDecoder::backward(float scale) {
  const int B = B_, W = cfg_.width, t_len = T(), N = B * t_len, L = cfg_.layers;
  const int Nk = B * queries_;
  float* dx = d_hidden_.f32();
  const bool fused = fused_scale_ != 0.f;
  if (fused && scale != fused_scale_)
    throw std::logic_error("MultimodalDecoder: backward's scale differs from the forward's grad_scale");
  // The projection's gradient was formed in a fused forward: left out of this acquire/release.
  const int skip = fused ? proj_ : -1;
  store_.acquire(unit(2 * L), true, skip);
  if (!fused) head(N, scale);
  std::memset(dx, 0, sizeof(float) * size_t(N) * W);
  ln_final_.backward(d_normed_.f32(), hidden_.back().f32(), ln_mean_.f32(), ln_rstd_.f32(), dx, N);
  store_.release(unit(2 * L), true, skip);

  std::memset(d_image_.f32(), 0, sizeof(float) * size_t(Nk) * W);
  for (int i = L; i-- > 0;) {
    const size_t a = recompute_ ? 0 : size_t(i);
    store_.acquire(unit(L + i), true);
    if (recompute_)  // rebuild the block's activations from its kept input
      cross_[size_t(i)].forward(hidden_[size_t(2 * i + 1)].f32(), image_, B, t_len, queries_, recompute_out_.f32(),
                                cross_acts_[a]);
    cross_[size_t(i)].backward(dx, hidden_[size_t(2 * i + 1)].f32(), image_, B, t_len, queries_, dx, d_image_.f32(),
                               cross_acts_[a], cross_scratch_);
    store_.release(unit(L + i), true);
    store_.acquire(unit(i), true);
    if (recompute_)
      self_[size_t(i)].forward(hidden_[size_t(2 * i)].f32(), nullptr, B, t_len, 0, recompute_out_.f32(), self_acts_[a]);
    self_[size_t(i)].backward(dx, hidden_[size_t(2 * i)].f32(), nullptr, B, t_len, 0, dx, nullptr, self_acts_[a],
                              self_scratch_);
    store_.release(unit(i), true);
  }
  float* dt = d_text_.f32();
  for (int b = 0; b < B; b++) {
    std::memcpy(dt + size_t(b) * ctx_ * W, dx + size_t(b) * t_len * W, sizeof(float) * size_t(t_len) * W);
    std::memset(dt + (size_t(b) * ctx_ + t_len) * W, 0, sizeof(float) * size_t(W));
  }
}

}  // namespace loom
