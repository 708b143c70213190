#pragma once
// Arithmetic derived from a decoder language model's shape (padded vocabulary, parameter counts,
// FLOPs), computable without building the model. GPT and Llama are both this decoder, so the counts
// cover grouped-query attention, gated MLPs, optional biases, untied output layers and RoPE.
#include <cstdint>

#include "loom/layers/transformer_config.h"

namespace loom {

// Megatron's _vocab_size_with_padding.
int64_t padded_vocab(int64_t vocab, int64_t divisible_by, int64_t tensor_parallel);

// Parameter counts (what Megatron prints per model-parallel rank; with TP=PP=1 the whole model).
// With tensor parallelism T: what one tensor-parallel rank holds (QKV, fc1 and the word embedding
// split; projection/fc2 biases, norms and the position embedding replicated), as Megatron prints.
int64_t transformer_layer_params(const TransformerConfig& c, int tensor_parallel = 1);
// Embedding (word, and learned positions) of the first stage.
int64_t embedding_params(const TransformerConfig& c, int tensor_parallel = 1);
// Final norm, plus the output layer when untied, of the last stage.
int64_t output_params(const TransformerConfig& c, int tensor_parallel = 1);
int64_t decoder_total_params(const TransformerConfig& c, int tensor_parallel = 1);

// Megatron's num_floating_point_operations for one iteration of `batch` sequences (forward+backward),
// with its grouped-query and gated-MLP terms.
double decoder_flops_per_iteration(const TransformerConfig& c, int64_t batch);

}  // namespace loom
