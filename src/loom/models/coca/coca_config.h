#pragma once
// The shape of a CoCa image-text model as the EVA-CLIP run of reference log 000 builds it (open_clip's
// CoCa with an EVA-02 vision tower): an EVA-02 ViT, two attentional poolers, a CLIP text transformer and a
// multimodal caption decoder, plus one learnable logit scale. Shape only: what parameters exist and what
// the towers compute; runtime choices (recompute, precision) live with the training run.
//
// Parameter names are the open_clip / EVA-CLIP state-dict names (visual.blocks.3.attn.q_bias,
// text.transformer.resblocks.0.attn.in_proj_weight, text_decoder.cross_attn.2.ln_1_kv.weight, ...), so
// EVA-CLIP's parameter-group rules (tower by prefix, layer id by block index, no decay by name) apply to
// them unchanged and a checkpoint maps one to one. coca_parameter_specs() lists them in the order of
// PyTorch's named_parameters() per tower (a module's own parameters before its submodules'), which is
// the order EVA-CLIP creates its parameter groups in; the towers register exactly these, in this order.
#include <cstdint>
#include <string>
#include <vector>

namespace loom {

// EVA-02 ViT (EVAVisionTransformer with subln, SwiGLU, 2D RoPE, xattn): patch embedding (a convolution
// with stride = kernel = patch, done as a GEMM), CLS token, absolute position embedding, pre-norm blocks.
struct EvaVisionConfig {
  int image_size = 224;
  int patch_size = 16;
  int width = 768;
  int layers = 12;
  int heads = 12;
  int mlp_hidden = 2048;       // SwiGLU hidden size (w1, w2: width -> mlp_hidden; w3 back)
  float ln_eps = 1e-6f;        // every LayerNorm of the tower (norm1, norm2, inner_attn_ln, ffn_ln)
  double rope_base = 10000.0;  // 2D RoPE on patch tokens (not CLS), EVA's interleaved rotate-half
  int rope_pt_grid = 16;       // EVA's pt_seq_len: positions are scaled by rope_pt_grid / grid (intp_freq)
  int grid() const { return image_size / patch_size; }
  int num_patches() const { return grid() * grid(); }
  int tokens() const { return num_patches() + 1; }  // CLS first
  int head_dim() const { return width / heads; }
};

// OpenAI CLIP's text transformer (open_clip TextTransformer without cls_emb): token + position embedding,
// causal pre-norm blocks (packed in_proj, exact GELU), ln_final, pooling at the EOT token (the argmax of
// the token ids), text_projection.
struct ClipTextConfig {
  int vocab_size = 49408;
  int context_length = 77;
  int width = 512;
  int layers = 12;
  int heads = 8;
  int mlp_hidden = 2048;
  float ln_eps = 1e-5f;
  int pad_id = 0;  // CLIP's tokenizer pads with 0; the caption loss ignores it
};

// open_clip's MultimodalTransformer: per layer a causal self-attention block (resblocks.i) then a
// cross-attention block (cross_attn.i, its own ln_1_kv on the image tokens), ln_final, and a vocabulary
// projection text_projection [width, vocab]. It reads the text tower's output tokens.
struct CocaDecoderConfig {
  int layers = 12;
  int width = 512;
  int heads = 8;
  int mlp_hidden = 2048;
  float ln_eps = 1e-5f;
  int vocab_size = 49408;
};

// open_clip's AttentionalPooler: `queries` learned queries (LayerNorm ln_q) attend over a context
// (LayerNorm ln_k) with nn.MultiheadAttention(d_model, heads, kdim = vdim = context width).
struct AttnPoolerConfig {
  int queries = 256;  // attn_pool: the decoder's image tokens; attn_pool_contrastive has 1 query over them
  int heads = 8;
  float ln_eps = 1e-5f;
};

struct CocaConfig {
  EvaVisionConfig vision;
  ClipTextConfig text;
  CocaDecoderConfig decoder;
  AttnPoolerConfig pooler;
  int embed_dim = 512;          // contrastive embedding, pooler width (= decoder width)
  float ln_post_eps = 1e-6f;    // visual.ln_post (EVA's FusedLayerNorm)
  double init_logit_scale = 2.659260036932778;  // ln(1 / 0.07); clamped to [0, ln 100] after each step
  float contrastive_loss_weight = 1.0f;
  float caption_loss_weight = 2.0f;
};

// Log 000's CoCa-B/16: EVA02-B/16 vision tower, OpenAI CLIP-B/16 text tower, 12-layer decoder.
CocaConfig coca_b16_config();

struct CocaParamSpec {
  std::string name;            // open_clip / EVA-CLIP name
  std::vector<int64_t> shape;  // PyTorch's shape
  std::string tower;           // "visual", "text", "text_decoder" or "other" (logit_scale)
  int64_t numel() const;
};

// Every parameter, per tower in named_parameters() order: visual, text, text_decoder, then logit_scale.
std::vector<CocaParamSpec> coca_parameter_specs(const CocaConfig& cfg);

struct CocaParamCounts {
  int64_t total = 0, visual = 0, text = 0, text_decoder = 0, other = 0;
};
CocaParamCounts coca_parameter_counts(const CocaConfig& cfg);

// Throws UserError when the shape cannot be built (image size not divisible by the patch size, width not
// divisible by the heads, odd head width for RoPE, ...), naming the flag.
void validate_coca_config(const CocaConfig& cfg);

}  // namespace loom
