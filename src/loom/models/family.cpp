#include "loom/models/family.h"

#include <cstring>

#include "loom/core/error.h"
#include "loom/models/decoder_model.h"

namespace loom {

namespace {

const std::vector<ModelFamily>& families() {
  static const std::vector<ModelFamily> all = {
      {"gpt", "Megatron GPT: LayerNorm, learned positions, GELU, biases, tied output layer", {},
       decoder_total_params, transformer_layer_params, decoder_flops_per_iteration, decoder_layer_costs, 5},
      {"llama", "Llama: RMSNorm, RoPE, SwiGLU, no linear biases (GQA, scaling and tying by flags)",
       {"--normalization", "RMSNorm", "--swiglu", "--position-embedding-type", "rope", "--disable-bias-linear"},
       decoder_total_params, transformer_layer_params, decoder_flops_per_iteration, decoder_layer_costs, 8},
  };
  return all;
}

const std::vector<ModelPreset>& presets() {
  static const std::vector<ModelPreset> all = {
      {"gpt2-124m", "gpt", "GPT-2 small (124M)",
       {"--num-layers", "12", "--hidden-size", "768", "--num-attention-heads", "12", "--seq-length", "1024",
        "--max-position-embeddings", "1024", "--vocab-size", "50257"}},
      {"gpt2-350m", "gpt", "GPT-2 medium (350M)",
       {"--num-layers", "24", "--hidden-size", "1024", "--num-attention-heads", "16", "--seq-length", "1024",
        "--max-position-embeddings", "1024", "--vocab-size", "50257"}},
      {"gpt2-1.5b", "gpt", "GPT-2 XL (1.5B), reference log 002's shape",
       {"--num-layers", "48", "--hidden-size", "1600", "--num-attention-heads", "25", "--seq-length", "1024",
        "--max-position-embeddings", "1024", "--vocab-size", "50257"}},
      {"llama3.2-1b", "llama", "Llama-3.2-1B (reference log 003): GQA 32/8, RoPE 500000 with llama3 scaling x32, tied",
       {"--num-layers", "16", "--hidden-size", "2048", "--ffn-hidden-size", "8192", "--num-attention-heads", "32",
        "--group-query-attention", "--num-query-groups", "8", "--kv-channels", "64", "--seq-length", "2048",
        "--max-position-embeddings", "131072", "--norm-epsilon", "1e-5", "--rotary-base", "500000",
        "--use-rope-scaling", "--rope-scaling-factor", "32", "--vocab-size", "128256"}},
      {"llama3-8b", "llama", "Llama-3-8B: GQA 32/8, RoPE 500000, untied",
       {"--num-layers", "32", "--hidden-size", "4096", "--ffn-hidden-size", "14336", "--num-attention-heads", "32",
        "--group-query-attention", "--num-query-groups", "8", "--kv-channels", "128", "--seq-length", "8192",
        "--max-position-embeddings", "8192", "--norm-epsilon", "1e-5", "--rotary-base", "500000",
        "--untie-embeddings-and-output-weights", "--vocab-size", "128256"}},
      {"llama3.1-8b", "llama", "Llama-3.1-8B: as Llama-3-8B with llama3 RoPE scaling x8",
       {"--num-layers", "32", "--hidden-size", "4096", "--ffn-hidden-size", "14336", "--num-attention-heads", "32",
        "--group-query-attention", "--num-query-groups", "8", "--kv-channels", "128", "--seq-length", "8192",
        "--max-position-embeddings", "131072", "--norm-epsilon", "1e-5", "--rotary-base", "500000",
        "--use-rope-scaling", "--rope-scaling-factor", "8", "--untie-embeddings-and-output-weights",
        "--vocab-size", "128256"}},
      {"llama2-7b", "llama", "Llama-2-7B: MHA, RoPE 10000, untied",
       {"--num-layers", "32", "--hidden-size", "4096", "--ffn-hidden-size", "11008", "--num-attention-heads", "32",
        "--seq-length", "4096", "--max-position-embeddings", "4096", "--norm-epsilon", "1e-5", "--rotary-base",
        "10000", "--untie-embeddings-and-output-weights", "--vocab-size", "32000"}},
  };
  return all;
}

std::string joined(const std::vector<std::string>& names) {
  std::string s;
  for (const auto& n : names) s += (s.empty() ? "" : ", ") + n;
  return s;
}

// The value of `--flag V` or `--flag=V` in argv (the last one), or "".
std::string flag_value(int argc, char** argv, const char* flag) {
  std::string v;
  const size_t n = std::strlen(flag);
  for (int i = 0; i < argc; i++) {
    if (std::strcmp(argv[i], flag) == 0 && i + 1 < argc) v = argv[i + 1];
    else if (std::strncmp(argv[i], flag, n) == 0 && argv[i][n] == '=') v = argv[i] + n + 1;
  }
  return v;
}

}  // namespace

const ModelFamily& model_family(const std::string& name) {
  for (const auto& f : families())
    if (f.name == name) return f;
  fail("unknown model family '" + name + "' (--model takes one of: " + joined(model_family_names()) + ")");
}

std::vector<std::string> model_family_names() {
  std::vector<std::string> names;
  for (const auto& f : families()) names.push_back(f.name);
  return names;
}

std::vector<double> module_counts(const ModelFamily& family, const TransformerConfig& cfg) {
  std::vector<double> counts(size_t(cfg.num_layers) + 2, double(family.block_modules));
  counts.front() = counts.back() = 1;
  return counts;
}

std::vector<std::string> model_preset_names() {
  std::vector<std::string> names;
  for (const auto& p : presets()) names.push_back(p.name);
  return names;
}

const ModelPreset* find_model_preset(const std::string& name) {
  for (const auto& p : presets())
    if (p.name == name) return &p;
  return nullptr;
}

std::vector<std::string> expand_model_flags(int argc, char** argv) {
  std::vector<std::string> out;
  std::vector<std::string> implied;
  std::string family = flag_value(argc, argv, "--model");
  const std::string preset_name = flag_value(argc, argv, "--model-preset");
  if (!preset_name.empty()) {
    const ModelPreset* preset = find_model_preset(preset_name);
    if (!preset)
      fail("unknown --model-preset '" + preset_name + "' (one of: " + joined(model_preset_names()) + ")");
    if (family.empty()) family = preset->family;
    else if (family != preset->family)
      fail("--model-preset " + preset_name + " is a " + preset->family + " model, not --model " + family);
    implied = preset->flags;
    if (flag_value(argc, argv, "--model").empty()) implied.insert(implied.begin(), {"--model", preset->family});
  }
  if (!family.empty()) {
    const ModelFamily& f = model_family(family);
    out.insert(out.end(), f.flags.begin(), f.flags.end());
  }
  out.insert(out.end(), implied.begin(), implied.end());
  for (int i = 0; i < argc; i++) out.push_back(argv[i]);
  return out;
}

}  // namespace loom
