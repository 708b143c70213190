// Runs Loom's CoCa vision tower (EvaVisionTower) on weights, images and upstream gradients written by
// tests/parity/test_coca_vision.py and writes what the PyTorch reference is compared against.
//
//   coca_vision_driver --config config.json --in in.safetensors --out out.safetensors
//     config.json: image_size, patch_size, width, layers, heads, mlp_hidden, rope_pt_grid, pooler_queries,
//                  pooler_heads, embed_dim, batch, recompute (0/1)
//     in:  every visual.* parameter (F32, by name), images [B,3,S,S], d_latent [B,E], d_tokens [B,Q,E]
//     out: latent [B,E], tokens [B,Q,E], grad.<name> for every parameter
//   coca_vision_driver --rope HEAD_DIM GRID PT_GRID --out out.safetensors
//     out: freqs_cos, freqs_sin [GRID*GRID, HEAD_DIM], EVA's expanded layout (each pair's value twice)
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "loom/ckpt/safetensors.h"
#include "loom/core/error.h"
#include "loom/models/coca/eva_rope.h"
#include "loom/models/coca/eva_vision.h"

using namespace loom;

namespace {

TensorEntry f32_entry(const std::string& name, std::vector<int64_t> shape, const float* data) {
  TensorEntry e;
  e.name = name;
  e.dtype = DType::F32;
  e.shape = std::move(shape);
  e.data = data;
  size_t n = 1;
  for (int64_t d : e.shape) n *= size_t(d);
  e.bytes = n * sizeof(float);
  return e;
}

const float* tensor(const SafetensorsFile& f, const std::string& name, size_t count) {
  const TensorEntry& e = f.get(name);
  if (e.dtype != DType::F32 || e.bytes != count * sizeof(float)) fail(name + ": expected " + std::to_string(count) + " F32 values");
  return static_cast<const float*>(e.data);
}

int rope_main(int head_dim, int grid, int pt_grid, const std::string& out) {
  const cpu::RopeTable t = make_eva_rope_table(head_dim, grid, pt_grid, 10000.0);
  const int half = head_dim / 2, n = grid * grid;
  std::vector<float> c(size_t(n) * head_dim), s(c.size());
  for (int p = 0; p < n; p++)
    for (int j = 0; j < head_dim; j++) {
      c[size_t(p) * head_dim + j] = t.cos[size_t(p) * half + j / 2];
      s[size_t(p) * head_dim + j] = t.sin[size_t(p) * half + j / 2];
    }
  write_safetensors(out, {f32_entry("freqs_cos", {n, head_dim}, c.data()), f32_entry("freqs_sin", {n, head_dim}, s.data())});
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    std::string config, in, out;
    int rope_dim = 0, rope_grid = 0, rope_pt = 0;
    for (int i = 1; i < argc; i++) {
      const std::string a = argv[i];
      auto next = [&]() -> std::string {
        if (i + 1 >= argc) fail(a + " needs a value");
        return argv[++i];
      };
      if (a == "--config") config = next();
      else if (a == "--in") in = next();
      else if (a == "--out") out = next();
      else if (a == "--rope") rope_dim = std::stoi(next()), rope_grid = std::stoi(next()), rope_pt = std::stoi(next());
      else fail("unknown flag " + a);
    }
    if (rope_dim) return rope_main(rope_dim, rope_grid, rope_pt, out);
    std::ifstream cf(config);
    if (!cf) fail("cannot open " + config);
    const nlohmann::json j = nlohmann::json::parse(cf);
    CocaConfig cfg;
    cfg.vision.image_size = j.at("image_size");
    cfg.vision.patch_size = j.at("patch_size");
    cfg.vision.width = j.at("width");
    cfg.vision.layers = j.at("layers");
    cfg.vision.heads = j.at("heads");
    cfg.vision.mlp_hidden = j.at("mlp_hidden");
    cfg.vision.rope_pt_grid = j.at("rope_pt_grid");
    cfg.pooler.queries = j.at("pooler_queries");
    cfg.pooler.heads = j.at("pooler_heads");
    cfg.embed_dim = j.at("embed_dim");
    const int B = j.at("batch");
    const bool recompute = int(j.at("recompute")) != 0;

    ParamStore store;
    EvaVisionTower tower(cfg, store, B, recompute);
    store.finalize(16, tower.units());
    const SafetensorsFile f(in);
    for (Param& p : store.all()) {
      const float* src = tensor(f, p.name, size_t(p.numel()));
      std::copy(src, src + p.numel(), p.value.f32());
    }
    const int S = cfg.vision.image_size, E = cfg.embed_dim, Q = cfg.pooler.queries;
    const float* images = tensor(f, "images", size_t(B) * 3 * S * S);
    const float* d_latent = tensor(f, "d_latent", size_t(B) * E);
    const float* d_tokens = tensor(f, "d_tokens", size_t(B) * Q * E);
    store.zero_grads();
    tower.forward(images, B);
    std::vector<float> latent(tower.latent(), tower.latent() + size_t(B) * E);
    std::vector<float> tokens(tower.tokens(), tower.tokens() + size_t(B) * Q * E);
    tower.backward(d_latent, d_tokens);
    std::vector<TensorEntry> outs{f32_entry("latent", {B, E}, latent.data()), f32_entry("tokens", {B, Q, E}, tokens.data())};
    for (const Param& p : store.all()) outs.push_back(f32_entry("grad." + p.name, p.shape, p.grad.f32()));
    write_safetensors(out, outs);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "loom: error: %s\n", e.what());
    return 2;
  }
}
