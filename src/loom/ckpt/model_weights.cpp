#include "loom/ckpt/model_weights.h"

#include <cstring>

#include "loom/ckpt/safetensors.h"
#include "loom/core/error.h"

namespace loom {

std::map<std::string, std::string> gpt_config_metadata(const GptConfig& c) {
  return {{"format", "loom-gpt"},
          {"num_layers", std::to_string(c.num_layers)},
          {"hidden_size", std::to_string(c.hidden_size)},
          {"num_attention_heads", std::to_string(c.num_attention_heads)},
          {"ffn_hidden_size", std::to_string(c.ffn_hidden_size)},
          {"seq_length", std::to_string(c.seq_length)},
          {"max_position_embeddings", std::to_string(c.max_position_embeddings)},
          {"vocab_size", std::to_string(c.vocab_size)},
          {"padded_vocab_size", std::to_string(c.padded_vocab_size)},
          {"layernorm_epsilon", std::to_string(c.layernorm_epsilon)}};
}

GptConfig gpt_config_from_metadata(const std::map<std::string, std::string>& meta, const std::string& path) {
  auto get = [&](const char* key) -> long {
    auto it = meta.find(key);
    if (it == meta.end()) fail(path + ": not a loom GPT weights file (metadata lacks '" + key + "')");
    try {
      return std::stol(it->second);
    } catch (...) {
      fail(path + ": metadata '" + key + "' is not a number");
    }
  };
  GptConfig c;
  c.num_layers = int(get("num_layers"));
  c.hidden_size = int(get("hidden_size"));
  c.num_attention_heads = int(get("num_attention_heads"));
  c.ffn_hidden_size = int(get("ffn_hidden_size"));
  c.seq_length = int(get("seq_length"));
  c.max_position_embeddings = int(get("max_position_embeddings"));
  c.vocab_size = int(get("vocab_size"));
  c.padded_vocab_size = int(get("padded_vocab_size"));
  auto eps = meta.find("layernorm_epsilon");
  if (eps != meta.end()) c.layernorm_epsilon = std::stof(eps->second);
  if (c.num_layers <= 0 || c.hidden_size <= 0 || c.num_attention_heads <= 0 ||
      c.hidden_size % c.num_attention_heads != 0 || c.padded_vocab_size < c.vocab_size)
    fail(path + ": metadata describes an invalid model shape");
  return c;
}

void save_weights(const std::string& path, const ParamStore& params, const std::map<std::string, std::string>& meta) {
  std::vector<TensorEntry> entries;
  for (const auto& p : params.all())
    entries.push_back({p.name, DType::F32, p.shape, p.value.f32(), size_t(p.numel()) * 4});
  write_safetensors(path, entries, meta);
}

void load_weights(const std::string& path, ParamStore& params) {
  SafetensorsFile file(path);
  for (auto& p : params.all()) {
    const TensorEntry& t = file.get(p.name);
    if (t.shape != p.shape)
      fail(path + ": tensor '" + p.name + "' has shape " + shape_to_string(t.shape) + " but the model needs " +
           shape_to_string(p.shape) + " (weights of a different model shape?)");
    float* dst = p.value.f32();
    const int64_t n = p.numel();
    switch (t.dtype) {
      case DType::F32: std::memcpy(dst, t.data, size_t(n) * 4); break;
      case DType::BF16: {
        const uint16_t* s = static_cast<const uint16_t*>(t.data);
        for (int64_t i = 0; i < n; i++) dst[i] = bf16_to_f32(s[i]);
        break;
      }
      case DType::F16: {
        const uint16_t* s = static_cast<const uint16_t*>(t.data);
        for (int64_t i = 0; i < n; i++) dst[i] = f16_to_f32(s[i]);
        break;
      }
      default: fail(path + ": tensor '" + p.name + "' is not a floating-point tensor");
    }
  }
}

}  // namespace loom
