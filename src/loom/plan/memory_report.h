#pragma once
// Megatron's theoretical memory report (megatron/training/theoretical_memory_usage.py as of
// megatron-core 0.12, the version behind reference log 004) for Loom's decoders (GPT and Llama): grouped-
// query attention, SwiGLU, tied or untied embeddings; no MoE, no MTP, no multi-latent attention.
//
// The formulas are Megatron's, including their approximations:
//  - parameters count matrices, LayerNorms (weight + bias) and the word embedding only: no linear biases
//    and no position embedding;
//  - the embedding counts once when tied (twice with untied output weights), and the most loaded shard
//    is the first pipeline stage: (transformer block / PP + embedding) / TP (+ the output layer again
//    when untied and PP = 1);
//  - 18 bytes per parameter (fp16/bf16 weight 2 + fp32 grad 4 + fp32 master 4 + Adam 8), or 6 + 12/DP
//    with the distributed optimizer; the precision does not enter (Megatron uses 18 even for fp32);
//  - activations (Korthikanti et al. 2022, Table 2) are only reported with sequence parallelism and
//    selective recompute; otherwise the last line carries the weight and optimizer memory alone.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace loom {

enum class Precision { kFp32, kFp16, kBf16 };
enum class RecomputeGranularity { kNone, kSelective, kFull };

struct MemoryPlanConfig {
  int64_t num_layers = 0, hidden_size = 0, num_attention_heads = 0;
  int64_t num_query_groups = 0;  // 0: = heads (Megatron without --group-query-attention)
  int64_t kv_channels = 0;       // 0: hidden / heads
  int64_t ffn_hidden_size = 0, seq_length = 0, padded_vocab_size = 0;
  bool untie_embeddings_and_output_weights = false;
  bool swiglu = false;  // gated MLP: Megatron counts fc1/fc2 as 3/2 of a plain MLP
  int64_t tensor_parallel = 1, pipeline_parallel = 1, data_parallel = 1;
  // Virtual pipeline stages per pipeline rank (interleaved schedule); nullopt is Megatron's None (no
  // interleaving), which differs from 1 in the activation estimate.
  std::optional<int64_t> virtual_pipeline_parallel;
  int64_t micro_batch_size = 1;
  std::optional<int64_t> num_micro_batches;  // per data-parallel rank and iteration
  bool sequence_parallel = false, use_distributed_optimizer = false;
  Precision precision = Precision::kFp32;  // recorded; Megatron's formula does not use it
  RecomputeGranularity recompute = RecomputeGranularity::kNone;
};

struct TheoreticalMemory {
  // Parameter counts as Megatron computes them (doubles: Python floats).
  double transformer_block = 0, embedding_layers = 0, total = 0;
  double most_loaded_shard = 0;
  std::optional<double> other_shards;  // only with PP > 1
  double bytes_per_parameter = 18;
  double weight_and_optimizer_mb = 0;
  // Present when Megatron reports activations (sequence parallel and selective recompute).
  std::optional<double> activation_per_layer_mb;  // as printed (already divided by TP)
  std::optional<double> interleaved_penalty;
  std::optional<int64_t> in_flight_micro_batches;
  std::optional<double> activation_mb, total_mb;
  // The lines Megatron's report_theoretical_memory(verbose=True) prints, in order, without newlines;
  // when activations are reported the last one is empty (Megatron's final print ends with "\n").
  std::vector<std::string> lines;
};

// Throws UserError on an inconsistent configuration (non-positive sizes).
TheoreticalMemory theoretical_memory(const MemoryPlanConfig& c);
// The lines joined with newlines, as printed.
std::string format_theoretical_memory(const TheoreticalMemory& m);

}  // namespace loom
