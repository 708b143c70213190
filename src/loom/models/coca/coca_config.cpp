#include "loom/models/coca/coca_config.h"

#include <string>

#include "loom/core/error.h"

namespace loom {

CocaConfig coca_b16_config() { return CocaConfig{}; }

int64_t CocaParamSpec::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

namespace {

struct SpecList {
  std::vector<CocaParamSpec>& out;
  std::string tower;
  void add(const std::string& name, std::vector<int64_t> shape) { out.push_back({name, std::move(shape), tower}); }
  void layer_norm(const std::string& prefix, int64_t width) {
    add(prefix + ".weight", {width});
    add(prefix + ".bias", {width});
  }
  void linear(const std::string& prefix, int64_t out_features, int64_t in_features, bool bias = true) {
    add(prefix + ".weight", {out_features, in_features});
    if (bias) add(prefix + ".bias", {out_features});
  }
};

// EVA's Attention registers q_proj, k_proj, v_proj (no bias) before its own q_bias and v_bias, but
// named_parameters() yields a module's own parameters first.
void eva_block(SpecList& s, const std::string& p, const EvaVisionConfig& v) {
  s.layer_norm(p + ".norm1", v.width);
  s.add(p + ".attn.q_bias", {v.width});
  s.add(p + ".attn.v_bias", {v.width});
  s.linear(p + ".attn.q_proj", v.width, v.width, false);
  s.linear(p + ".attn.k_proj", v.width, v.width, false);
  s.linear(p + ".attn.v_proj", v.width, v.width, false);
  s.layer_norm(p + ".attn.inner_attn_ln", v.width);
  s.linear(p + ".attn.proj", v.width, v.width);
  s.layer_norm(p + ".norm2", v.width);
  s.linear(p + ".mlp.w1", v.mlp_hidden, v.width);
  s.linear(p + ".mlp.w2", v.mlp_hidden, v.width);
  s.layer_norm(p + ".mlp.ffn_ln", v.mlp_hidden);
  s.linear(p + ".mlp.w3", v.width, v.mlp_hidden);
}

// open_clip's ResidualAttentionBlock: ln_1, attn (packed in_proj), [ln_1_kv for cross attention], ln_2,
// mlp (c_fc, GELU, c_proj).
void clip_block(SpecList& s, const std::string& p, int64_t width, int64_t mlp_hidden, bool cross) {
  s.layer_norm(p + ".ln_1", width);
  s.add(p + ".attn.in_proj_weight", {3 * width, width});
  s.add(p + ".attn.in_proj_bias", {3 * width});
  s.linear(p + ".attn.out_proj", width, width);
  if (cross) s.layer_norm(p + ".ln_1_kv", width);
  s.layer_norm(p + ".ln_2", width);
  s.linear(p + ".mlp.c_fc", mlp_hidden, width);
  s.linear(p + ".mlp.c_proj", width, mlp_hidden);
}

// nn.MultiheadAttention: separate q/k/v weights when kdim != embed_dim, else one packed in_proj_weight.
void pooler(SpecList& s, const std::string& p, int64_t queries, int64_t d_model, int64_t context_dim) {
  s.add(p + ".query", {queries, d_model});
  if (context_dim != d_model) {
    s.add(p + ".attn.q_proj_weight", {d_model, d_model});
    s.add(p + ".attn.k_proj_weight", {d_model, context_dim});
    s.add(p + ".attn.v_proj_weight", {d_model, context_dim});
  } else {
    s.add(p + ".attn.in_proj_weight", {3 * d_model, d_model});
  }
  s.add(p + ".attn.in_proj_bias", {3 * d_model});
  s.linear(p + ".attn.out_proj", d_model, d_model);
  s.layer_norm(p + ".ln_q", d_model);
  s.layer_norm(p + ".ln_k", context_dim);
}

}  // namespace

std::vector<CocaParamSpec> coca_parameter_specs(const CocaConfig& cfg) {
  std::vector<CocaParamSpec> out;
  const EvaVisionConfig& v = cfg.vision;
  const int64_t d = cfg.embed_dim;
  {
    SpecList s{out, "visual"};
    s.add("visual.cls_token", {1, 1, v.width});
    s.add("visual.pos_embed", {1, v.tokens(), v.width});
    s.add("visual.proj", {d, d});
    s.add("visual.patch_embed.proj.weight", {v.width, 3, v.patch_size, v.patch_size});
    s.add("visual.patch_embed.proj.bias", {v.width});
    for (int i = 0; i < v.layers; ++i) eva_block(s, "visual.blocks." + std::to_string(i), v);
    pooler(s, "visual.attn_pool", cfg.pooler.queries, d, v.width);
    pooler(s, "visual.attn_pool_contrastive", 1, d, d);
    s.layer_norm("visual.ln_post", d);
  }
  {
    const ClipTextConfig& t = cfg.text;
    SpecList s{out, "text"};
    s.add("text.positional_embedding", {t.context_length, t.width});
    s.add("text.text_projection", {t.width, d});
    s.add("text.token_embedding.weight", {t.vocab_size, t.width});
    for (int i = 0; i < t.layers; ++i)
      clip_block(s, "text.transformer.resblocks." + std::to_string(i), t.width, t.mlp_hidden, false);
    s.layer_norm("text.ln_final", t.width);
  }
  {
    const CocaDecoderConfig& m = cfg.decoder;
    SpecList s{out, "text_decoder"};
    s.add("text_decoder.text_projection", {m.width, m.vocab_size});
    for (int i = 0; i < m.layers; ++i)
      clip_block(s, "text_decoder.resblocks." + std::to_string(i), m.width, m.mlp_hidden, false);
    for (int i = 0; i < m.layers; ++i)
      clip_block(s, "text_decoder.cross_attn." + std::to_string(i), m.width, m.mlp_hidden, true);
    s.layer_norm("text_decoder.ln_final", m.width);
  }
  out.push_back({"logit_scale", {}, "other"});
  return out;
}

CocaParamCounts coca_parameter_counts(const CocaConfig& cfg) {
  CocaParamCounts c;
  for (const CocaParamSpec& p : coca_parameter_specs(cfg)) {
    const int64_t n = p.numel();
    c.total += n;
    if (p.tower == "visual") c.visual += n;
    else if (p.tower == "text") c.text += n;
    else if (p.tower == "text_decoder") c.text_decoder += n;
    else c.other += n;
  }
  return c;
}

void validate_coca_config(const CocaConfig& cfg) {
  const EvaVisionConfig& v = cfg.vision;
  auto positive = [](int x, const char* flag) {
    if (x <= 0) throw UserError(std::string(flag) + " must be positive (got " + std::to_string(x) + ")");
  };
  positive(v.image_size, "--image-size");
  positive(v.patch_size, "--patch-size");
  positive(v.width, "--vision-width");
  positive(v.layers, "--vision-layers");
  positive(v.heads, "--vision-heads");
  positive(v.mlp_hidden, "--vision-mlp-hidden");
  positive(cfg.text.width, "--text-width");
  positive(cfg.text.layers, "--text-layers");
  positive(cfg.text.heads, "--text-heads");
  positive(cfg.text.context_length, "--text-context-length");
  positive(cfg.text.vocab_size, "--text-vocab-size");
  positive(cfg.decoder.layers, "--decoder-layers");
  positive(cfg.decoder.heads, "--decoder-heads");
  positive(cfg.pooler.queries, "--pooler-queries");
  positive(cfg.pooler.heads, "--pooler-heads");
  positive(cfg.embed_dim, "--embed-dim");
  if (v.image_size % v.patch_size != 0)
    throw UserError("--image-size " + std::to_string(v.image_size) + " is not divisible by --patch-size " +
                    std::to_string(v.patch_size));
  if (v.width % v.heads != 0)
    throw UserError("--vision-width " + std::to_string(v.width) + " is not divisible by --vision-heads " +
                    std::to_string(v.heads));
  // 2D RoPE: half of each head's channels per image axis, rotated in pairs.
  if (v.head_dim() % 4 != 0)
    throw UserError("the vision head width (--vision-width / --vision-heads = " + std::to_string(v.head_dim()) +
                    ") must be a multiple of 4 for 2D RoPE");
  if (cfg.text.width % cfg.text.heads != 0)
    throw UserError("--text-width " + std::to_string(cfg.text.width) + " is not divisible by --text-heads " +
                    std::to_string(cfg.text.heads));
  if (cfg.decoder.width != cfg.text.width)
    throw UserError("the decoder width must equal --text-width (it reads the text tower's tokens)");
  if (cfg.decoder.width % cfg.decoder.heads != 0)
    throw UserError("the decoder width " + std::to_string(cfg.decoder.width) + " is not divisible by --decoder-heads " +
                    std::to_string(cfg.decoder.heads));
  if (cfg.embed_dim != cfg.decoder.width)
    throw UserError("--embed-dim must equal the decoder width (the pooled image tokens are its cross-attention context)");
  if (cfg.embed_dim % cfg.pooler.heads != 0)
    throw UserError("--embed-dim " + std::to_string(cfg.embed_dim) + " is not divisible by --pooler-heads " +
                    std::to_string(cfg.pooler.heads));
  if (cfg.decoder.vocab_size != cfg.text.vocab_size)
    throw UserError("the decoder vocabulary must equal the text tower's");
}

}  // namespace loom
