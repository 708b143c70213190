#pragma once
// The shape of a transformer, as Megatron-Core's TransformerConfig: everything that decides which
// parameters exist and what the layers compute. GPT and Llama are two settings of it (Llama is GPT with
// RMSNorm, SwiGLU, RoPE, grouped-query attention, no linear biases and an untied output layer), so both
// are built from the same layers. Runtime choices that do not change the weights (activation recompute,
// how activations are stored) are in ModelConfig, beside the shape.
#include <cstdint>
#include <string>

#include "loom/core/dtype.h"

namespace loom {

enum class NormKind { LayerNorm, RMSNorm };
// gelu: the tanh approximation (Megatron's bias_gelu); gelu_exact: erf; quick_gelu: x sigmoid(1.702 x)
// (OpenAI CLIP); swiglu: silu(x W_gate) * (x W_up), fc1 producing both halves.
enum class ActivationKind { Gelu, GeluExact, QuickGelu, SwiGlu };
enum class PositionKind { Learned, Rope, None };

// Rotary position embedding (--position-embedding-type rope). Llama 3's frequency scaling
// (--use-rope-scaling) stretches the low frequencies by `factor` and blends between the two bands.
struct RopeConfig {
  double base = 10000.0;      // --rotary-base
  double percent = 1.0;       // --rotary-percent: the fraction of each head's channels rotated
  bool interleaved = false;   // pairs (2i, 2i+1) instead of Megatron's rotate-half (i, i + d/2)
  bool llama3_scaling = false;
  double scaling_factor = 8.0, low_freq_factor = 1.0, high_freq_factor = 4.0;
  int original_max_position = 8192;
};

struct TransformerConfig {
  int num_layers = 12;
  int hidden_size = 768;
  int num_attention_heads = 12;
  int num_query_groups = 0;  // --num-query-groups with --group-query-attention; 0: one per head (MHA)
  int kv_channels = 0;       // --kv-channels: each head's width; 0: hidden / heads
  int ffn_hidden_size = 3072;
  int seq_length = 1024;
  int max_position_embeddings = 1024;
  int vocab_size = 50257;         // the tokenizer's
  int padded_vocab_size = 50304;  // rounded up to make_vocab_size_divisible_by x TP
  NormKind normalization = NormKind::LayerNorm;
  float layernorm_epsilon = 1e-5f;
  ActivationKind activation = ActivationKind::Gelu;
  PositionKind position_embedding = PositionKind::Learned;
  RopeConfig rope;
  bool add_bias_linear = true;  // biases of every linear layer (--disable-bias-linear clears it)
  bool add_qkv_bias = true;     // the QKV bias (follows add_bias_linear unless --add-qkv-bias)
  bool tie_embeddings = true;   // output layer shares the word embedding (--untie-embeddings-and-output-weights)
  bool causal = true;           // causal self-attention (decoders); false: bidirectional (encoders)
  // --apply-residual-connection-post-layernorm: each half's residual is its norm's output instead of its
  // input (Megatron's ParallelTransformerLayer / TransformerLayer option, BERT's original arrangement).
  bool apply_residual_connection_post_layernorm = false;
  float hidden_dropout = 0.1f;
  float attention_dropout = 0.1f;
  float init_method_std = 0.02f;
  bool init_method_xavier_uniform = false;  // --init-method-xavier-uniform: xavier_uniform_ instead of normal(std)

  int head_dim() const { return kv_channels > 0 ? kv_channels : hidden_size / num_attention_heads; }
  int query_groups() const { return num_query_groups > 0 ? num_query_groups : num_attention_heads; }
  // Width of the attention's query/output projection (heads x head width; the hidden size for GPT).
  int64_t attention_width() const { return int64_t(num_attention_heads) * head_dim(); }
  // Width of the fused QKV projection: queries, then one key and one value per query group.
  int64_t qkv_width() const { return attention_width() + 2LL * query_groups() * head_dim(); }
  // Width of fc1's output: twice the ffn size for a gated MLP (gate and up halves).
  int64_t fc1_width() const { return activation == ActivationKind::SwiGlu ? 2LL * ffn_hidden_size : ffn_hidden_size; }
  bool gated_mlp() const { return activation == ActivationKind::SwiGlu; }
  bool learned_positions() const { return position_embedding == PositionKind::Learned; }
  bool norm_has_bias() const { return normalization == NormKind::LayerNorm; }
};

// The shape plus the runtime choices every layer of one model shares.
struct ModelConfig : TransformerConfig {
  // Activation recompute (runtime choice, not part of the weights): Megatron's --recompute-granularity
  // (""|full|selective), --recompute-method (uniform|block) and --recompute-num-layers.
  std::string recompute_granularity;
  std::string recompute_method = "uniform";
  int recompute_num_layers = 1;
  // How activations are stored (runtime choice): F32, or BF16/F16 with --bf16/--fp16. Layers compute in
  // fp32 and round what they keep for the backward, and the residual stream between layers, to this type.
  DType activation_dtype = DType::F32;
  // --fp32-residual-connection (with --bf16/--fp16): the residual stream (the embedding's output, each
  // block's input, its attention-half sum and its output, and their gradients) stays in fp32 while the
  // sublayers' activations are stored in activation_dtype.
  bool fp32_residual = false;
  DType residual_dtype() const { return fp32_residual ? DType::F32 : activation_dtype; }
};

}  // namespace loom
