// EvaVisionTower (CoCa's EVA-02 vision side): it registers exactly coca_parameter_specs' visual entries in
// their order, its units cover them once each, and full recompute and the thread count change no bit.
// The numerics against PyTorch are in tests/parity/test_coca_vision.py.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <set>
#include <vector>

#include "loom/core/rng.h"
#include "loom/kernels/cpu/precision.h"
#include "loom/models/coca/coca_config.h"
#include "loom/models/coca/eva_vision.h"

namespace loom {
namespace {

CocaConfig small_config() {
  CocaConfig c;
  c.vision.image_size = 32;
  c.vision.patch_size = 8;
  c.vision.width = 64;
  c.vision.layers = 2;
  c.vision.heads = 4;
  c.vision.mlp_hidden = 96;
  c.pooler.queries = 4;
  c.pooler.heads = 4;
  c.embed_dim = 32;
  return c;
}

void expect_specs(const CocaConfig& cfg) {
  ParamStore store;
  EvaVisionTower tower(cfg, store, 1, /*recompute=*/true);
  std::vector<CocaParamSpec> want;
  for (const auto& s : coca_parameter_specs(cfg))
    if (s.tower == "visual") want.push_back(s);
  ASSERT_EQ(store.all().size(), want.size());
  for (size_t i = 0; i < want.size(); i++) {
    EXPECT_EQ(store.at(int(i)).name, want[i].name) << i;
    EXPECT_EQ(store.at(int(i)).shape, want[i].shape) << want[i].name;
    EXPECT_EQ(store.at(int(i)).weight_decay, want[i].shape.size() >= 2) << want[i].name;
  }
  // Units: embeddings, one per block, head; every parameter in exactly one.
  const auto units = tower.units();
  ASSERT_EQ(int(units.size()), cfg.vision.layers + 2);
  ASSERT_EQ(tower.num_units(), int(units.size()));
  std::multiset<int> seen;
  for (const auto& u : units) seen.insert(u.begin(), u.end());
  ASSERT_EQ(seen.size(), want.size());
  for (int i = 0; i < int(want.size()); i++) EXPECT_EQ(seen.count(i), 1u) << want[size_t(i)].name;
  EXPECT_EQ(store.at(units[1].front()).name, "visual.blocks.0.norm1.weight");
  EXPECT_EQ(store.at(units.back().front()).name, "visual.proj");
}

TEST(CocaVision, ParametersEqualSpecsB16) { expect_specs(coca_b16_config()); }
TEST(CocaVision, ParametersEqualSpecsSmall) { expect_specs(small_config()); }

TEST(CocaVision, RopeTableB16Shape) {
  ParamStore store;
  EvaVisionTower tower(coca_b16_config(), store, 1, true);
  // EVA: "Shape of rope freq: torch.Size([196, 64])"; one angle per channel pair here.
  EXPECT_EQ(tower.rope().max_positions, 196);
  EXPECT_EQ(tower.rope().rotary_dim, 64);
  EXPECT_EQ(tower.rope().cos.size(), 196u * 32u);
}

struct TowerRun {
  std::vector<float> latent, tokens, grads;
};

TowerRun run_small(bool recompute, int threads) {
  const CocaConfig cfg = small_config();
  const int B = 3, S = cfg.vision.image_size;
  ParamStore store;
  EvaVisionTower tower(cfg, store, 4, recompute);
  store.finalize(16, tower.units());
  tower.init_params(7);
  // Nonzero biases everywhere, so every gradient path is exercised.
  for (Param& p : store.all())
    if (p.shape.size() == 1) fill_normal(p.value.f32(), 0, p.numel(), stream_key(3, uint64_t(p.offset)), 0.1f);
  std::vector<float> img(size_t(B) * 3 * S * S), dl(size_t(B) * cfg.embed_dim),
      dt(size_t(B) * cfg.pooler.queries * cfg.embed_dim);
  fill_normal(img.data(), 0, int64_t(img.size()), 11, 1.0f);
  fill_normal(dl.data(), 0, int64_t(dl.size()), 12, 1.0f);
  fill_normal(dt.data(), 0, int64_t(dt.size()), 13, 1.0f);
  const int saved = omp_get_max_threads();
  omp_set_num_threads(threads);
  store.zero_grads();
  tower.forward(img.data(), B);
  TowerRun r;
  r.latent.assign(tower.latent(), tower.latent() + dl.size());
  r.tokens.assign(tower.tokens(), tower.tokens() + dt.size());
  tower.backward(dl.data(), dt.data());
  omp_set_num_threads(saved);
  r.grads.assign(store.grads(), store.grads() + store.numel());
  return r;
}

bool bitwise_equal(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

TEST(CocaVision, RecomputeIsBitwiseIdentical) {
  const TowerRun a = run_small(false, 2), b = run_small(true, 2);
  EXPECT_TRUE(bitwise_equal(a.latent, b.latent));
  EXPECT_TRUE(bitwise_equal(a.tokens, b.tokens));
  EXPECT_TRUE(bitwise_equal(a.grads, b.grads));
  double norm = 0;
  for (float g : a.grads) norm += double(g) * g;
  EXPECT_GT(norm, 0.0);
}

TEST(CocaVision, ThreadCountIndependent) {
  const TowerRun a = run_small(false, 1), b = run_small(false, 2);
  EXPECT_TRUE(bitwise_equal(a.latent, b.latent));
  EXPECT_TRUE(bitwise_equal(a.tokens, b.tokens));
  EXPECT_TRUE(bitwise_equal(a.grads, b.grads));
}

TEST(CocaVision, GradientsAccumulate) {
  // Two backward passes of the same forward give twice the gradient of one (the caller zeroes per step).
  const CocaConfig cfg = small_config();
  const int B = 2, S = cfg.vision.image_size;
  ParamStore store;
  EvaVisionTower tower(cfg, store, 2);
  store.finalize(16, tower.units());
  tower.init_params(5);
  std::vector<float> img(size_t(B) * 3 * S * S), dl(size_t(B) * cfg.embed_dim);
  fill_normal(img.data(), 0, int64_t(img.size()), 21, 1.0f);
  fill_normal(dl.data(), 0, int64_t(dl.size()), 22, 1.0f);
  tower.forward(img.data(), B);
  tower.backward(dl.data(), nullptr);
  std::vector<float> once(store.grads(), store.grads() + store.numel());
  tower.backward(dl.data(), nullptr);
  for (int64_t i = 0; i < store.numel(); i++) ASSERT_NEAR(store.grads()[i], 2 * once[size_t(i)], 1e-6f * (1 + std::abs(once[size_t(i)])));
}

// Half-precision storage: every weight is read and every gradient written between acquire and release of
// its unit (the views are one unit's working buffer at a time). The result equals an fp32 store holding the
// same rounded weights, bit for bit (activations are fp32 either way; each gradient is released once).
void half_storage_case(DType weights, DType grads) {
  const CocaConfig cfg = small_config();
  const int B = 2, S = cfg.vision.image_size;
  std::vector<float> img(size_t(B) * 3 * S * S), dl(size_t(B) * cfg.embed_dim),
      dt(size_t(B) * cfg.pooler.queries * cfg.embed_dim);
  fill_normal(img.data(), 0, int64_t(img.size()), 31, 1.0f);
  fill_normal(dl.data(), 0, int64_t(dl.size()), 32, 1.0f);
  fill_normal(dt.data(), 0, int64_t(dt.size()), 33, 1.0f);

  ParamStore ref;
  EvaVisionTower a(cfg, ref, B);
  ref.finalize(16, a.units());
  a.init_params(9);
  cpu::round_to_dtype(ref.values(), long(ref.numel()), weights);
  a.forward(img.data(), B);
  a.backward(dl.data(), dt.data());
  std::vector<float> want(ref.grads(), ref.grads() + ref.numel());
  cpu::round_to_dtype(want.data(), long(want.size()), grads);

  ParamStore half;
  ParamStorage st;
  st.weights = weights;
  st.grads = grads;
  half.configure(st);
  EvaVisionTower b(cfg, half, B);
  half.finalize(16, b.units());
  ASSERT_FALSE(half.values_direct());
  b.init_params(9);
  half.zero_grads();
  b.forward(img.data(), B);
  EXPECT_EQ(std::memcmp(a.latent(), b.latent(), dl.size() * sizeof(float)), 0);
  EXPECT_EQ(std::memcmp(a.tokens(), b.tokens(), dt.size() * sizeof(float)), 0);
  b.backward(dl.data(), dt.data());
  std::vector<float> got(size_t(half.numel()));
  cpu::to_f32(half.grad_storage(), grads, got.data(), long(got.size()));
  for (const Param& p : half.all())
    ASSERT_EQ(std::memcmp(got.data() + p.offset, want.data() + p.offset, sizeof(float) * size_t(p.numel())), 0)
        << p.name;
}

TEST(CocaVision, HalfWeightsThroughUnits) { half_storage_case(DType::F16, DType::F32); }
TEST(CocaVision, HalfWeightsAndGradsThroughUnits) { half_storage_case(DType::BF16, DType::BF16); }

// Standard deviation and largest magnitude of a parameter after init_params.
struct Stats {
  double std = 0, max_abs = 0, mean = 0;
};
Stats stats(const ParamStore& s, const std::string& name) {
  const Param& p = s.at(s.index_of(name));
  Stats r;
  const float* v = p.value.f32();
  double sum = 0, sq = 0;
  for (int64_t i = 0; i < p.numel(); i++) sum += v[i], sq += double(v[i]) * v[i], r.max_abs = std::max(r.max_abs, double(std::abs(v[i])));
  r.mean = sum / double(p.numel());
  r.std = std::sqrt(sq / double(p.numel()) - r.mean * r.mean);
  return r;
}

TEST(CocaVision, InitFollowsEvaAndOpenClip) {
  CocaConfig cfg = small_config();
  cfg.vision.width = 128;  // more elements per tensor: the estimated stds within a few percent
  ParamStore store;
  EvaVisionTower tower(cfg, store, 1, true);
  store.finalize(16, tower.units());
  tower.init_params(42);
  // tol: relative; 6% for tensors of >= 1000 values (about 3 standard errors), looser for 128 values.
  auto near_std = [&](const std::string& name, double want, double tol = 0.06) {
    const Stats s = stats(store, name);
    EXPECT_NEAR(s.std, want, tol * want) << name;
    EXPECT_NEAR(s.mean, 0.0, 2 * tol * want) << name;
  };
  auto uniform = [&](const std::string& name, double bound) {  // U(-b, b): std b / sqrt 3, |x| <= b
    const Stats s = stats(store, name);
    EXPECT_LE(s.max_abs, bound) << name;
    EXPECT_GT(s.max_abs, 0.95 * bound) << name;
    EXPECT_NEAR(s.std, bound / std::sqrt(3.0), 0.06 * bound / std::sqrt(3.0)) << name;
  };
  auto constant = [&](const std::string& name, float value) {
    const Param& p = store.at(store.index_of(name));
    for (int64_t i = 0; i < p.numel(); i++) ASSERT_EQ(p.value.f32()[i], value) << name;
  };
  near_std("visual.pos_embed", 0.02);
  near_std("visual.cls_token", 0.02, 0.2);
  near_std("visual.blocks.0.attn.q_proj.weight", 0.02);
  near_std("visual.blocks.1.mlp.w1.weight", 0.02);
  near_std("visual.blocks.0.attn.proj.weight", 0.02 / std::sqrt(2.0));  // fix_init_weight, layer_id 1
  near_std("visual.blocks.1.mlp.w3.weight", 0.02 / std::sqrt(4.0));     // layer_id 2
  uniform("visual.patch_embed.proj.weight", 1.0 / std::sqrt(3.0 * 8 * 8));  // Conv2d default
  near_std("visual.attn_pool.query", 1.0, 0.2);                              // torch.randn
  uniform("visual.attn_pool.attn.k_proj_weight", std::sqrt(6.0 / (32 + 128)));  // xavier_uniform_
  uniform("visual.attn_pool_contrastive.attn.in_proj_weight", std::sqrt(6.0 / (32 + 96)));
  uniform("visual.attn_pool.attn.out_proj.weight", 1.0 / std::sqrt(32.0));
  near_std("visual.proj", 1.0 / std::sqrt(32.0));
  constant("visual.blocks.0.attn.q_bias", 0.f);
  constant("visual.blocks.1.mlp.w3.bias", 0.f);
  constant("visual.attn_pool.attn.in_proj_bias", 0.f);
  constant("visual.blocks.0.attn.inner_attn_ln.weight", 1.f);
  constant("visual.blocks.1.mlp.ffn_ln.bias", 0.f);
  constant("visual.ln_post.weight", 1.f);
  constant("visual.attn_pool_contrastive.ln_k.weight", 1.f);
}

}  // namespace
}  // namespace loom
