#include "loom/ckpt/model_weights.h"

#include <cstring>

#include "loom/ckpt/safetensors.h"
#include "loom/core/error.h"
#include "loom/dist/communicator.h"

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

namespace {

// The full tensor of a (possibly tensor-parallel) parameter, gathered over the group.
std::vector<float> gather_full(const Param& p, const TensorParallel& tp) {
  const auto& g = p.global_shape();
  std::vector<float> full(size_t(shape_numel(g)));
  if (p.split.dim < 0 || !tp.active()) {
    std::memcpy(full.data(), p.value.f32(), full.size() * sizeof(float));
    return full;
  }
  std::vector<float> pieces(size_t(p.numel()) * size_t(tp.size));
  tp.comm->all_gather(p.value.f32(), pieces.data(), size_t(p.numel()));
  if (p.split.dim == 0) return pieces;  // rank order is row order
  // Column slices: rank r holds columns [r c, (r+1) c) of every row.
  const int64_t rows = p.shape[0], cols = p.shape[1], full_cols = g[1];
  for (int r = 0; r < tp.size; r++)
    for (int64_t i = 0; i < rows; i++)
      std::memcpy(&full[size_t(i * full_cols + r * cols)], &pieces[size_t((r * rows + i) * cols)], sizeof(float) * size_t(cols));
  return full;
}

template <typename Convert>
void read_slice(const Param& p, const void* data, Convert convert) {
  float* dst = p.value.f32();
  const auto& g = p.global_shape();
  if (p.split.dim < 0) {
    for (int64_t i = 0; i < p.numel(); i++) dst[i] = convert(data, i);
  } else if (p.split.dim == 0) {
    const int64_t first = p.split.offset * (p.numel() / p.shape[0]);
    for (int64_t i = 0; i < p.numel(); i++) dst[i] = convert(data, first + i);
  } else {
    const int64_t rows = p.shape[0], cols = p.shape[1];
    for (int64_t r = 0; r < rows; r++)
      for (int64_t c = 0; c < cols; c++) dst[r * cols + c] = convert(data, r * g[1] + p.split.offset + c);
  }
}

}  // namespace

void save_weights(const std::string& path, const ParamStore& params, const std::map<std::string, std::string>& meta,
                  const TensorParallel& tp) {
  std::vector<std::vector<float>> full;
  full.reserve(params.all().size());
  for (const auto& p : params.all()) full.push_back(gather_full(p, tp));
  if (tp.rank != 0) return;
  std::vector<TensorEntry> entries;
  for (size_t i = 0; i < params.all().size(); i++) {
    const Param& p = params.all()[i];
    if (!p.split.tied_to.empty()) continue;
    entries.push_back({p.name, DType::F32, p.global_shape(), full[i].data(), full[i].size() * 4});
  }
  write_safetensors(path, entries, meta);
}

void load_weights(const std::string& path, ParamStore& params) {
  SafetensorsFile file(path);
  for (auto& p : params.all()) {
    const TensorEntry& t = file.get(p.canonical_name());
    if (t.shape != p.global_shape())
      fail(path + ": tensor '" + p.name + "' has shape " + shape_to_string(t.shape) + " but the model needs " +
           shape_to_string(p.global_shape()) + " (weights of a different model shape?)");
    switch (t.dtype) {
      case DType::F32:
        read_slice(p, t.data, [](const void* d, int64_t i) {
          float v;
          std::memcpy(&v, static_cast<const char*>(d) + i * 4, 4);
          return v;
        });
        break;
      case DType::BF16:
        read_slice(p, t.data, [](const void* d, int64_t i) { return bf16_to_f32(static_cast<const uint16_t*>(d)[i]); });
        break;
      case DType::F16:
        read_slice(p, t.data, [](const void* d, int64_t i) { return f16_to_f32(static_cast<const uint16_t*>(d)[i]); });
        break;
      default: fail(path + ": tensor '" + p.name + "' is not a floating-point tensor");
    }
  }
}

}  // namespace loom
