#include "loom/ckpt/model_weights.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "loom/ckpt/safetensors.h"
#include "loom/core/error.h"
#include "loom/dist/communicator.h"

namespace loom {

std::map<std::string, std::string> model_config_metadata(const ModelConfig& c) {
  std::map<std::string, std::string> m = {{"format", "loom-gpt"},
          {"num_layers", std::to_string(c.num_layers)},
          {"hidden_size", std::to_string(c.hidden_size)},
          {"num_attention_heads", std::to_string(c.num_attention_heads)},
          {"ffn_hidden_size", std::to_string(c.ffn_hidden_size)},
          {"seq_length", std::to_string(c.seq_length)},
          {"max_position_embeddings", std::to_string(c.max_position_embeddings)},
          {"vocab_size", std::to_string(c.vocab_size)},
          {"padded_vocab_size", std::to_string(c.padded_vocab_size)},
          {"layernorm_epsilon", std::to_string(c.layernorm_epsilon)},
          {"normalization", c.normalization == NormKind::RMSNorm ? "RMSNorm" : "LayerNorm"},
          {"activation", c.activation == ActivationKind::SwiGlu      ? "swiglu"
                         : c.activation == ActivationKind::GeluExact ? "gelu_exact"
                         : c.activation == ActivationKind::QuickGelu ? "quick_gelu"
                                                                     : "gelu"},
          {"position_embedding_type", c.position_embedding == PositionKind::Rope   ? "rope"
                                      : c.position_embedding == PositionKind::None ? "none"
                                                                                   : "learned_absolute"},
          {"num_query_groups", std::to_string(c.query_groups())},
          {"kv_channels", std::to_string(c.head_dim())},
          {"add_bias_linear", c.add_bias_linear ? "1" : "0"},
          {"add_qkv_bias", c.add_qkv_bias ? "1" : "0"},
          {"tie_embeddings", c.tie_embeddings ? "1" : "0"},
          {"rotary_base", std::to_string(c.rope.base)},
          {"rotary_percent", std::to_string(c.rope.percent)},
          {"rotary_interleaved", c.rope.interleaved ? "1" : "0"},
          {"use_rope_scaling", c.rope.llama3_scaling ? "1" : "0"},
          {"rope_scaling_factor", std::to_string(c.rope.scaling_factor)},
          {"rope_low_freq_factor", std::to_string(c.rope.low_freq_factor)},
          {"rope_high_freq_factor", std::to_string(c.rope.high_freq_factor)},
          {"rope_original_max_position", std::to_string(c.rope.original_max_position)}};
  // Written only when set, so files of pre-norm models are as before.
  if (c.apply_residual_connection_post_layernorm) m["apply_residual_connection_post_layernorm"] = "1";
  return m;
}

ModelConfig model_config_from_metadata(const std::map<std::string, std::string>& meta, const std::string& path) {
  auto get = [&](const char* key) -> long {
    auto it = meta.find(key);
    if (it == meta.end()) fail(path + ": not a loom GPT weights file (metadata lacks '" + key + "')");
    try {
      return std::stol(it->second);
    } catch (...) {
      fail(path + ": metadata '" + key + "' is not a number");
    }
  };
  ModelConfig c;
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
  // Architecture fields (absent in files written before Llama existed: GPT's defaults).
  auto text = [&](const char* key, const char* otherwise) {
    auto it = meta.find(key);
    return it == meta.end() ? std::string(otherwise) : it->second;
  };
  auto number = [&](const char* key, double otherwise) {
    auto it = meta.find(key);
    if (it == meta.end()) return otherwise;
    try {
      return std::stod(it->second);
    } catch (...) {
      fail(path + ": metadata '" + key + "' is not a number");
    }
  };
  c.normalization = text("normalization", "LayerNorm") == "RMSNorm" ? NormKind::RMSNorm : NormKind::LayerNorm;
  const std::string act = text("activation", "gelu");
  c.activation = act == "swiglu"       ? ActivationKind::SwiGlu
                 : act == "gelu_exact" ? ActivationKind::GeluExact
                 : act == "quick_gelu" ? ActivationKind::QuickGelu
                                       : ActivationKind::Gelu;
  const std::string pos = text("position_embedding_type", "learned_absolute");
  c.position_embedding = pos == "rope" ? PositionKind::Rope : pos == "none" ? PositionKind::None : PositionKind::Learned;
  const int groups = int(number("num_query_groups", c.num_attention_heads));
  c.num_query_groups = groups == c.num_attention_heads ? 0 : groups;
  const int kv = int(number("kv_channels", c.hidden_size / std::max(1, c.num_attention_heads)));
  c.kv_channels = c.num_attention_heads > 0 && kv == c.hidden_size / c.num_attention_heads ? 0 : kv;
  c.add_bias_linear = number("add_bias_linear", 1) != 0;
  c.add_qkv_bias = number("add_qkv_bias", 1) != 0;
  c.tie_embeddings = number("tie_embeddings", 1) != 0;
  c.rope.base = number("rotary_base", 10000);
  c.rope.percent = number("rotary_percent", 1);
  c.rope.interleaved = number("rotary_interleaved", 0) != 0;
  c.rope.llama3_scaling = number("use_rope_scaling", 0) != 0;
  c.rope.scaling_factor = number("rope_scaling_factor", 8);
  c.rope.low_freq_factor = number("rope_low_freq_factor", 1);
  c.rope.high_freq_factor = number("rope_high_freq_factor", 4);
  c.rope.original_max_position = int(number("rope_original_max_position", 8192));
  c.apply_residual_connection_post_layernorm = number("apply_residual_connection_post_layernorm", 0) != 0;
  if (c.num_layers <= 0 || c.hidden_size <= 0 || c.num_attention_heads <= 0 ||
      (c.kv_channels == 0 && c.hidden_size % c.num_attention_heads != 0) || c.padded_vocab_size < c.vocab_size ||
      c.num_attention_heads % c.query_groups() != 0)
    fail(path + ": metadata describes an invalid model shape");
  return c;
}

ModelDifference model_difference(const std::map<std::string, std::string>& recorded, const ModelConfig& model) {
  const auto current = model_config_metadata(model);
  // Numbers as the metadata keeps them ("0.000010", "500000.000000") shown as %g: 1e-05, 500000.
  auto shown = [](const std::string& v) {
    char* end = nullptr;
    const double x = std::strtod(v.c_str(), &end);
    if (v.empty() || *end != '\0') return v;
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", x);
    return std::string(buf);
  };
  auto same = [&](const std::string& a, const std::string& b) {
    if (a == b) return true;
    char *ea = nullptr, *eb = nullptr;  // numbers written with another precision by older versions
    const double x = std::strtod(a.c_str(), &ea), y = std::strtod(b.c_str(), &eb);
    return !a.empty() && !b.empty() && *ea == '\0' && *eb == '\0' && x == y;
  };
  auto negated = [](const std::string& v) { return v == "1" ? std::string("0") : v == "0" ? std::string("1") : v; };
  auto swiglu = [](const std::string& v) { return std::string(v == "swiglu" ? "1" : "0"); };
  const bool rope = model.position_embedding == PositionKind::Rope, scaling = rope && model.rope.llama3_scaling;
  struct Field {
    const char* key;
    const char* flag;
    bool applies;  // only where the setting means something for `model`
  };
  const Field fields[] = {
      {"num_layers", "--num-layers", true},
      {"hidden_size", "--hidden-size", true},
      {"num_attention_heads", "--num-attention-heads", true},
      {"num_query_groups", "--num-query-groups", true},
      {"kv_channels", "--kv-channels", true},
      {"ffn_hidden_size", "--ffn-hidden-size", true},
      {"normalization", "--normalization", true},
      {"layernorm_epsilon", "--norm-epsilon", true},
      {"activation", "--swiglu", true},
      {"position_embedding_type", "--position-embedding-type", true},
      {"max_position_embeddings", "--max-position-embeddings", model.learned_positions()},
      {"vocab_size", "--vocab-size (the tokenizer's)", true},
      {"tie_embeddings", "--untie-embeddings-and-output-weights", true},
      {"add_bias_linear", "--disable-bias-linear", true},
      {"add_qkv_bias", "--add-qkv-bias", true},
      {"rotary_base", "--rotary-base", rope},
      {"rotary_percent", "--rotary-percent", rope},
      {"rotary_interleaved", "--rotary-interleaved", rope},
      {"use_rope_scaling", "--use-rope-scaling", rope},
      {"rope_scaling_factor", "--rope-scaling-factor", scaling},
      {"rope_low_freq_factor", "--rope-scaling-low-freq-factor", scaling},
      {"rope_high_freq_factor", "--rope-scaling-high-freq-factor", scaling},
      {"rope_original_max_position", "--rope-scaling-original-max-position-embeddings", scaling},
  };
  {  // absent: a pre-norm model (the key is written only when set)
    auto it = recorded.find("apply_residual_connection_post_layernorm");
    const std::string was = it == recorded.end() ? "0" : it->second;
    const std::string now = model.apply_residual_connection_post_layernorm ? "1" : "0";
    if (!same(was, now)) return {"--apply-residual-connection-post-layernorm", was, now};
  }
  for (const Field& f : fields) {
    auto it = recorded.find(f.key);
    if (!f.applies || it == recorded.end()) continue;
    const std::string& want = current.at(f.key);
    if (same(it->second, want)) continue;
    const std::string key = f.key;
    // Flags that switch a setting off read as 0/1 of the flag: --untie... 1 is an untied model.
    if (key == "tie_embeddings" || key == "add_bias_linear") return {f.flag, negated(it->second), negated(want)};
    if (key == "activation" && (it->second == "swiglu" || want == "swiglu"))
      return {f.flag, swiglu(it->second), swiglu(want)};
    if (key == "activation") return {"the activation", it->second, want};
    return {f.flag, shown(it->second), shown(want)};
  }
  return {};
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


void load_weights(const std::string& path, ParamStore& params, const ModelConfig* model) {
  SafetensorsFile file(path);
  if (model && file.metadata().count("format") && file.metadata().at("format") == "loom-gpt") {
    model_config_from_metadata(file.metadata(), path);  // a damaged record is refused as such
    const ModelDifference d = model_difference(file.metadata(), *model);
    if (!d.flag.empty())
      fail(path + " holds another model (" + d.flag + ": file " + d.recorded + ", flags " + d.current +
           "): give the flags it was made with (its metadata lists them)");
  }
  const int64_t vocab_size = model ? model->vocab_size : -1;
  // The vocabulary-sized tensors may be padded differently in the file (another make_vocab_size_divisible_by
  // x TP): when the file records the same tokenizer vocabulary, its real rows are read and the model's own
  // padding rows are zero.
  int64_t file_vocab = -1;
  if (auto it = file.metadata().find("vocab_size"); it != file.metadata().end()) {
    try {
      file_vocab = std::stoll(it->second);
    } catch (...) {
    }
  }
  for (auto& p : params.all()) {
    const TensorEntry& t = file.get(p.canonical_name());
    const auto& g = p.global_shape();
    const bool vocab_rows = (p.canonical_name() == "embedding.word_embeddings.weight" ||
                             p.canonical_name() == "output_layer.weight") &&
                            vocab_size > 0 && file_vocab == vocab_size && t.shape.size() == 2 && g.size() == 2 &&
                            t.shape[1] == g[1] && t.shape[0] >= vocab_size && g[0] >= vocab_size;
    if (t.shape != g && !vocab_rows)
      fail(path + ": tensor '" + p.name + "' has shape " + shape_to_string(t.shape) + " but the model needs " +
           shape_to_string(g) + " (weights of a different model shape?)");
    // Elements past the file's rows (or past the vocabulary, when re-padding) read as zero.
    const int64_t cols = g.size() == 2 ? g[1] : 1;
    const int64_t limit = t.shape == g ? shape_numel(g) : vocab_size * cols;
    auto guarded = [limit](auto convert) {
      return [limit, convert](const void* d, int64_t i) { return i < limit ? convert(d, i) : 0.f; };
    };
    switch (t.dtype) {
      case DType::F32:
        read_slice(p, t.data, guarded([](const void* d, int64_t i) {
          float v;
          std::memcpy(&v, static_cast<const char*>(d) + i * 4, 4);
          return v;
        }));
        break;
      case DType::BF16:
        read_slice(p, t.data,
                   guarded([](const void* d, int64_t i) { return bf16_to_f32(static_cast<const uint16_t*>(d)[i]); }));
        break;
      case DType::F16:
        read_slice(p, t.data,
                   guarded([](const void* d, int64_t i) { return f16_to_f32(static_cast<const uint16_t*>(d)[i]); }));
        break;
      default: fail(path + ": tensor '" + p.name + "' is not a floating-point tensor");
    }
  }
}

}  // namespace loom
