#include "loom/models/coca/eva_vision.h"

#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include "loom/kernels/cpu/activation.h"
#include "loom/kernels/cpu/attention.h"
#include "loom/kernels/cpu/gemm.h"
#include "loom/kernels/cpu/layernorm.h"
#include "loom/kernels/cpu/parallel.h"
#include "loom/models/coca/eva_rope.h"
#include "loom/models/coca/vision_init.h"

namespace loom {

// Indices of one EVA-02 block's parameters, in coca_parameter_specs' order.
struct EvaVisionTower::BlockParams {
  int n1w, n1b, qb, vb, wq, wk, wv, ilnw, ilnb, pw, pb, n2w, n2b, w1, b1, w2, b2, fw, fb, w3, b3;
  int first, last;  // [first, last]: the block's unit
};

// What a block's backward reads: every norm's input statistics, the projections' inputs, the rotated
// q|k|v, the attention output and its log-sum-exp, the SwiGLU input (pre-bias) and output.
struct EvaVisionTower::BlockActs {
  Tensor h1, mean1, rstd1, qkv, attn, lse, an, mean_a, rstd_a, xmid, h2, mean2, rstd2, u, g, gn, mean_f, rstd_f;
};

namespace {

inline float* val(ParamStore& s, int i) { return s.at(i).value.f32(); }
inline float* grd(ParamStore& s, int i) { return s.at(i).grad.f32(); }

// q += q_bias and v += v_bias on the [N, 3W] q|k|v rows (k has no bias in EVA-02).
void add_qv_bias(float* qkv, const float* qb, const float* vb, int N, int W) {
#pragma omp parallel for schedule(static) if (cpu::detail::worth_parallel(long(N) * W * 2))
  for (int r = 0; r < N; r++) {
    float* q = qkv + size_t(r) * 3 * W;
    float* v = q + 2 * W;
#pragma omp simd
    for (int c = 0; c < W; c++) q[c] += qb[c];
#pragma omp simd
    for (int c = 0; c < W; c++) v[c] += vb[c];
  }
}

void add_to(float* dst, const float* src, int n) {
  for (int i = 0; i < n; i++) dst[i] += src[i];
}

}  // namespace

EvaVisionTower::EvaVisionTower(const CocaConfig& cfg, ParamStore& store, int max_batch, bool recompute)
    : cfg_(cfg), store_(store), max_batch_(max_batch), recompute_(recompute) {
  const EvaVisionConfig& v = cfg.vision;
  if (max_batch <= 0 || v.patch_size <= 0 || v.image_size % v.patch_size != 0 || v.heads <= 0 ||
      v.width % v.heads != 0 || v.head_dim() % 4 != 0)
    throw std::invalid_argument("EvaVisionTower: impossible shape (validate_coca_config first)");
  const int64_t W = v.width, F = v.mlp_hidden, E = cfg.embed_dim, P = v.patch_size;
  auto add = [&](const std::string& name, std::vector<int64_t> shape) {
    const bool decay = shape.size() >= 2;
    return store.add("visual." + name, std::move(shape), decay);
  };
  cls_ = add("cls_token", {1, 1, W});
  pos_ = add("pos_embed", {1, v.tokens(), W});
  proj_ = add("proj", {E, E});
  pe_w_ = add("patch_embed.proj.weight", {W, 3, P, P});
  pe_b_ = add("patch_embed.proj.bias", {W});
  for (int l = 0; l < v.layers; l++) {
    const std::string p = "blocks." + std::to_string(l) + ".";
    BlockParams b{};
    b.n1w = b.first = add(p + "norm1.weight", {W});
    b.n1b = add(p + "norm1.bias", {W});
    b.qb = add(p + "attn.q_bias", {W});
    b.vb = add(p + "attn.v_bias", {W});
    b.wq = add(p + "attn.q_proj.weight", {W, W});
    b.wk = add(p + "attn.k_proj.weight", {W, W});
    b.wv = add(p + "attn.v_proj.weight", {W, W});
    b.ilnw = add(p + "attn.inner_attn_ln.weight", {W});
    b.ilnb = add(p + "attn.inner_attn_ln.bias", {W});
    b.pw = add(p + "attn.proj.weight", {W, W});
    b.pb = add(p + "attn.proj.bias", {W});
    b.n2w = add(p + "norm2.weight", {W});
    b.n2b = add(p + "norm2.bias", {W});
    b.w1 = add(p + "mlp.w1.weight", {F, W});
    b.b1 = add(p + "mlp.w1.bias", {F});
    b.w2 = add(p + "mlp.w2.weight", {F, W});
    b.b2 = add(p + "mlp.w2.bias", {F});
    b.fw = add(p + "mlp.ffn_ln.weight", {F});
    b.fb = add(p + "mlp.ffn_ln.bias", {F});
    b.w3 = add(p + "mlp.w3.weight", {W, F});
    b.b3 = b.last = add(p + "mlp.w3.bias", {W});
    blocks_.push_back(b);
  }
  const int T = v.tokens(), Q = cfg.pooler.queries;
  AttentionalPoolerShape ps{Q, int(E), int(W), cfg.pooler.heads, cfg.pooler.ln_eps};
  pool_ = std::make_unique<AttentionalPooler>(ps, store, "visual.attn_pool", max_batch, T);
  AttentionalPoolerShape pcs{1, int(E), int(E), cfg.pooler.heads, cfg.pooler.ln_eps};
  pool_c_ = std::make_unique<AttentionalPooler>(pcs, store, "visual.attn_pool_contrastive", max_batch, Q);
  ln_post_w_ = add("ln_post.weight", {E});
  ln_post_b_ = add("ln_post.bias", {E});

  rope_ = std::make_unique<cpu::RopeTable>(make_eva_rope_table(v.head_dim(), v.grid(), v.rope_pt_grid, v.rope_base));
  const int Np = v.num_patches();
  for (int i = 0; i < Np; i++) patch_pos_.push_back(i);

  const int64_t B = max_batch, N = B * T, K = 3 * P * P;
  patches_ = Tensor({B * Np, K});
  pe_ = Tensor({B * Np, W});
  for (int l = 0; l <= v.layers; l++) xs_.emplace_back(std::vector<int64_t>{N, W});
  acts_.resize(recompute ? 1 : size_t(v.layers));
  for (BlockActs& a : acts_) {
    a.h1 = Tensor({N, W}), a.mean1 = Tensor({N}), a.rstd1 = Tensor({N});
    a.qkv = Tensor({N, 3 * W}), a.attn = Tensor({N, W}), a.lse = Tensor({B * v.heads * T});
    a.an = Tensor({N, W}), a.mean_a = Tensor({N}), a.rstd_a = Tensor({N});
    a.xmid = Tensor({N, W}), a.h2 = Tensor({N, W}), a.mean2 = Tensor({N}), a.rstd2 = Tensor({N});
    a.u = Tensor({N, 2 * F}), a.g = Tensor({N, F}), a.gn = Tensor({N, F}), a.mean_f = Tensor({N}), a.rstd_f = Tensor({N});
  }
  if (recompute) recompute_out_ = Tensor({N, W});
  tokens_ = Tensor({B * Q, E});
  mean_post_ = Tensor({B * Q});
  rstd_post_ = Tensor({B * Q});
  latent_ = Tensor({B, E});
  d_ = Tensor({N, W});
  dgn_ = Tensor({N, F});
  dg_ = Tensor({N, F});
  du_ = Tensor({N, 2 * F});
  dh_ = Tensor({N, W});
  dan_ = Tensor({N, W});
  dattn_ = Tensor({N, W});
  dqkv_ = Tensor({N, 3 * W});
  dcol_ = Tensor({3 * W});
  bias_cat_ = Tensor({2 * F});
  dbias_cat_ = Tensor({2 * F});
  dpe_ = Tensor({B * Np, W});
  dpooled_ = Tensor({B, E});
  dtok_ = Tensor({B * Q, E});
  dtokpre_ = Tensor({B * Q, E});
}

EvaVisionTower::~EvaVisionTower() = default;

std::vector<std::vector<int>> EvaVisionTower::units() const {
  std::vector<std::vector<int>> u;
  u.push_back({cls_, pos_, pe_w_, pe_b_});
  for (const BlockParams& b : blocks_) {
    u.emplace_back();
    for (int i = b.first; i <= b.last; i++) u.back().push_back(i);
  }
  u.push_back({proj_});
  for (int i : pool_->param_indices()) u.back().push_back(i);
  for (int i : pool_c_->param_indices()) u.back().push_back(i);
  u.back().push_back(ln_post_w_);
  u.back().push_back(ln_post_b_);
  return u;
}

void EvaVisionTower::init_params(uint64_t seed) {
  const EvaVisionConfig& v = cfg_.vision;
  using namespace coca_init;
  const int L = v.layers;
  store_.acquire(first_unit_, false);
  trunc_normal(store_.at(pos_), seed, 0.02f);
  trunc_normal(store_.at(cls_), seed, 0.02f);
  // PatchEmbed.proj is a Conv2d, which EVA's _init_weights leaves at PyTorch's default:
  // kaiming_uniform_(a = sqrt 5) = uniform(+-1/sqrt(fan_in)), and the bias uniform(+-1/sqrt(fan_in)).
  const float conv_bound = 1.0f / std::sqrt(float(3 * v.patch_size * v.patch_size));
  uniform(store_.at(pe_w_), seed, conv_bound);
  uniform(store_.at(pe_b_), seed, conv_bound);
  store_.commit(first_unit_);
  for (int l = 0; l < L; l++) {
    const BlockParams& b = blocks_[size_t(l)];
    store_.acquire(first_unit_ + 1 + l, false);
    for (int ln : {b.n1w, b.ilnw, b.n2w, b.fw}) constant(store_.at(ln), 1.0f);
    for (int z : {b.n1b, b.ilnb, b.n2b, b.fb, b.qb, b.vb, b.pb, b.b1, b.b2, b.b3}) constant(store_.at(z), 0.0f);
    for (int w : {b.wq, b.wk, b.wv, b.w1, b.w2}) trunc_normal(store_.at(w), seed, 0.02f);
    // fix_init_weight: attn.proj and mlp.w3 divided by sqrt(2 * layer_id), layer_id = l + 1. timm's bounds
    // are absolute (+-2), so truncating before the division is what EVA does.
    const float div = float(std::sqrt(2.0 * double(l + 1)));
    for (int w : {b.pw, b.w3}) {
      Param& p = store_.at(w);
      trunc_normal(p, seed, 0.02f);
      float* x = p.value.f32();
      for (int64_t i = 0; i < p.numel(); i++) x[i] = x[i] / div;
    }
    store_.commit(first_unit_ + 1 + l);
  }
  store_.acquire(first_unit_ + L + 1, false);
  pool_->init_params(seed);
  pool_c_->init_params(seed);
  // open_clip's VisionTransformer: proj = width^-0.5 * randn(width, output_dim), width = the pooled width E.
  normal(store_.at(proj_), seed, 1.0f / std::sqrt(float(cfg_.embed_dim)));
  constant(store_.at(ln_post_w_), 1.0f);
  constant(store_.at(ln_post_b_), 0.0f);
  store_.commit(first_unit_ + L + 1);
}

void EvaVisionTower::rope_rows(float* qk, int B, bool inverse) const {
  // q and k of every head sit side by side in the q|k|v rows (q heads at h*D, k heads at W + h*D): 2H
  // vectors of D per row at stride D. Rows 1..N of each sample are the patches; row 0 (CLS) is skipped.
  const EvaVisionConfig& v = cfg_.vision;
  const int T = v.tokens(), Np = v.num_patches(), W = v.width, D = v.head_dim();
  for (int b = 0; b < B; b++) {
    float* x = qk + (size_t(b) * T + 1) * 3 * W;
    if (inverse)
      cpu::rope_backward(x, Np, 3L * W, 2 * v.heads, D, D, patch_pos_.data(), *rope_, true);
    else
      cpu::rope_forward(x, Np, 3L * W, 2 * v.heads, D, D, patch_pos_.data(), *rope_, true);
  }
}

void EvaVisionTower::embed_forward(const float* images, int B) {
  const EvaVisionConfig& v = cfg_.vision;
  const int S = v.image_size, P = v.patch_size, G = v.grid(), Np = v.num_patches(), W = v.width, T = v.tokens();
  const int K = 3 * P * P;
  // im2col of the non-overlapping patches: row b*N + (py*G + px), column c*P*P + i*P + j (the order of
  // the Conv2d weight [W, 3, P, P] flattened), so the convolution is one GEMM with the weight as [W, K].
  float* pt = patches_.f32();
#pragma omp parallel for schedule(static) if (cpu::detail::worth_parallel(long(B) * Np * K))
  for (int r = 0; r < B * Np; r++) {
    const int b = r / Np, py = (r % Np) / G, px = r % G;
    float* row = pt + size_t(r) * K;
    for (int c = 0; c < 3; c++)
      for (int i = 0; i < P; i++)
        std::memcpy(row + (c * P + i) * P, images + ((size_t(b) * 3 + c) * S + size_t(py) * P + i) * S + size_t(px) * P,
                    sizeof(float) * size_t(P));
  }
  float* pe = pe_.f32();
  cpu::gemm(false, true, B * Np, W, K, 1.f, pt, K, val(store_, pe_w_), K, 0.f, pe, W);
  cpu::add_bias(pe, val(store_, pe_b_), B * Np, W);
  const float* cls = val(store_, cls_);
  const float* pos = val(store_, pos_);
  float* x = xs_[0].f32();
#pragma omp parallel for schedule(static) if (cpu::detail::worth_parallel(long(B) * T * W))
  for (int r = 0; r < B * T; r++) {
    const int b = r / T, t = r % T;
    const float* src = t == 0 ? cls : pe + (size_t(b) * Np + t - 1) * W;
    const float* p = pos + size_t(t) * W;
    float* dst = x + size_t(r) * W;
#pragma omp simd
    for (int c = 0; c < W; c++) dst[c] = src[c] + p[c];
  }
}

void EvaVisionTower::embed_backward(const float* d, int B) {
  const EvaVisionConfig& v = cfg_.vision;
  const int P = v.patch_size, Np = v.num_patches(), W = v.width, T = v.tokens(), K = 3 * P * P;
  float* gpos = grd(store_, pos_);
  float* gcls = grd(store_, cls_);
  // pos_embed and cls_token are broadcast over the batch: their gradients sum over it (sample order).
#pragma omp parallel for schedule(static) if (cpu::detail::worth_parallel(long(B) * T * W))
  for (int t = 0; t < T; t++) {
    float* gp = gpos + size_t(t) * W;
    for (int b = 0; b < B; b++) {
      const float* src = d + (size_t(b) * T + t) * W;
#pragma omp simd
      for (int c = 0; c < W; c++) gp[c] += src[c];
    }
  }
  for (int b = 0; b < B; b++) add_to(gcls, d + size_t(b) * T * W, W);
  float* dpe = dpe_.f32();
  for (int b = 0; b < B; b++)
    std::memcpy(dpe + size_t(b) * Np * W, d + (size_t(b) * T + 1) * W, sizeof(float) * size_t(Np) * W);
  cpu::gemm(true, false, W, K, B * Np, 1.f, dpe, W, patches_.f32(), K, 1.f, grd(store_, pe_w_), K);
  cpu::bias_backward(dpe, grd(store_, pe_b_), B * Np, W);
}

void EvaVisionTower::block_forward(int l, const float* x, float* out, BlockActs& a, int B) {
  const EvaVisionConfig& v = cfg_.vision;
  const BlockParams& p = blocks_[size_t(l)];
  ParamStore& s = store_;
  const int T = v.tokens(), N = B * T, W = v.width, F = v.mlp_hidden;
  const float eps = v.ln_eps;
  cpu::layernorm_forward(x, val(s, p.n1w), val(s, p.n1b), a.h1.f32(), a.mean1.f32(), a.rstd1.f32(), N, W, eps);
  float* qkv = a.qkv.f32();
  cpu::gemm(false, true, N, W, W, 1.f, a.h1.f32(), W, val(s, p.wq), W, 0.f, qkv, 3 * W);
  cpu::gemm(false, true, N, W, W, 1.f, a.h1.f32(), W, val(s, p.wk), W, 0.f, qkv + W, 3 * W);
  cpu::gemm(false, true, N, W, W, 1.f, a.h1.f32(), W, val(s, p.wv), W, 0.f, qkv + 2 * W, 3 * W);
  add_qv_bias(qkv, val(s, p.qb), val(s, p.vb), N, W);
  rope_rows(qkv, B, false);
  cpu::AttentionShape sh{B, T, v.heads, v.head_dim()};
  sh.causal = false;
  cpu::attention_forward_qkv(qkv, 3 * W, qkv + W, qkv + 2 * W, 3 * W, a.attn.f32(), a.lse.f32(), sh, T, 0.f, 0);
  cpu::layernorm_forward(a.attn.f32(), val(s, p.ilnw), val(s, p.ilnb), a.an.f32(), a.mean_a.f32(), a.rstd_a.f32(), N,
                         W, eps);
  float* xmid = a.xmid.f32();
  std::memcpy(xmid, x, sizeof(float) * size_t(N) * W);
  cpu::gemm(false, true, N, W, W, 1.f, a.an.f32(), W, val(s, p.pw), W, 1.f, xmid, W);
  cpu::add_bias(xmid, val(s, p.pb), N, W);
  cpu::layernorm_forward(xmid, val(s, p.n2w), val(s, p.n2b), a.h2.f32(), a.mean2.f32(), a.rstd2.f32(), N, W, eps);
  // w1 | w2 side by side: the SwiGLU kernel's [gate | up] layout, their biases concatenated.
  float* u = a.u.f32();
  cpu::gemm(false, true, N, F, W, 1.f, a.h2.f32(), W, val(s, p.w1), W, 0.f, u, 2 * F);
  cpu::gemm(false, true, N, F, W, 1.f, a.h2.f32(), W, val(s, p.w2), W, 0.f, u + F, 2 * F);
  float* bc = bias_cat_.f32();
  std::memcpy(bc, val(s, p.b1), sizeof(float) * size_t(F));
  std::memcpy(bc + F, val(s, p.b2), sizeof(float) * size_t(F));
  cpu::bias_swiglu_forward(u, bc, a.g.f32(), N, F);
  cpu::layernorm_forward(a.g.f32(), val(s, p.fw), val(s, p.fb), a.gn.f32(), a.mean_f.f32(), a.rstd_f.f32(), N, F, eps);
  std::memcpy(out, xmid, sizeof(float) * size_t(N) * W);
  cpu::gemm(false, true, N, W, F, 1.f, a.gn.f32(), F, val(s, p.w3), F, 1.f, out, W);
  cpu::add_bias(out, val(s, p.b3), N, W);
}

void EvaVisionTower::block_backward(int l, const float* x, BlockActs& a, float* d, int B) {
  const EvaVisionConfig& v = cfg_.vision;
  const BlockParams& p = blocks_[size_t(l)];
  ParamStore& s = store_;
  const int T = v.tokens(), N = B * T, W = v.width, F = v.mlp_hidden;
  // MLP branch; d is the gradient of the block's output (and of x_mid through the residual).
  float* dgn = dgn_.f32();
  cpu::gemm(false, false, N, F, W, 1.f, d, W, val(s, p.w3), F, 0.f, dgn, F);
  cpu::gemm(true, false, W, F, N, 1.f, d, W, a.gn.f32(), F, 1.f, grd(s, p.w3), F);
  cpu::bias_backward(d, grd(s, p.b3), N, W);
  float* dg = dg_.f32();
  std::memset(dg, 0, sizeof(float) * size_t(N) * F);
  cpu::layernorm_backward(dgn, a.g.f32(), val(s, p.fw), a.mean_f.f32(), a.rstd_f.f32(), dg, grd(s, p.fw), grd(s, p.fb),
                          N, F);
  float* bc = bias_cat_.f32();
  std::memcpy(bc, val(s, p.b1), sizeof(float) * size_t(F));
  std::memcpy(bc + F, val(s, p.b2), sizeof(float) * size_t(F));
  float* dbc = dbias_cat_.f32();
  std::memset(dbc, 0, sizeof(float) * size_t(2 * F));
  float* du = du_.f32();
  cpu::bias_swiglu_backward(dg, a.u.f32(), bc, du, dbc, N, F);
  add_to(grd(s, p.b1), dbc, F);
  add_to(grd(s, p.b2), dbc + F, F);
  float* dh = dh_.f32();
  cpu::gemm(false, false, N, W, F, 1.f, du, 2 * F, val(s, p.w1), W, 0.f, dh, W);
  cpu::gemm(false, false, N, W, F, 1.f, du + F, 2 * F, val(s, p.w2), W, 1.f, dh, W);
  cpu::gemm(true, false, F, W, N, 1.f, du, 2 * F, a.h2.f32(), W, 1.f, grd(s, p.w1), W);
  cpu::gemm(true, false, F, W, N, 1.f, du + F, 2 * F, a.h2.f32(), W, 1.f, grd(s, p.w2), W);
  cpu::layernorm_backward(dh, a.xmid.f32(), val(s, p.n2w), a.mean2.f32(), a.rstd2.f32(), d, grd(s, p.n2w),
                          grd(s, p.n2b), N, W);
  // Attention branch; d is now the gradient of x_mid (and of x through the residual).
  float* dan = dan_.f32();
  cpu::gemm(false, false, N, W, W, 1.f, d, W, val(s, p.pw), W, 0.f, dan, W);
  cpu::gemm(true, false, W, W, N, 1.f, d, W, a.an.f32(), W, 1.f, grd(s, p.pw), W);
  cpu::bias_backward(d, grd(s, p.pb), N, W);
  float* dattn = dattn_.f32();
  std::memset(dattn, 0, sizeof(float) * size_t(N) * W);
  cpu::layernorm_backward(dan, a.attn.f32(), val(s, p.ilnw), a.mean_a.f32(), a.rstd_a.f32(), dattn, grd(s, p.ilnw),
                          grd(s, p.ilnb), N, W);
  const float* qkv = a.qkv.f32();
  float* dqkv = dqkv_.f32();
  cpu::AttentionShape sh{B, T, v.heads, v.head_dim()};
  sh.causal = false;
  cpu::attention_backward_qkv(dattn, qkv, 3 * W, qkv + W, qkv + 2 * W, 3 * W, a.attn.f32(), a.lse.f32(), dqkv,
                              dqkv + W, dqkv + 2 * W, sh, T, 0.f, 0);
  rope_rows(dqkv, B, true);  // the rotation's transpose: gradients w.r.t. the unrotated q and k
  float* dcol = dcol_.f32();
  std::memset(dcol, 0, sizeof(float) * size_t(3 * W));
  cpu::bias_backward(dqkv, dcol, N, 3 * W);
  add_to(grd(s, p.qb), dcol, W);
  add_to(grd(s, p.vb), dcol + 2 * W, W);
  cpu::gemm(false, false, N, W, W, 1.f, dqkv, 3 * W, val(s, p.wq), W, 0.f, dh, W);
  cpu::gemm(false, false, N, W, W, 1.f, dqkv + W, 3 * W, val(s, p.wk), W, 1.f, dh, W);
  cpu::gemm(false, false, N, W, W, 1.f, dqkv + 2 * W, 3 * W, val(s, p.wv), W, 1.f, dh, W);
  cpu::gemm(true, false, W, W, N, 1.f, dqkv, 3 * W, a.h1.f32(), W, 1.f, grd(s, p.wq), W);
  cpu::gemm(true, false, W, W, N, 1.f, dqkv + W, 3 * W, a.h1.f32(), W, 1.f, grd(s, p.wk), W);
  cpu::gemm(true, false, W, W, N, 1.f, dqkv + 2 * W, 3 * W, a.h1.f32(), W, 1.f, grd(s, p.wv), W);
  cpu::layernorm_backward(dh, x, val(s, p.n1w), a.mean1.f32(), a.rstd1.f32(), d, grd(s, p.n1w), grd(s, p.n1b), N, W);
}

void EvaVisionTower::forward(const float* images, int B) {
  if (B <= 0 || B > max_batch_) throw std::invalid_argument("EvaVisionTower: batch beyond max_batch");
  B_ = B;
  const EvaVisionConfig& v = cfg_.vision;
  const int L = v.layers, T = v.tokens(), Q = cfg_.pooler.queries, E = cfg_.embed_dim;
  store_.acquire(first_unit_, false);
  embed_forward(images, B);
  store_.release(first_unit_, false);
  for (int l = 0; l < L; l++) {
    store_.acquire(first_unit_ + 1 + l, false);
    block_forward(l, xs_[size_t(l)].f32(), xs_[size_t(l) + 1].f32(), acts_[recompute_ ? 0 : size_t(l)], B);
    store_.release(first_unit_ + 1 + l, false);
  }
  // The head: tokens = ln_post(attn_pool(x)); pooled = attn_pool_contrastive(tokens)[:, 0];
  // latent = pooled @ proj (see the header for why ln_post sits here).
  const int head = first_unit_ + L + 1;
  store_.acquire(head, false);
  pool_->forward(xs_[size_t(L)].f32(), B, T);
  cpu::layernorm_forward(pool_->out(), val(store_, ln_post_w_), val(store_, ln_post_b_), tokens_.f32(),
                         mean_post_.f32(), rstd_post_.f32(), B * Q, E, cfg_.ln_post_eps);
  pool_c_->forward(tokens_.f32(), B, Q);
  cpu::gemm(false, false, B, E, E, 1.f, pool_c_->out(), E, val(store_, proj_), E, 0.f, latent_.f32(), E);
  store_.release(head, false);
}

void EvaVisionTower::backward(const float* d_latent, const float* d_tokens) {
  if (B_ == 0) throw std::logic_error("EvaVisionTower::backward before forward");
  const EvaVisionConfig& v = cfg_.vision;
  const int B = B_, L = v.layers, T = v.tokens(), Q = cfg_.pooler.queries, E = cfg_.embed_dim, W = v.width;
  const int head = first_unit_ + L + 1;
  store_.acquire(head, true);
  float* dpooled = dpooled_.f32();
  if (d_latent) {
    cpu::gemm(true, false, E, E, B, 1.f, pool_c_->out(), E, d_latent, E, 1.f, grd(store_, proj_), E);
    cpu::gemm(false, true, B, E, E, 1.f, d_latent, E, val(store_, proj_), E, 0.f, dpooled, E);
  } else {
    std::memset(dpooled, 0, sizeof(float) * size_t(B) * E);
  }
  float* dtok = dtok_.f32();
  if (d_tokens)
    std::memcpy(dtok, d_tokens, sizeof(float) * size_t(B) * Q * E);
  else
    std::memset(dtok, 0, sizeof(float) * size_t(B) * Q * E);
  pool_c_->backward(dpooled, dtok);
  float* dpre = dtokpre_.f32();
  std::memset(dpre, 0, sizeof(float) * size_t(B) * Q * E);
  cpu::layernorm_backward(dtok, pool_->out(), val(store_, ln_post_w_), mean_post_.f32(), rstd_post_.f32(), dpre,
                          grd(store_, ln_post_w_), grd(store_, ln_post_b_), B * Q, E);
  float* d = d_.f32();
  std::memset(d, 0, sizeof(float) * size_t(B) * T * W);
  pool_->backward(dpre, d);
  store_.release(head, true);
  for (int l = L - 1; l >= 0; l--) {
    const int u = first_unit_ + 1 + l;
    store_.acquire(u, true);
    BlockActs& a = acts_[recompute_ ? 0 : size_t(l)];
    if (recompute_) block_forward(l, xs_[size_t(l)].f32(), recompute_out_.f32(), a, B);
    block_backward(l, xs_[size_t(l)].f32(), a, d, B);
    store_.release(u, true);
  }
  store_.acquire(first_unit_, true);
  embed_backward(d, B);
  store_.release(first_unit_, true);
}

}  // namespace loom
