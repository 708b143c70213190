// CoCa's text tower and caption decoder (models/coca/clip_text.h, multimodal_decoder.h): the parameters
// they register equal coca_parameter_specs' "text" and "text_decoder" towers (names, shapes, order), their
// storage units cover each parameter once, full recompute gives bitwise the same gradients, and bad ids
// are a UserError. Numerical parity with PyTorch is tests/parity/test_coca_text.py.
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <set>
#include <stdexcept>
#include <vector>

#include "loom/core/dtype.h"
#include "loom/core/error.h"
#include "loom/core/rng.h"
#include "loom/layers/param_store.h"
#include "loom/models/coca/clip_text.h"
#include "loom/models/coca/coca_config.h"
#include "loom/models/coca/multimodal_decoder.h"

namespace loom {
namespace {

CocaConfig small_config() {
  CocaConfig c = coca_b16_config();
  c.text.vocab_size = c.decoder.vocab_size = 100;
  c.text.context_length = 16;
  c.text.width = c.decoder.width = c.embed_dim = 32;
  c.text.layers = c.decoder.layers = 2;
  c.text.heads = c.decoder.heads = 4;
  c.text.mlp_hidden = c.decoder.mlp_hidden = 128;
  c.pooler.queries = 4;
  return c;
}

void expect_tower(const ParamStore& store, const CocaConfig& cfg, const std::string& tower) {
  std::vector<CocaParamSpec> want;
  for (const auto& p : coca_parameter_specs(cfg))
    if (p.tower == tower) want.push_back(p);
  ASSERT_EQ(store.all().size(), want.size()) << tower;
  for (size_t i = 0; i < want.size(); i++) {
    EXPECT_EQ(store.at(int(i)).name, want[i].name) << i;
    EXPECT_EQ(store.at(int(i)).shape, want[i].shape) << want[i].name;
    EXPECT_EQ(store.at(int(i)).weight_decay, want[i].shape.size() >= 2) << want[i].name;
  }
}

void expect_units_partition(const std::vector<std::vector<int>>& units, size_t n) {
  std::multiset<int> seen;
  for (const auto& u : units) seen.insert(u.begin(), u.end());
  ASSERT_EQ(seen.size(), n);
  for (size_t i = 0; i < n; i++) EXPECT_EQ(seen.count(int(i)), 1u) << i;
}

TEST(CocaText, TextTowerRegistersTheSpecs) {
  for (const CocaConfig& cfg : {small_config(), coca_b16_config()}) {
    ParamStore store;
    ClipTextTower text(cfg, store, 1);
    expect_tower(store, cfg, "text");
    expect_units_partition(text.units(), store.all().size());
    EXPECT_EQ(text.units().size(), size_t(cfg.text.layers + 2));
  }
}

TEST(CocaText, DecoderRegistersTheSpecs) {
  for (const CocaConfig& cfg : {small_config(), coca_b16_config()}) {
    ParamStore store;
    MultimodalDecoder dec(cfg, store, 1);
    expect_tower(store, cfg, "text_decoder");
    expect_units_partition(dec.units(), store.all().size());
    EXPECT_EQ(dec.units().size(), size_t(2 * cfg.decoder.layers + 1));
  }
}

// Text tower + decoder on one store, as the lead composes them.
struct Model {
  ParamStore store;
  std::unique_ptr<ClipTextTower> text;
  std::unique_ptr<MultimodalDecoder> dec;
  Model(const CocaConfig& cfg, int batch, bool recompute, DType weights = DType::F32) {
    store.configure(ParamStorage{weights, DType::F32, nullptr, false, false});
    text = std::make_unique<ClipTextTower>(cfg, store, batch, recompute);
    dec = std::make_unique<MultimodalDecoder>(cfg, store, batch, recompute);
    auto units = text->units();
    dec->set_first_unit(int(units.size()));
    for (auto& u : dec->units()) units.push_back(u);
    store.finalize(16, units);
    text->init_params(5);
    dec->init_params(5);
    store.zero_grads();
  }
  double step(const std::vector<int32_t>& ids, const std::vector<float>& image, const std::vector<float>& d_latent,
              int B, bool fused_head = false) {
    text->forward(ids.data(), B);
    const double loss = dec->forward(text->tokens(), ids.data(), image.data(), B, nullptr, fused_head ? 2.f : 0.f);
    dec->backward(2.f);
    text->backward(d_latent.data(), dec->d_text_tokens());
    return loss;
  }
};

std::vector<int32_t> random_ids(const CocaConfig& cfg, int B, uint64_t seed) {
  Rng rng(seed);
  const int ctx = cfg.text.context_length;
  std::vector<int32_t> ids(size_t(B) * ctx, 0);
  for (int b = 0; b < B; b++) {
    const int len = 3 + int(rng.next_u32() % uint32_t(ctx - 3));  // SOT, words, EOT, then pad 0
    ids[size_t(b) * ctx] = cfg.text.vocab_size - 2;
    for (int t = 1; t + 1 < len; t++) ids[size_t(b) * ctx + t] = 1 + int(rng.next_u32() % uint32_t(cfg.text.vocab_size - 3));
    ids[size_t(b) * ctx + len - 1] = cfg.text.vocab_size - 1;
  }
  return ids;
}

// Full recompute, and the head's gradients formed in the forward (a known scale), change nothing.
TEST(CocaText, FullRecomputeAndFusedHeadAreBitwiseTheSame) {
  const CocaConfig cfg = small_config();
  const int B = 3;
  const auto ids = random_ids(cfg, B, 11);
  Rng rng(3);
  std::vector<float> image(size_t(B) * cfg.pooler.queries * cfg.embed_dim), d_latent(size_t(B) * cfg.embed_dim);
  for (float& v : image) v = rng.normal();
  for (float& v : d_latent) v = rng.normal();
  Model plain(cfg, 4, false), recompute(cfg, 4, true), fused(cfg, 4, false);
  const double l1 = plain.step(ids, image, d_latent, B);
  const double l2 = recompute.step(ids, image, d_latent, B);
  const double l3 = fused.step(ids, image, d_latent, B, true);
  EXPECT_EQ(l1, l2);
  EXPECT_EQ(l1, l3);
  EXPECT_GT(l1, 0.0);
  const int64_t n = plain.store.numel();
  const size_t ni = image.size();
  for (Model* m : {&recompute, &fused}) {
    EXPECT_EQ(std::memcmp(plain.store.grads(), m->store.grads(), sizeof(float) * size_t(n)), 0);
    EXPECT_EQ(std::memcmp(plain.dec->d_image_tokens(), m->dec->d_image_tokens(), sizeof(float) * ni), 0);
  }
  // A backward scale other than the fused forward's is a programming error.
  fused.text->forward(ids.data(), B);
  fused.dec->forward(fused.text->tokens(), ids.data(), image.data(), B, nullptr, 2.f);
  EXPECT_THROW(fused.dec->backward(1.f), std::logic_error);
  // Gradients reach every parameter (each is used), and the last position gets none from the decoder.
  for (const Param& p : plain.store.all()) {
    double s = 0;
    for (int64_t i = 0; i < p.numel(); i++) s += std::abs(p.grad.f32()[i]);
    EXPECT_GT(s, 0.0) << p.name;
  }
  const int ctx = cfg.text.context_length, W = cfg.text.width;
  for (int b = 0; b < B; b++)
    for (int c = 0; c < W; c++) EXPECT_EQ(plain.dec->d_text_tokens()[(size_t(b) * ctx + ctx - 1) * W + c], 0.f);
}

// Half-precision weight storage: the towers read their weights only through the unit they acquired (the
// fp32 working buffer holds one unit at a time). Same losses and gradients, bitwise, as fp32 storage of
// the same bf16-rounded weights.
TEST(CocaText, HalfPrecisionStorageThroughUnits) {
  const CocaConfig cfg = small_config();
  const int B = 2;
  const auto ids = random_ids(cfg, B, 21);
  Rng rng(4);
  std::vector<float> image(size_t(B) * cfg.pooler.queries * cfg.embed_dim), d_latent(size_t(B) * cfg.embed_dim);
  for (float& v : image) v = rng.normal();
  for (float& v : d_latent) v = rng.normal();
  Model half(cfg, B, false, DType::BF16), full(cfg, B, false);
  for (Param& p : full.store.all())
    for (int64_t i = 0; i < p.numel(); i++) p.value.f32()[i] = bf16_to_f32(f32_to_bf16(p.value.f32()[i]));
  EXPECT_FALSE(half.store.values_direct());
  EXPECT_EQ(half.step(ids, image, d_latent, B), full.step(ids, image, d_latent, B));
  for (size_t i = 0; i < full.store.all().size(); i++) {
    const Param& a = half.store.at(int(i));
    const Param& b = full.store.at(int(i));
    EXPECT_EQ(std::memcmp(a.grad.f32(), b.grad.f32(), sizeof(float) * size_t(a.numel())), 0) << a.name;
  }
  EXPECT_EQ(std::memcmp(half.dec->d_image_tokens(), full.dec->d_image_tokens(), sizeof(float) * image.size()), 0);
}

TEST(CocaText, RejectsIdsOutsideTheVocabulary) {
  const CocaConfig cfg = small_config();
  ParamStore store;
  ClipTextTower text(cfg, store, 2);
  store.finalize(16, text.units());
  text.init_params(1);
  auto ids = random_ids(cfg, 2, 1);
  ids[5] = cfg.text.vocab_size;
  try {
    text.forward(ids.data(), 2);
    FAIL() << "no error";
  } catch (const UserError& e) {
    EXPECT_STREQ(e.what(), "text token id 100 is outside the vocabulary [0, 100)");
  }
  ids[5] = -1;
  EXPECT_THROW(text.forward(ids.data(), 2), UserError);
}

}  // namespace
}  // namespace loom
