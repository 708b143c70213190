#include "loom/ckpt/hf_export.h"

#include <filesystem>
#include <nlohmann/json.hpp>
#include <vector>

#include "loom/ckpt/safetensors.h"
#include "loom/core/error.h"

namespace loom {

namespace {

std::vector<float> transposed(const Param& p) {
  const int64_t rows = p.shape[0], cols = p.shape[1];
  std::vector<float> t(size_t(rows * cols));
  const float* s = p.value.f32();
  for (int64_t r = 0; r < rows; r++)
    for (int64_t c = 0; c < cols; c++) t[size_t(c * rows + r)] = s[r * cols + c];
  return t;
}

}  // namespace

void export_hf_gpt2(const DecoderModel& model, const std::string& dir) {
  const ModelConfig& c = model.config();
  if (model.tensor_parallel().active()) throw std::logic_error("export needs the full model on one process");
  const int64_t h = c.hidden_size, H = c.num_attention_heads, D = c.head_dim(), V = c.vocab_size;
  auto param = [&](const std::string& name) -> const Param& {
    const Param* p = const_cast<ParamStore&>(model.params()).find(name);
    if (!p) throw std::logic_error("export: no parameter " + name);
    return *p;
  };
  std::vector<std::vector<float>> keep;  // owns converted data until written
  std::vector<TensorEntry> entries;
  auto add = [&](const std::string& name, std::vector<int64_t> shape, std::vector<float> data) {
    keep.push_back(std::move(data));
    entries.push_back({name, DType::F32, std::move(shape), keep.back().data(), keep.back().size() * 4});
  };
  auto copy = [&](const std::string& hf, const std::string& ours) {
    const Param& p = param(ours);
    add(hf, p.shape, std::vector<float>(p.value.f32(), p.value.f32() + p.numel()));
  };
  keep.reserve(size_t(8 + 12 * c.num_layers));
  {
    const Param& wte = param("embedding.word_embeddings.weight");
    add("transformer.wte.weight", {V, h}, std::vector<float>(wte.value.f32(), wte.value.f32() + V * h));
  }
  copy("transformer.wpe.weight", "embedding.position_embeddings.weight");
  for (int i = 0; i < c.num_layers; i++) {
    const std::string ours = "decoder.layers." + std::to_string(i) + ".", hf = "transformer.h." + std::to_string(i) + ".";
    copy(hf + "ln_1.weight", ours + "input_layernorm.weight");
    copy(hf + "ln_1.bias", ours + "input_layernorm.bias");
    copy(hf + "ln_2.weight", ours + "pre_mlp_layernorm.weight");
    copy(hf + "ln_2.bias", ours + "pre_mlp_layernorm.bias");
    // QKV: Megatron row (head n, part j in {q,k,v}, d) -> HF column j*h + n*D + d.
    const Param& qkv_w = param(ours + "self_attention.linear_qkv.weight");
    const Param& qkv_b = param(ours + "self_attention.linear_qkv.bias");
    std::vector<float> w(size_t(h * 3 * h)), b(size_t(3 * h));
    for (int64_t n = 0; n < H; n++)
      for (int64_t j = 0; j < 3; j++)
        for (int64_t d = 0; d < D; d++) {
          const int64_t row = (n * 3 + j) * D + d, col = j * h + n * D + d;
          for (int64_t k = 0; k < h; k++) w[size_t(k * 3 * h + col)] = qkv_w.value.f32()[row * h + k];
          b[size_t(col)] = qkv_b.value.f32()[row];
        }
    add(hf + "attn.c_attn.weight", {h, 3 * h}, std::move(w));
    add(hf + "attn.c_attn.bias", {3 * h}, std::move(b));
    add(hf + "attn.c_proj.weight", {h, h}, transposed(param(ours + "self_attention.linear_proj.weight")));
    copy(hf + "attn.c_proj.bias", ours + "self_attention.linear_proj.bias");
    add(hf + "mlp.c_fc.weight", {h, c.ffn_hidden_size}, transposed(param(ours + "mlp.linear_fc1.weight")));
    copy(hf + "mlp.c_fc.bias", ours + "mlp.linear_fc1.bias");
    add(hf + "mlp.c_proj.weight", {c.ffn_hidden_size, h}, transposed(param(ours + "mlp.linear_fc2.weight")));
    copy(hf + "mlp.c_proj.bias", ours + "mlp.linear_fc2.bias");
  }
  copy("transformer.ln_f.weight", "decoder.final_layernorm.weight");
  copy("transformer.ln_f.bias", "decoder.final_layernorm.bias");

  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) fail("cannot create " + dir + ": " + ec.message());
  write_safetensors((std::filesystem::path(dir) / "model.safetensors").string(), entries, {{"format", "pt"}});
  nlohmann::ordered_json cfg = {
      {"architectures", {"GPT2LMHeadModel"}},
      {"model_type", "gpt2"},
      {"vocab_size", V},
      {"n_positions", c.max_position_embeddings},
      {"n_ctx", c.max_position_embeddings},
      {"n_embd", h},
      {"n_layer", c.num_layers},
      {"n_head", H},
      {"n_inner", c.ffn_hidden_size},
      {"activation_function", "gelu_new"},
      {"layer_norm_epsilon", c.layernorm_epsilon},
      {"resid_pdrop", 0.0},
      {"embd_pdrop", 0.0},
      {"attn_pdrop", 0.0},
      {"initializer_range", c.init_method_std},
      {"bos_token_id", 50256},
      {"eos_token_id", 50256},
      {"tie_word_embeddings", true},
      {"torch_dtype", "float32"}};
  write_file_atomic((std::filesystem::path(dir) / "config.json").string(), cfg.dump(2) + "\n");
}

}  // namespace loom
