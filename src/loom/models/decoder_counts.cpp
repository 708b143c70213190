#include "loom/models/decoder_counts.h"

#include "loom/models/decoder_model.h"  // decoder_layer_costs: pure arithmetic, here so that config users need not link the model

namespace loom {

int64_t padded_vocab(int64_t vocab, int64_t divisible_by, int64_t tensor_parallel) {
  int64_t multiple = divisible_by * tensor_parallel;
  return (vocab + multiple - 1) / multiple * multiple;
}

int64_t transformer_layer_params(const TransformerConfig& c, int tensor_parallel) {
  const int64_t h = c.hidden_size, f = c.ffn_hidden_size, T = tensor_parallel;
  const int64_t qkv = c.qkv_width(), attn_width = c.attention_width(), fc1 = c.fc1_width();
  const int64_t bias = c.add_bias_linear ? 1 : 0, qkv_bias = c.add_qkv_bias ? 1 : 0;
  // Column-parallel QKV (bias split with it), row-parallel projection (bias replicated).
  const int64_t attn = (qkv * h + qkv_bias * qkv) / T + attn_width * h / T + bias * h;
  const int64_t mlp = (fc1 * h + bias * fc1) / T + f * h / T + bias * h;  // column-parallel fc1, row-parallel fc2
  const int64_t norms = (c.norm_has_bias() ? 4 : 2) * h;
  return attn + mlp + norms;
}

int64_t embedding_params(const TransformerConfig& c, int tensor_parallel) {
  const int64_t h = c.hidden_size;
  return int64_t(c.padded_vocab_size) / tensor_parallel * h + (c.learned_positions() ? int64_t(c.max_position_embeddings) * h : 0);
}

int64_t output_params(const TransformerConfig& c, int tensor_parallel) {
  const int64_t h = c.hidden_size;
  return (c.norm_has_bias() ? 2 : 1) * h + (c.tie_embeddings ? 0 : int64_t(c.padded_vocab_size) / tensor_parallel * h);
}

int64_t decoder_total_params(const TransformerConfig& c, int tensor_parallel) {
  return int64_t(c.num_layers) * transformer_layer_params(c, tensor_parallel) + embedding_params(c, tensor_parallel) +
         output_params(c, tensor_parallel);
}

double decoder_flops_per_iteration(const TransformerConfig& c, int64_t batch) {
  // 12 = 3 (forward, weight-gradient and data-gradient GEMMs) x 2 (GEMMs come in pairs) x 2 (multiply-add).
  double h = c.hidden_size, s = c.seq_length, L = c.num_layers;
  // QKV (queries, then keys and values per group), projection, and the two score GEMMs; in units of the
  // query projection's width.
  const double groups = double(c.query_groups()) / double(c.num_attention_heads);
  const double query_ratio = double(c.attention_width()) / h;
  double attention = (1.0 + groups + s / h) * query_ratio;
  double mlp = double(c.ffn_hidden_size) / h * (c.gated_mlp() ? 1.5 : 1.0);
  double logit = double(c.padded_vocab_size) / (2.0 * L * h);
  return 12.0 * double(batch) * s * L * h * h * (attention + mlp + logit);
}

std::vector<double> decoder_layer_costs(const ModelConfig& c) {
  const double h = c.hidden_size, s = c.seq_length, f = c.ffn_hidden_size, V = c.padded_vocab_size;
  std::vector<double> costs;
  costs.push_back(2.0 * h);  // embedding: a lookup per token, no GEMM
  const double block = 6.0 * (4.0 * h * h + 2.0 * h * f) + 6.0 * s * h;  // GEMMs + attention scores, fwd+bwd
  for (int i = 0; i < c.num_layers; i++) costs.push_back(block);
  costs.push_back(6.0 * V * h);  // the output layer and its fused cross-entropy gradient
  return costs;
}

}  // namespace loom
