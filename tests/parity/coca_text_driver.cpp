// Driver for tests/parity/test_coca_text.py: CoCa's text tower and caption decoder on weights and a batch
// the test writes, one forward and backward, outputs and gradients written back.
//   coca_text_driver <dir>
// <dir>/config.txt: vocab ctx width layers heads mlp queries dec_layers dec_heads batch recompute scale fused
// (fused 1: the scale given to the decoder's forward, its head's gradients formed there)
// <dir>/weights.bin: float32, every parameter of the text and text_decoder towers in registration order;
// ids.bin int32 [B, ctx]; image.bin float32 [B*Q, E]; dlatent.bin float32 [B, E].
// Writes names.txt (name and shape per parameter), latent.bin, tokens.bin, loss.txt (loss, targets),
// dimage.bin, dtext.bin, grads.bin (store order).
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "loom/layers/param_store.h"
#include "loom/models/coca/clip_text.h"
#include "loom/models/coca/coca_config.h"
#include "loom/models/coca/multimodal_decoder.h"
#include "probe_io.h"

using namespace loom;

namespace {

template <class T>
std::vector<T> read_vec(const std::string& path, size_t n) {
  const std::string s = probe::slurp(path);
  if (s.size() != n * sizeof(T)) fail(path + ": " + std::to_string(s.size()) + " bytes, want " + std::to_string(n * sizeof(T)));
  std::vector<T> v(n);
  std::memcpy(v.data(), s.data(), s.size());
  return v;
}

void write_floats(const std::string& path, const float* p, size_t n) {
  probe::spit(path, std::string(reinterpret_cast<const char*>(p), n * sizeof(float)));
}

struct Towers {
  ParamStore store;
  std::unique_ptr<ClipTextTower> text;
  std::unique_ptr<MultimodalDecoder> dec;
  Towers(const CocaConfig& cfg, int batch, bool recompute) {
    text = std::make_unique<ClipTextTower>(cfg, store, batch, recompute);
    dec = std::make_unique<MultimodalDecoder>(cfg, store, batch, recompute);
    auto units = text->units();
    dec->set_first_unit(int(units.size()));
    for (auto& u : dec->units()) units.push_back(u);
    store.finalize(16, units);
  }
};

int parity(const std::string& dir) {
  std::ifstream cf(dir + "/config.txt");
  int vocab, ctx, width, layers, heads, mlp, queries, dec_layers, dec_heads, B, recompute, fused;
  float scale;
  if (!(cf >> vocab >> ctx >> width >> layers >> heads >> mlp >> queries >> dec_layers >> dec_heads >> B >> recompute >>
        scale >> fused))
    fail("bad config.txt");
  CocaConfig cfg = coca_b16_config();
  cfg.text.vocab_size = cfg.decoder.vocab_size = vocab;
  cfg.text.context_length = ctx;
  cfg.text.width = cfg.decoder.width = cfg.embed_dim = width;
  cfg.text.layers = layers;
  cfg.text.heads = heads;
  cfg.text.mlp_hidden = cfg.decoder.mlp_hidden = mlp;
  cfg.decoder.layers = dec_layers;
  cfg.decoder.heads = dec_heads;
  cfg.pooler.queries = queries;
  Towers m(cfg, B, recompute != 0);
  const int64_t n = m.store.numel();
  std::ostringstream names;
  int64_t total = 0;
  for (const Param& p : m.store.all()) {
    names << p.name;
    for (int64_t d : p.shape) names << ' ' << d;
    names << '\n';
    total += p.numel();
  }
  probe::spit(dir + "/names.txt", names.str());
  const auto w = read_vec<float>(dir + "/weights.bin", size_t(total));
  size_t at = 0;
  for (Param& p : m.store.all()) {
    std::memcpy(p.value.f32(), w.data() + at, sizeof(float) * size_t(p.numel()));
    at += size_t(p.numel());
  }
  const auto ids = read_vec<int32_t>(dir + "/ids.bin", size_t(B) * ctx);
  const auto image = read_vec<float>(dir + "/image.bin", size_t(B) * queries * width);
  const auto dlatent = read_vec<float>(dir + "/dlatent.bin", size_t(B) * width);
  m.store.zero_grads();
  m.text->forward(ids.data(), B);
  int64_t targets = 0;
  const double loss = m.dec->forward(m.text->tokens(), ids.data(), image.data(), B, &targets, fused ? scale : 0.f);
  m.dec->backward(scale);
  m.text->backward(dlatent.data(), m.dec->d_text_tokens());
  write_floats(dir + "/latent.bin", m.text->latent(), size_t(B) * width);
  write_floats(dir + "/tokens.bin", m.text->tokens(), size_t(B) * ctx * width);
  write_floats(dir + "/dimage.bin", m.dec->d_image_tokens(), image.size());
  write_floats(dir + "/dtext.bin", m.dec->d_text_tokens(), size_t(B) * ctx * width);
  std::string grads;
  for (const Param& p : m.store.all())
    grads.append(reinterpret_cast<const char*>(p.grad.f32()), sizeof(float) * size_t(p.numel()));
  probe::spit(dir + "/grads.bin", grads);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.10e %lld\n", loss, static_cast<long long>(targets));
  probe::spit(dir + "/loss.txt", buf);
  (void)n;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc != 2) {
      std::fprintf(stderr, "usage: coca_text_driver <dir>\n");
      return 2;
    }
    return parity(argv[1]);
  } catch (const UserError& e) {
    std::fprintf(stderr, "loom: error: %s\n", e.what());
    return 2;
  }
}
