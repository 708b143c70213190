// `loom convert --from hf DIR`: the input is `<DIR/config.json>` [SEP `<DIR/model.safetensors.index.json>`]
// (no index when that part is empty). DIR also holds a fixed model.safetensors
// of a tiny Llama (1 layer, hidden 8, 2 heads, 1 KV head, FFN 16, vocab 40, tied embeddings; the seed
// config describes it), so a config that parses goes on through the tensor checks and the import as
// far as it matches.
#include <filesystem>

#include "fuzz_util.h"
#include "loom/ckpt/hf_llama.h"
#include "loom/ckpt/safetensors.h"

namespace {

using namespace loom;

std::string make_model_dir() {
  const std::string dir = fuzz::scratch_path("hf");
  std::filesystem::create_directories(dir);
  const int64_t h = 8, f = 16, V = 40, D = 4, H = 2, G = 1;
  struct Spec {
    std::string name;
    std::vector<int64_t> shape;
  };
  const std::vector<Spec> specs = {
      {"model.embed_tokens.weight", {V, h}},
      {"model.layers.0.input_layernorm.weight", {h}},
      {"model.layers.0.self_attn.q_proj.weight", {H * D, h}},
      {"model.layers.0.self_attn.k_proj.weight", {G * D, h}},
      {"model.layers.0.self_attn.v_proj.weight", {G * D, h}},
      {"model.layers.0.self_attn.o_proj.weight", {h, H * D}},
      {"model.layers.0.post_attention_layernorm.weight", {h}},
      {"model.layers.0.mlp.gate_proj.weight", {f, h}},
      {"model.layers.0.mlp.up_proj.weight", {f, h}},
      {"model.layers.0.mlp.down_proj.weight", {h, f}},
      {"model.norm.weight", {h}},
  };
  static std::vector<std::vector<float>> storage;
  std::vector<TensorEntry> tensors;
  for (const auto& s : specs) {
    int64_t n = 1;
    for (auto d : s.shape) n *= d;
    storage.emplace_back(size_t(n));
    for (int64_t i = 0; i < n; i++) storage.back()[size_t(i)] = float(i % 7) * 0.25f - 0.5f;
    TensorEntry t;
    t.name = s.name;
    t.dtype = DType::F32;
    t.shape = s.shape;
    t.data = storage.back().data();
    t.bytes = size_t(n) * 4;
    tensors.push_back(t);
  }
  write_safetensors(dir + "/model.safetensors", tensors);
  return dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string dir = make_model_dir();
  const auto parts = fuzz::split_parts(data, size, 2);
  fuzz::write_file(dir + "/config.json", parts[0]);
  const std::string index = dir + "/model.safetensors.index.json";
  if (parts[1].empty())
    std::remove(index.c_str());
  else
    fuzz::write_file(index, parts[1]);
  fuzz::expect_user_errors_only([&] {
    const ModelConfig c = import_hf_llama(dir, fuzz::scratch_path("hf_out.safetensors"), 8);
    if (c.num_layers != 1) std::abort();  // the tensors hold exactly one layer
  });
  return 0;
}
