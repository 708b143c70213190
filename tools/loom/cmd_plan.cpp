// `loom plan`: what a configuration costs, computed from the flags alone (nothing is allocated).
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include "commands.h"
#include "loom/core/error.h"
#include "loom/models/family.h"
#include "loom/models/gpt.h"
#include "loom/models/gpt_config.h"
#include "loom/plan/memory_report.h"
#include "loom/train/arguments.h"
#include "loom/train/log_format.h"
#include "loom/train/model_chunks.h"

namespace loom::cmd {

namespace {

// Parameters held by pipeline rank `rank` on each tensor-parallel rank, with Megatron's layout of the
// blocks over stages and virtual chunks: the word (and learned position) embeddings with the first stage's
// first chunk; the final norm and an untied output layer with the last stage's last chunk, which also holds
// the tied output layer's copy of the word embedding when it lacks the embedding itself (PP > 1).
int64_t stage_params(const TrainArgs& a, const GptConfig& c, int rank) {
  const int T = a.tensor_model_parallel_size;
  const int64_t word = int64_t(c.padded_vocab_size) / T * c.hidden_size;
  int64_t n = 0;
  for (const StageSpec& s : megatron_stage_specs(a, c, rank)) {
    n += int64_t(s.num_blocks) * transformer_layer_params(c, T);
    if (s.embedding) n += embedding_params(c, T);
    if (s.head) n += output_params(c, T) + (s.embedding || !c.tie_embeddings ? 0 : word);
  }
  return n;
}

}  // namespace

int plan(int argc, char** argv) {
  TrainArgs a;
  ArgParser p("loom plan", "Print the parameter count, the work of one iteration and Megatron's theoretical "
                           "memory report for 'loom train' flags, without allocating the model.");
  a.register_flags(p);
  p.add_example("loom plan --num-layers 48 --hidden-size 1600 --num-attention-heads 25 --seq-length 1024");
  p.add_example("loom plan --num-layers 16 --hidden-size 2048 --num-attention-heads 32 --seq-length 2048 "
                "--tensor-model-parallel-size 2 --pipeline-model-parallel-size 4 "
                "--num-layers-per-virtual-pipeline-stage 1 --micro-batch-size 2 --global-batch-size 16 --fp16");
  int world_size = 0;
  p.add_int("--world-size", &world_size, "processes to plan for (default tensor x pipeline x context parallel size)");
  // Megatron flags that only the plan understands so far (training does not implement them yet).
  if (!TrainArgs::parse(p, argc, argv)) return 0;
  a.validate(p, /*need_data=*/false);
  const bool fp16 = a.fp16, bf16 = a.bf16;
  const bool distributed_optimizer = a.zero_stage >= 1;
  const std::string recompute_granularity = a.recompute_granularity;
  const int T = a.tensor_model_parallel_size, PP = a.pipeline_model_parallel_size;
  a.validate_layout(world_size > 0 ? world_size : T * PP * a.context_parallel_size);
  const GptConfig cfg = a.model_config(a.vocab_size ? *a.vocab_size : TrainArgs::kGpt2Vocab);
  const ModelFamily& family = model_family(a.model);
  std::printf(" > padded vocab (size: %d) with %d dummy tokens (new size: %d)\n", cfg.vocab_size,
              cfg.padded_vocab_size - cfg.vocab_size, cfg.padded_vocab_size);
  for (int s = 0; s < PP; s++) {
    const int64_t n = stage_params(a, cfg, s);
    for (int t = 0; t < T; t++) std::printf("%s\n", format_param_count_line(t, s, n).c_str());
  }
  std::printf(" > parameters per transformer layer per tensor-parallel rank: %lld\n",
              (long long)family.layer_params(cfg, T));
  const double flops = family.flops_per_iteration(cfg, *a.global_batch_size);
  std::printf(" > model FLOPs per iteration (global batch %lld): %.6E\n", (long long)*a.global_batch_size, flops);
  std::printf(" > fp32 weights + gradients + Adam moments: %.2f MB\n",
              double(family.total_params(cfg, 1)) * 16.0 / 1048576.0);

  // Megatron's report_theoretical_memory, as printed after the first logged iteration.
  MemoryPlanConfig m;
  m.num_layers = a.num_layers;
  m.hidden_size = a.hidden_size;
  m.num_attention_heads = a.num_attention_heads;
  m.ffn_hidden_size = *a.ffn_hidden_size;
  m.num_query_groups = cfg.num_query_groups;
  m.kv_channels = cfg.kv_channels;
  m.swiglu = cfg.gated_mlp();
  m.untie_embeddings_and_output_weights = !cfg.tie_embeddings;
  m.seq_length = a.seq_length;
  m.padded_vocab_size = cfg.padded_vocab_size;
  m.tensor_parallel = T;
  m.pipeline_parallel = PP;
  m.virtual_pipeline_parallel = a.virtual_pipeline_model_parallel_size;  // unset: Megatron's None
  m.data_parallel = a.data_parallel_size;
  m.micro_batch_size = a.micro_batch_size;
  m.num_micro_batches = a.num_micro_batches();
  m.sequence_parallel = a.sequence_parallel;
  m.use_distributed_optimizer = distributed_optimizer;
  m.precision = fp16 ? Precision::kFp16 : bf16 ? Precision::kBf16 : Precision::kFp32;
  m.recompute = recompute_granularity == "selective" ? RecomputeGranularity::kSelective
                : recompute_granularity == "full"    ? RecomputeGranularity::kFull
                                                     : RecomputeGranularity::kNone;
  std::fputs(format_theoretical_memory(theoretical_memory(m)).c_str(), stdout);
  return 0;
}

}  // namespace loom::cmd
