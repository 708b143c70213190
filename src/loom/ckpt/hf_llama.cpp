#include "loom/ckpt/hf_llama.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <vector>

#include "loom/ckpt/model_weights.h"
#include "loom/ckpt/safetensors.h"
#include "loom/core/error.h"
#include "loom/core/tensor.h"

namespace loom {

namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

json read_json(const std::string& path, const std::string& what) {
  std::ifstream f(path);
  if (!f) fail("cannot open " + path + " (" + what + ")");
  try {
    return json::parse(f);
  } catch (const json::exception& e) {
    fail(path + ": malformed JSON: " + e.what());
  }
}

// The HF config's fields, checked one by one.
struct HfConfig {
  const json& j;
  const std::string& path;
  bool has(const char* key) const { return j.contains(key) && !j[key].is_null(); }
  int64_t integer(const char* key, std::optional<int64_t> otherwise = {}) const {
    if (!has(key)) {
      if (otherwise) return *otherwise;
      fail(path + ": '" + key + "' is missing");
    }
    // Loom's config holds these as int: a larger value would wrap (to 0 for 2^32, then divide by it).
    if (!j[key].is_number_integer() || j[key].get<int64_t>() <= 0 || j[key].get<int64_t>() > INT32_MAX)
      fail(path + ": '" + key + "' must be a positive integer (at most 2147483647)");
    return j[key].get<int64_t>();
  }
  double number(const json& obj, const char* key, const std::string& where, std::optional<double> otherwise = {}) const {
    if (!obj.contains(key) || obj[key].is_null()) {
      if (otherwise) return *otherwise;
      fail(path + ": '" + where + key + "' is missing");
    }
    if (!obj[key].is_number()) fail(path + ": '" + where + key + "' must be a number");
    return obj[key].get<double>();
  }
  bool flag(const char* key, bool otherwise) const {
    if (!has(key)) return otherwise;
    if (!j[key].is_boolean()) fail(path + ": '" + key + "' must be true or false");
    return j[key].get<bool>();
  }
};

ModelConfig parse_llama_config(const std::string& path, int divisible_by) {
  const json j = read_json(path, "a Hugging Face model directory holds config.json");
  if (!j.is_object()) fail(path + ": malformed JSON: not an object");
  HfConfig h{j, path};
  if (h.has("architectures")) {
    const json& a = j["architectures"];
    bool llama = false;
    if (a.is_array())
      for (const auto& x : a) llama |= x.is_string() && x.get<std::string>() == "LlamaForCausalLM";
    if (!llama)
      fail(path + ": architectures " + a.dump() + " is not supported (loom imports LlamaForCausalLM)");
  } else if (!(j.contains("model_type") && j["model_type"] == "llama")) {
    fail(path + ": neither architectures nor model_type name a Llama (loom imports LlamaForCausalLM)");
  }
  if (h.has("hidden_act") && j["hidden_act"] != "silu")
    fail(path + ": hidden_act " + j["hidden_act"].dump() + " is not supported (Llama's is \"silu\")");
  const bool attention_bias = h.flag("attention_bias", false), mlp_bias = h.flag("mlp_bias", false);
  if (attention_bias != mlp_bias)
    fail(path + ": attention_bias and mlp_bias differ; Loom's linear biases are all or none (Megatron's "
                "--disable-bias-linear)");
  if (h.has("partial_rotary_factor") && h.number(j, "partial_rotary_factor", "") != 1.0)
    fail(path + ": partial_rotary_factor other than 1 is not supported");

  ModelConfig c;
  c.num_layers = int(h.integer("num_hidden_layers"));
  c.hidden_size = int(h.integer("hidden_size"));
  c.num_attention_heads = int(h.integer("num_attention_heads"));
  const int groups = int(h.integer("num_key_value_heads", c.num_attention_heads));
  if (c.num_attention_heads % groups)
    fail(path + ": num_key_value_heads (" + std::to_string(groups) + ") must divide num_attention_heads (" +
         std::to_string(c.num_attention_heads) + ")");
  c.num_query_groups = groups == c.num_attention_heads ? 0 : groups;
  if (!h.has("head_dim") && c.hidden_size % c.num_attention_heads)
    fail(path + ": hidden_size is not divisible by num_attention_heads and head_dim is not given");
  const int head_dim = int(h.integer("head_dim", c.hidden_size / c.num_attention_heads));
  c.kv_channels = head_dim == c.hidden_size / c.num_attention_heads ? 0 : head_dim;
  if (head_dim % 2) fail(path + ": head_dim must be even for rotary embeddings");
  c.ffn_hidden_size = int(h.integer("intermediate_size"));
  c.max_position_embeddings = int(h.integer("max_position_embeddings", 2048));
  // config.json records no training length: generation and metadata take up to 4096 tokens by default.
  c.seq_length = std::min(c.max_position_embeddings, 4096);
  c.vocab_size = int(h.integer("vocab_size"));
  c.padded_vocab_size = int(padded_vocab(c.vocab_size, divisible_by, 1));
  c.normalization = NormKind::RMSNorm;
  c.layernorm_epsilon = float(h.number(j, "rms_norm_eps", "", 1e-6));
  c.activation = ActivationKind::SwiGlu;
  c.position_embedding = PositionKind::Rope;
  c.rope.base = h.number(j, "rope_theta", "", 10000.0);
  if (c.rope.base <= 0) fail(path + ": rope_theta must be positive");
  c.add_bias_linear = attention_bias;  // q/k/v/o and gate/up/down together, as Megatron's add_bias_linear
  c.add_qkv_bias = attention_bias;
  c.tie_embeddings = h.flag("tie_word_embeddings", true);  // LlamaConfig's default
  if (h.has("initializer_range")) c.init_method_std = float(h.number(j, "initializer_range", ""));
  if (h.has("rope_scaling")) {
    const json& rs = j["rope_scaling"];
    if (!rs.is_object()) fail(path + ": rope_scaling must be an object or null");
    const json& kind = rs.contains("rope_type") ? rs["rope_type"] : rs.contains("type") ? rs["type"] : json();
    if (!kind.is_string()) fail(path + ": rope_scaling has no rope_type");
    const std::string type = kind.get<std::string>();
    if (type == "llama3") {
      c.rope.llama3_scaling = true;
      c.rope.scaling_factor = h.number(rs, "factor", "rope_scaling.");
      c.rope.low_freq_factor = h.number(rs, "low_freq_factor", "rope_scaling.");
      c.rope.high_freq_factor = h.number(rs, "high_freq_factor", "rope_scaling.");
      const double original = h.number(rs, "original_max_position_embeddings", "rope_scaling.");
      c.rope.original_max_position = original >= 1 && original <= INT32_MAX ? int(original) : 0;  // no UB cast
      if (c.rope.scaling_factor < 1 || c.rope.high_freq_factor <= c.rope.low_freq_factor ||
          c.rope.original_max_position <= 0)
        fail(path + ": rope_scaling needs factor >= 1, high_freq_factor > low_freq_factor and a positive "
                    "original_max_position_embeddings");
    } else if (type != "default") {
      fail(path + ": rope_scaling rope_type '" + type + "' is not supported (loom has llama3 and default)");
    }
  }
  return c;
}

// The HF checkpoint's tensors, from one file or the shards of an index.
class HfTensors {
 public:
  explicit HfTensors(const std::string& dir) {
    const fs::path single = fs::path(dir) / "model.safetensors", index = fs::path(dir) / "model.safetensors.index.json";
    if (fs::is_regular_file(index)) {
      listing_ = index.string();
      const json j = read_json(listing_, "the shard index");
      if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
        fail(listing_ + ": no weight_map object");
      std::map<std::string, const SafetensorsFile*> opened;
      for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
        if (!it->is_string()) fail(listing_ + ": weight_map['" + it.key() + "'] is not a file name");
        const std::string file = it->get<std::string>();
        if (file.empty() || fs::path(file).is_absolute() || file.find("..") != std::string::npos)
          fail(listing_ + ": weight_map['" + it.key() + "'] names '" + file + "', not a file of this directory");
        auto& f = opened[file];
        if (!f) {
          files_.push_back(std::make_unique<SafetensorsFile>((fs::path(dir) / file).string()));
          f = files_.back().get();
        }
        const TensorEntry* t = f->find(it.key());
        if (!t) fail(f->path() + ": no tensor named '" + it.key() + "' (the index places it there)");
        tensors_[it.key()] = {t, f};
      }
    } else if (fs::is_regular_file(single)) {
      listing_ = single.string();
      files_.push_back(std::make_unique<SafetensorsFile>(listing_));
      for (const auto& t : files_.back()->tensors()) tensors_[t.name] = {&t, files_.back().get()};
    } else {
      fail("no " + single.string() + " or " + index.string() + " (the Hugging Face model's weights)");
    }
  }

  const TensorEntry& get(const std::string& name, const std::vector<int64_t>& shape) {
    auto it = tensors_.find(name);
    if (it == tensors_.end()) fail(listing_ + ": no tensor named '" + name + "' (config.json's model needs it)");
    const TensorEntry& t = *it->second.entry;
    if (t.shape != shape)
      fail(it->second.file->path() + ": tensor '" + name + "' has shape " + shape_to_string(t.shape) +
           " but config.json implies " + shape_to_string(shape));
    used_.insert(name);
    return t;
  }
  bool contains(const std::string& name) const { return tensors_.count(name) > 0; }
  void skip(const std::string& name) { used_.insert(name); }
  // Every tensor must have found its place: a leftover is a weight the model would silently drop.
  void check_all_used() const {
    for (const auto& [name, where] : tensors_) {
      if (used_.count(name) || name.ends_with("rotary_emb.inv_freq")) continue;
      fail(where.file->path() + ": tensor '" + name + "' has no place in the Llama config.json describes");
    }
  }

 private:
  struct Where {
    const TensorEntry* entry;
    const SafetensorsFile* file;
  };
  std::string listing_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, Where> tensors_;
  std::set<std::string> used_;
};

float element_f32(DType t, const char* p) {
  float v;
  switch (t) {
    case DType::F32: std::memcpy(&v, p, 4); return v;
    case DType::BF16: {
      uint16_t u;
      std::memcpy(&u, p, 2);
      return bf16_to_f32(u);
    }
    case DType::F16: {
      uint16_t u;
      std::memcpy(&u, p, 2);
      return f16_to_f32(u);
    }
    default: throw std::logic_error("not a floating-point dtype");
  }
}

// One output tensor, assembled from row ranges of HF tensors, in their dtype when they share one (fusing
// and padding change no value) and fp32 otherwise.
struct Assembled {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  std::vector<char> data;

  void append_rows(const TensorEntry& t, int64_t first, int64_t count) {
    const int64_t cols = t.shape.size() == 2 ? t.shape[1] : 1;
    const size_t es = dtype_size(t.dtype);
    const char* src = static_cast<const char*>(t.data) + size_t(first * cols) * es;
    const size_t n = size_t(count * cols);
    if (t.dtype == dtype) {
      data.insert(data.end(), src, src + n * es);
      return;
    }
    const size_t at = data.size();
    data.resize(at + n * 4);
    for (size_t i = 0; i < n; i++) {
      const float v = element_f32(t.dtype, src + i * es);
      std::memcpy(data.data() + at + i * 4, &v, 4);
    }
  }
  void append_zero_rows(int64_t count, int64_t cols) { data.resize(data.size() + size_t(count * cols) * dtype_size(dtype)); }
};

DType common_dtype(std::initializer_list<const TensorEntry*> ts) {
  const DType first = (*ts.begin())->dtype;
  for (const TensorEntry* t : ts)
    if (t->dtype != first) return DType::F32;
  return first;
}

// The shortest decimal that reads back as the same float (1e-05, not 9.99999974737875e-06).
double shortest(float v) {
  char buf[32];
  for (int p = 1; p < 10; p++) {
    std::snprintf(buf, sizeof buf, "%.*g", p, double(v));
    if (std::strtof(buf, nullptr) == v) break;
  }
  return std::strtod(buf, nullptr);
}

}  // namespace

ModelConfig import_hf_llama(const std::string& dir, const std::string& output, int divisible_by) {
  if (!fs::is_directory(dir)) fail("--from hf: " + dir + " is not a directory (a Hugging Face model: config.json + safetensors)");
  if (fs::is_directory(output)) fail("--output " + output + " is a directory; give the .safetensors file to write");
  const ModelConfig c = parse_llama_config((fs::path(dir) / "config.json").string(), divisible_by);
  HfTensors hf(dir);
  const int64_t h = c.hidden_size, f = c.ffn_hidden_size, V = c.vocab_size, Vp = c.padded_vocab_size;
  const int64_t H = c.num_attention_heads, G = c.query_groups(), D = c.head_dim(), r = H / G;
  std::vector<Assembled> out;
  auto copy = [&](const std::string& ours, const std::string& theirs, std::vector<int64_t> shape) {
    const TensorEntry& t = hf.get(theirs, shape);
    Assembled a{ours, t.dtype, shape, {}};
    a.append_rows(t, 0, shape[0]);
    out.push_back(std::move(a));
  };
  auto vocab = [&](const std::string& ours, const std::string& theirs) {
    const TensorEntry& t = hf.get(theirs, {V, h});
    Assembled a{ours, t.dtype, {Vp, h}, {}};
    a.append_rows(t, 0, V);
    a.append_zero_rows(Vp - V, h);
    out.push_back(std::move(a));
  };
  // In Loom's parameter order (the flat buffer's): embedding, blocks, final norm, output layer.
  vocab("embedding.word_embeddings.weight", "model.embed_tokens.weight");
  for (int i = 0; i < c.num_layers; i++) {
    const std::string ours = "decoder.layers." + std::to_string(i) + ".", theirs = "model.layers." + std::to_string(i) + ".";
    copy(ours + "input_layernorm.weight", theirs + "input_layernorm.weight", {h});
    // Weights (and biases, HF's attention_bias/mlp_bias) in the store's order: each linear's weight, then its bias.
    auto fused_qkv = [&](const std::string& kind, std::vector<int64_t> tail) {
      auto shape = [&](int64_t rows) { std::vector<int64_t> s{rows}; s.insert(s.end(), tail.begin(), tail.end()); return s; };
      const TensorEntry& q = hf.get(theirs + "self_attn.q_proj." + kind, shape(H * D));
      const TensorEntry& k = hf.get(theirs + "self_attn.k_proj." + kind, shape(G * D));
      const TensorEntry& v = hf.get(theirs + "self_attn.v_proj." + kind, shape(G * D));
      Assembled qkv{ours + "self_attention.linear_qkv." + kind, common_dtype({&q, &k, &v}), shape(c.qkv_width()), {}};
      for (int64_t g = 0; g < G; g++) {  // Megatron's per-group layout: [q of the group's heads, k_g, v_g]
        qkv.append_rows(q, g * r * D, r * D);
        qkv.append_rows(k, g * D, D);
        qkv.append_rows(v, g * D, D);
      }
      out.push_back(std::move(qkv));
    };
    auto linear = [&](const std::string& our_name, const std::string& their_name, int64_t rows, int64_t cols) {
      copy(ours + our_name + ".weight", theirs + their_name + ".weight", {rows, cols});
      if (c.add_bias_linear) copy(ours + our_name + ".bias", theirs + their_name + ".bias", {rows});
    };
    fused_qkv("weight", {h});
    if (c.add_bias_linear) fused_qkv("bias", {});
    linear("self_attention.linear_proj", "self_attn.o_proj", h, H * D);
    copy(ours + "pre_mlp_layernorm.weight", theirs + "post_attention_layernorm.weight", {h});
    linear("mlp.linear_fc1_gate", "mlp.gate_proj", f, h);
    linear("mlp.linear_fc1_up", "mlp.up_proj", f, h);
    linear("mlp.linear_fc2", "mlp.down_proj", h, f);
  }
  copy("decoder.final_layernorm.weight", "model.norm.weight", {h});
  if (!c.tie_embeddings) vocab("output_layer.weight", "lm_head.weight");
  else if (hf.contains("lm_head.weight")) hf.skip("lm_head.weight");  // a saved copy of the tied embedding
  hf.check_all_used();

  std::vector<TensorEntry> entries;
  for (const auto& a : out) entries.push_back({a.name, a.dtype, a.shape, a.data.data(), a.data.size()});
  auto meta = model_config_metadata(c);
  meta["source"] = "hf " + fs::absolute(dir).string();
  write_safetensors(output, entries, meta);  // to a temporary name, renamed when complete
  return c;
}

bool is_llama_config(const ModelConfig& c) {
  return c.normalization == NormKind::RMSNorm && c.gated_mlp() && c.position_embedding == PositionKind::Rope;
}

void export_hf_llama(const DecoderModel& model, const std::string& dir) {
  const ModelConfig& c = model.config();
  if (model.tensor_parallel().active()) throw std::logic_error("export needs the full model on one process");
  if (!is_llama_config(c))
    fail("this model is not a Llama (RMSNorm, SwiGLU and RoPE): no Hugging Face Llama form");
  if (c.add_qkv_bias != c.add_bias_linear)
    fail("this model has q/k/v biases only (--add-qkv-bias): Hugging Face's Llama has no such form");
  if (c.apply_residual_connection_post_layernorm)
    fail("this model takes its residuals after the norms (--apply-residual-connection-post-layernorm): no Hugging "
         "Face Llama form");
  if (c.rope.percent != 1.0) fail("this model rotates part of each head (--rotary-percent): no Hugging Face Llama form");
  const int64_t h = c.hidden_size, f = c.ffn_hidden_size, V = c.vocab_size;
  const int64_t H = c.num_attention_heads, G = c.query_groups(), D = c.head_dim(), r = H / G;
  auto param = [&](const std::string& name) -> const Param& {
    const Param* p = const_cast<ParamStore&>(model.params()).find(name);
    if (!p) throw std::logic_error("export: no parameter " + name);
    return *p;
  };
  // Rotate-half pairs (j, j + D/2); --rotary-interleaved pairs (2i, 2i+1) with frequency i: HF's row j of a
  // head is Loom's row 2j, its row D/2 + j Loom's 2j + 1 (same permutation of q and k: the same scores).
  std::vector<int64_t> head_rows(static_cast<size_t>(D));
  for (int64_t j = 0; j < D; j++) head_rows[size_t(j)] = !c.rope.interleaved ? j : j < D / 2 ? 2 * j : 2 * (j - D / 2) + 1;
  std::vector<std::vector<float>> keep;
  keep.reserve(size_t(4 + 16 * c.num_layers));
  std::vector<TensorEntry> entries;
  auto add = [&](const std::string& name, std::vector<int64_t> shape, std::vector<float> data) {
    keep.push_back(std::move(data));
    entries.push_back({name, DType::F32, std::move(shape), keep.back().data(), keep.back().size() * 4});
  };
  auto rows = [&](const Param& p, int64_t first, int64_t count) {  // rows [first, first + count) of a 2-D parameter
    const int64_t cols = p.shape.size() == 2 ? p.shape[1] : 1;
    return std::vector<float>(p.value.f32() + first * cols, p.value.f32() + (first + count) * cols);
  };
  auto copy = [&](const std::string& hf, const std::string& ours) {
    const Param& p = param(ours);
    add(hf, p.shape, rows(p, 0, p.shape[0]));
  };
  add("model.embed_tokens.weight", {V, h}, rows(param("embedding.word_embeddings.weight"), 0, V));
  for (int i = 0; i < c.num_layers; i++) {
    const std::string ours = "decoder.layers." + std::to_string(i) + ".", hf = "model.layers." + std::to_string(i) + ".";
    // q/k/v out of the fused parameter (its weight, then its bias: both rows of the same heads, permuted alike).
    auto split_qkv = [&](const std::string& kind) {
      const Param& qkv = param(ours + "self_attention.linear_qkv." + kind);
      std::vector<float> q, k, v;
      auto head = [&](std::vector<float>& dst, int64_t first_row, bool rotary) {
        for (int64_t j = 0; j < D; j++) {
          const auto row = rows(qkv, first_row + (rotary ? head_rows[size_t(j)] : j), 1);
          dst.insert(dst.end(), row.begin(), row.end());
        }
      };
      for (int64_t g = 0; g < G; g++) {
        const int64_t base = g * (r + 2) * D;
        for (int64_t n = 0; n < r; n++) head(q, base + n * D, true);
        head(k, base + r * D, true);
        head(v, base + (r + 1) * D, false);
      }
      auto shape = [&](int64_t n) { return kind == "weight" ? std::vector<int64_t>{n, h} : std::vector<int64_t>{n}; };
      add(hf + "self_attn.q_proj." + kind, shape(H * D), std::move(q));
      add(hf + "self_attn.k_proj." + kind, shape(G * D), std::move(k));
      add(hf + "self_attn.v_proj." + kind, shape(G * D), std::move(v));
    };
    auto linear = [&](const std::string& their_name, const std::string& our_name) {
      copy(hf + their_name + ".weight", ours + our_name + ".weight");
      if (c.add_bias_linear) copy(hf + their_name + ".bias", ours + our_name + ".bias");
    };
    copy(hf + "input_layernorm.weight", ours + "input_layernorm.weight");
    split_qkv("weight");
    if (c.add_bias_linear) split_qkv("bias");
    linear("self_attn.o_proj", "self_attention.linear_proj");
    copy(hf + "post_attention_layernorm.weight", ours + "pre_mlp_layernorm.weight");
    linear("mlp.gate_proj", "mlp.linear_fc1_gate");
    linear("mlp.up_proj", "mlp.linear_fc1_up");
    linear("mlp.down_proj", "mlp.linear_fc2");
  }
  copy("model.norm.weight", "decoder.final_layernorm.weight");
  if (!c.tie_embeddings) add("lm_head.weight", {V, h}, rows(param("output_layer.weight"), 0, V));

  json rope_scaling = nullptr;
  if (c.rope.llama3_scaling)
    rope_scaling = {{"rope_type", "llama3"},
                    {"factor", c.rope.scaling_factor},
                    {"low_freq_factor", c.rope.low_freq_factor},
                    {"high_freq_factor", c.rope.high_freq_factor},
                    {"original_max_position_embeddings", c.rope.original_max_position}};
  nlohmann::ordered_json cfg = {{"architectures", {"LlamaForCausalLM"}},
                                {"model_type", "llama"},
                                {"vocab_size", V},
                                {"hidden_size", h},
                                {"intermediate_size", f},
                                {"num_hidden_layers", c.num_layers},
                                {"num_attention_heads", H},
                                {"num_key_value_heads", G},
                                {"head_dim", D},
                                {"hidden_act", "silu"},
                                {"max_position_embeddings", c.max_position_embeddings},
                                {"rms_norm_eps", shortest(c.layernorm_epsilon)},
                                {"rope_theta", c.rope.base},
                                {"rope_scaling", rope_scaling},
                                {"tie_word_embeddings", c.tie_embeddings},
                                {"attention_bias", c.add_bias_linear},
                                {"mlp_bias", c.add_bias_linear},
                                {"attention_dropout", 0.0},
                                {"initializer_range", shortest(c.init_method_std)},
                                {"torch_dtype", "float32"}};
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) fail("cannot create " + dir + ": " + ec.message());
  write_safetensors((fs::path(dir) / "model.safetensors").string(), entries, {{"format", "pt"}});
  write_file_atomic((fs::path(dir) / "config.json").string(), cfg.dump(2) + "\n");
}

}  // namespace loom
