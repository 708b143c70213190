#pragma once
// The shape of a Megatron GPT and the arithmetic derived from it (padded vocabulary, parameter counts,
// FLOPs), computable without building the model.
#include <cstdint>
#include <string>

#include "loom/core/dtype.h"

namespace loom {

struct GptConfig {
  int num_layers = 12;
  int hidden_size = 768;
  int num_attention_heads = 12;
  int ffn_hidden_size = 3072;
  int seq_length = 1024;
  int max_position_embeddings = 1024;
  int vocab_size = 50257;         // the tokenizer's
  int padded_vocab_size = 50304;  // rounded up to make_vocab_size_divisible_by x TP
  float hidden_dropout = 0.1f;
  float attention_dropout = 0.1f;
  float init_method_std = 0.02f;
  float layernorm_epsilon = 1e-5f;
  // Activation recompute (runtime choice, not part of the weights): Megatron's --recompute-granularity
  // (""|full|selective), --recompute-method (uniform|block) and --recompute-num-layers.
  std::string recompute_granularity;
  std::string recompute_method = "uniform";
  int recompute_num_layers = 1;
  // How activations are stored (runtime choice): F32, or BF16/F16 with --bf16/--fp16. Layers compute in
  // fp32 and round what they keep for the backward, and the residual stream between layers, to this type.
  DType activation_dtype = DType::F32;

  int head_dim() const { return hidden_size / num_attention_heads; }
};

// Megatron's _vocab_size_with_padding.
int64_t padded_vocab(int64_t vocab, int64_t divisible_by, int64_t tensor_parallel);

// Parameter counts (what Megatron prints per model-parallel rank; with TP=PP=1 the whole model).
// With tensor parallelism T: what one tensor-parallel rank holds (QKV, fc1 and the word embedding
// split; projection/fc2 biases, LayerNorms and the position embedding replicated), as Megatron prints.
int64_t transformer_layer_params(const GptConfig& c, int tensor_parallel = 1);
int64_t gpt_total_params(const GptConfig& c, int tensor_parallel = 1);

// Megatron's num_floating_point_operations for one iteration of `batch` sequences (forward+backward).
double gpt_flops_per_iteration(const GptConfig& c, int64_t batch);

}  // namespace loom
