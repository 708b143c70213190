#include "loom/plan/memory_report.h"

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdio>

#include "loom/core/error.h"

namespace loom {
namespace {

constexpr double kBytesPerMB = 1024.0 * 1024.0;

std::string format(const char* fmt, ...) {
  char buf[256];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  return buf;
}

// Every expression below keeps Python's evaluation order and int/float mix (integer products exact,
// then converted to double), so the printed values round exactly like Megatron's.
double weight_and_optimizer_bytes(const MemoryPlanConfig& c, TheoreticalMemory& m) {
  const int64_t h = c.hidden_size, heads = c.num_attention_heads;
  const int64_t kv = c.kv_channels > 0 ? c.kv_channels : h / heads;
  const int64_t groups = c.num_query_groups > 0 ? c.num_query_groups : heads;
  const double query_ratio = double(kv * heads) / double(h);
  const double self_attn = double(2 * h * h) * ((1.0 + double(groups) / double(heads)) * query_ratio);
  // 2 h (ffn x gated multiplier + 2): fc1 and fc2 weights, and two LayerNorms of weight + bias. Megatron's
  // multiplier is the int 1 without SwiGLU (an exact integer product) and the float 3/2 with it.
  const double dense_layer = c.swiglu ? double(2 * h) * (double(c.ffn_hidden_size) * 1.5 + 2.0) + self_attn
                                      : double(2 * h * (c.ffn_hidden_size + 2)) + self_attn;
  const int64_t embedding_size = h * c.padded_vocab_size;
  const int64_t final_layernorm = 2 * h;
  m.embedding_layers = double(c.untie_embeddings_and_output_weights ? 2 * embedding_size : embedding_size);
  m.transformer_block = dense_layer * double(c.num_layers) + double(final_layernorm);
  m.total = m.transformer_block + m.embedding_layers;
  const int64_t pp = c.pipeline_parallel, tp = c.tensor_parallel;
  m.most_loaded_shard = (m.transformer_block / double(pp) + double(embedding_size)) / double(tp);
  if (c.untie_embeddings_and_output_weights && pp == 1) m.most_loaded_shard += double(embedding_size) / double(tp);
  if (pp > 1) m.other_shards = m.transformer_block / double(pp * tp);
  m.bytes_per_parameter = c.use_distributed_optimizer ? 6.0 + 12.0 / double(c.data_parallel) : 18.0;
  return m.most_loaded_shard * m.bytes_per_parameter;
}

// Table 2 of Korthikanti et al. (sequence parallel + selective recompute), for the first pipeline stage.
double activation_bytes(const MemoryPlanConfig& c, TheoreticalMemory& m) {
  const int64_t s = c.seq_length, b = c.micro_batch_size, h = c.hidden_size;
  const int64_t pp = c.pipeline_parallel, tp = c.tensor_parallel;
  double act = double(s * b * h) * (18.0 + 4.0 * (double(c.ffn_hidden_size) / double(h)));
  m.activation_per_layer_mb = act / kBytesPerMB / double(tp);
  act *= double(c.num_layers);
  act += double(8 * s * b * pp);  // input to the embedding, pp micro-batches in flight
  act += double(s * b * h * pp);  // embedding dropout mask
  if (c.virtual_pipeline_parallel) {
    const double penalty = 1.0 + double(pp - 1) / double(pp * *c.virtual_pipeline_parallel);
    m.interleaved_penalty = penalty;
    m.in_flight_micro_batches = int64_t(std::ceil(penalty * double(pp)));
    act *= penalty;
  } else if (pp > 1) {
    if (c.num_micro_batches) {
      act *= std::min(1.0, double(*c.num_micro_batches) / double(pp));
      m.in_flight_micro_batches = std::min(*c.num_micro_batches, pp);
    } else {
      m.in_flight_micro_batches = pp;
    }
  }
  if (pp == 1) act += double(s * b * h * 4) * (1.0 + double(c.padded_vocab_size) / double(h));  // logits, CE
  return act / double(tp);
}

}  // namespace

TheoreticalMemory theoretical_memory(const MemoryPlanConfig& c) {
  require(c.num_layers > 0 && c.hidden_size > 0 && c.num_attention_heads > 0 && c.ffn_hidden_size > 0 &&
              c.seq_length > 0 && c.padded_vocab_size > 0,
          "theoretical memory: model sizes must be positive");
  require(c.num_query_groups >= 0 && c.kv_channels >= 0, "theoretical memory: query groups and kv channels");
  require(c.tensor_parallel > 0 && c.pipeline_parallel > 0 && c.data_parallel > 0,
          "theoretical memory: parallel sizes must be positive");
  require(!c.virtual_pipeline_parallel || *c.virtual_pipeline_parallel > 0,
          "theoretical memory: virtual pipeline size must be positive");
  require(c.micro_batch_size > 0 && (!c.num_micro_batches || *c.num_micro_batches > 0),
          "theoretical memory: batch sizes must be positive");

  TheoreticalMemory m;
  m.weight_and_optimizer_mb = weight_and_optimizer_bytes(c, m) / kBytesPerMB;
  auto& L = m.lines;
  L.push_back(format("Number of parameters in transformer block in billions: % .2f", m.transformer_block / 1e9));
  L.push_back(format("Number of parameters in embedding layers in billions: %.2f", m.embedding_layers / 1e9));
  L.push_back(format("Total number of parameters in billions: %.2f", m.total / 1e9));
  L.push_back(format("Number of parameters in most loaded shard in billions: %.4f", m.most_loaded_shard / 1e9));
  if (m.other_shards)
    L.push_back(format("Number of parameters in other shards in billions: %.4f", *m.other_shards / 1e9));

  // Megatron 0.12: the activation formula assumes sequence parallelism and selective recompute.
  if (!c.sequence_parallel || c.recompute != RecomputeGranularity::kSelective) {
    L.push_back(format("Theoretical memory footprints: weight and optimizer=%.2f MB", m.weight_and_optimizer_mb));
    return m;
  }
  m.activation_mb = activation_bytes(c, m) / kBytesPerMB;
  m.total_mb = m.weight_and_optimizer_mb + *m.activation_mb;
  L.push_back(format("Activation memory footprint per transformer layer: %.1f MB", *m.activation_per_layer_mb));
  if (m.interleaved_penalty) L.push_back(format("Memory penalty from interleaved schedule: %.2f", *m.interleaved_penalty));
  if (m.in_flight_micro_batches)
    L.push_back(format("Number of in-flight microbatches: %lld", (long long)*m.in_flight_micro_batches));
  L.push_back(format("Theoretical memory footprints: weight and optimizer=%.2f MB, activation=%.2f MB, total=%.2f MB",
                     m.weight_and_optimizer_mb, *m.activation_mb, *m.total_mb));
  L.push_back("");
  return m;
}

std::string format_theoretical_memory(const TheoreticalMemory& m) {
  std::string s;
  for (const auto& line : m.lines) s += line + "\n";
  return s;
}

}  // namespace loom
