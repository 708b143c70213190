#include "loom/models/gpt_config.h"

namespace loom {

int64_t padded_vocab(int64_t vocab, int64_t divisible_by, int64_t tensor_parallel) {
  int64_t multiple = divisible_by * tensor_parallel;
  return (vocab + multiple - 1) / multiple * multiple;
}

int64_t transformer_layer_params(const GptConfig& c, int tensor_parallel) {
  const int64_t h = c.hidden_size, f = c.ffn_hidden_size, T = tensor_parallel;
  const int64_t attn = (3 * h * h + 3 * h) / T + h * h / T + h;  // column-parallel QKV, row-parallel projection
  const int64_t mlp = (h * f + f) / T + f * h / T + h;            // column-parallel fc1, row-parallel fc2
  const int64_t norms = 4 * h;
  return attn + mlp + norms;
}

int64_t gpt_total_params(const GptConfig& c, int tensor_parallel) {
  const int64_t h = c.hidden_size;
  return int64_t(c.num_layers) * transformer_layer_params(c, tensor_parallel) +
         int64_t(c.padded_vocab_size) / tensor_parallel * h + int64_t(c.max_position_embeddings) * h +
         2 * h;  // + final LayerNorm; output layer tied
}

double gpt_flops_per_iteration(const GptConfig& c, int64_t batch) {
  // 12 = 3 (forward, weight-gradient and data-gradient GEMMs) x 2 (GEMMs come in pairs) x 2 (multiply-add).
  double h = c.hidden_size, s = c.seq_length, L = c.num_layers;
  double attention = 1.0 + 1.0 + s / h;  // QKV, projection, and the two score GEMMs (query groups = heads)
  double mlp = double(c.ffn_hidden_size) / h;
  double logit = double(c.padded_vocab_size) / (2.0 * L * h);
  return 12.0 * double(batch) * s * L * h * h * (attention + mlp + logit);
}

}  // namespace loom
