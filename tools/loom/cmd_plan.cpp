// `loom plan`: what a configuration costs, computed from the flags alone (nothing is allocated).
#include <algorithm>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include "commands.h"
#include "loom/core/error.h"
#include "loom/models/family.h"
#include "loom/train/coca_args.h"
#include "loom/models/decoder_model.h"
#include "loom/models/decoder_counts.h"
#include "loom/plan/hardware.h"
#include "loom/plan/layout_search.h"
#include "loom/plan/log_compare.h"
#include "loom/plan/memory_report.h"
#include "loom/plan/plan_args.h"
#include "loom/plan/time_model.h"
#include "loom/train/arguments.h"
#include "loom/train/log_format.h"
#include "loom/train/memory_preflight.h"
#include "loom/train/model_chunks.h"

namespace loom::cmd {

namespace {

// Parameters held by pipeline rank `rank` on each tensor-parallel rank, with Megatron's layout of the
// blocks over stages and virtual chunks: the word (and learned position) embeddings with the first stage's
// first chunk; the final norm and an untied output layer with the last stage's last chunk, which also holds
// the tied output layer's copy of the word embedding when it lacks the embedding itself (PP > 1).
int64_t stage_params(const TrainArgs& a, const ModelConfig& c, int rank) {
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

// Where the time goes, Megatron's iteration line, and the memory of the most loaded rank.
void print_prediction(const StepPrediction& p, const Hardware& hw, int world) {
  std::printf(" > predicted time per iteration on %d x %s (ms, slowest pipeline rank):\n", world, hw.name.c_str());
  for (const TimeRow& r : p.rows)
    if (r.seconds > 0)
      std::printf("   %-34s %12.2f  %5.1f%%\n", r.name.c_str(), r.seconds * 1e3, 100.0 * r.seconds / p.step_seconds);
  std::printf(" > predicted memory per GPU (MB) | model states: %.2f | activations: %.2f | working buffers: %.2f | "
              "total: %.2f | device: %.2f\n",
              p.model_state_bytes / 1048576.0, p.activation_bytes / 1048576.0, p.working_bytes / 1048576.0,
              p.peak_bytes() / 1048576.0, hw.memory_bytes / 1048576.0);
  std::printf(" > predicted forward per micro-batch (ms) | embedding: %.3f | transformer layer: %.3f | output layer: %.3f\n",
              p.embedding_forward_seconds * 1e3, p.layer_forward_seconds * 1e3, p.head_forward_seconds * 1e3);
  std::printf(" elapsed time per iteration (ms): %.1f | throughput per GPU (TFLOP/s/GPU): %.1f | tokens per second per "
              "GPU: %.1f\n",
              p.step_seconds * 1e3, p.tflops_per_gpu, p.tokens_per_s_per_gpu);
}

int run_search(const TrainArgs& a, const ArgParser& p, const PlanArgs& pa, const ModelConfig& cfg, const Hardware& hw) {
  SearchSpace sp;
  sp.gpus = pa.gpus;
  sp.base = layout_from_args(a);
  if (p.was_set("--tensor-model-parallel-size")) sp.tp = a.tensor_model_parallel_size;
  if (p.was_set("--pipeline-model-parallel-size")) sp.pp = a.pipeline_model_parallel_size;
  if (p.was_set("--num-layers-per-virtual-pipeline-stage") || p.was_set("--virtual-pipeline-model-parallel-size"))
    sp.vpp = a.virtual_pipeline_size();
  if (p.was_set("--micro-batch-size")) sp.micro_batch = a.micro_batch_size;
  if (p.was_set("--zero-stage") || p.was_set("--use-distributed-optimizer")) sp.zero_stage = a.zero_stage;
  if (p.was_set("--sequence-parallel")) sp.sequence_parallel = true;
  if (p.was_set("--recompute-granularity") || p.was_set("--recompute-activations")) sp.recompute = sp.base.recompute;
  if (p.was_set("--pipeline-schedule") || p.was_set("--use-dpp")) sp.schedule = sp.base.schedule;
  const SearchResult r = search_layouts(cfg, sp, hw);
  std::printf(" > searched %lld layouts of %d x %s for global batch %lld: %zu fit\n", (long long)r.evaluated, pa.gpus,
              hw.name.c_str(), (long long)sp.base.global_batch, r.fitting.size());
  for (size_t i = 0; i < r.fitting.size() && int(i) < pa.top; i++) {
    const RankedLayout& k = r.fitting[i];
    const StepPrediction& q = k.prediction;
    std::printf("\n #%zu  TP %d  PP %d  VPP %d  DP %d  micro-batch %d  | elapsed time per iteration (ms): %.1f | "
                "throughput per GPU (TFLOP/s/GPU): %.1f | tokens per second per GPU: %.1f\n",
                i + 1, k.layout.tp, k.layout.pp, k.layout.vpp, k.layout.dp, k.layout.micro_batch, q.step_seconds * 1e3,
                q.tflops_per_gpu, q.tokens_per_s_per_gpu);
    std::string t = "     time (ms)";
    char buf[96];
    for (const TimeRow& row : q.rows)
      if (row.seconds > 0) std::snprintf(buf, sizeof buf, " | %s: %.1f", row.name.c_str(), row.seconds * 1e3), t += buf;
    std::printf("%s\n", t.c_str());
    std::printf("     memory (MB) | model states: %.0f | activations: %.0f | working buffers: %.0f | total: %.0f\n",
                q.model_state_bytes / 1048576.0, q.activation_bytes / 1048576.0, q.working_bytes / 1048576.0,
                q.peak_bytes() / 1048576.0);
    std::printf("     mpirun -np %d loom train %s\n", k.layout.world(), layout_flags(k.layout, cfg.num_layers).c_str());
  }
  return 0;
}

}  // namespace

int plan(int argc, char** argv) {
  if (wants_coca(argc, argv)) return plan_coca(argc, argv);
  TrainArgs a;
  ArgParser p("loom plan", "Print the parameter count, the work of one iteration and Megatron's theoretical "
                           "memory report for 'loom train' flags, without allocating the model.");
  a.register_flags(p);
  p.add_example("loom plan --num-layers 48 --hidden-size 1600 --num-attention-heads 25 --seq-length 1024");
  p.add_example("loom plan --num-layers 16 --hidden-size 2048 --num-attention-heads 32 --seq-length 2048 "
                "--tensor-model-parallel-size 2 --pipeline-model-parallel-size 4 "
                "--num-layers-per-virtual-pipeline-stage 1 --micro-batch-size 2 --global-batch-size 16 --fp16");
  PlanArgs pa;
  pa.register_flags(p);
  p.add_example("loom plan --model-preset llama3-8b --global-batch-size 512 --bf16 --hardware H100-SXM --search --gpus 64");
  p.add_example("loom plan --model-preset gpt2-1.5b --micro-batch-size 8 --global-batch-size 64 --fp16 "
                "--recompute-granularity full --hardware A100-80G");
  // Megatron flags that only the plan understands so far (training does not implement them yet).
  if (!TrainArgs::parse(p, argc, argv)) return 0;
  a.validate(p, /*need_data=*/false);
  pa.validate();
  // Resolved before any output, so a bad device is one error line.
  const Hardware hw = pa.hardware.empty() ? Hardware{} : pa.device();
  const MeasuredRun measured = pa.compare_log.empty() ? MeasuredRun{} : read_training_log(pa.compare_log);
  if (pa.search) {
    const ModelConfig scfg = a.model_config(a.vocab_size ? *a.vocab_size : TrainArgs::kGpt2Vocab);
    return run_search(a, p, pa, scfg, hw);
  }
  const bool fp16 = a.fp16, bf16 = a.bf16;
  const bool distributed_optimizer = a.zero_stage >= 1;
  const std::string recompute_granularity = a.recompute_granularity;
  const int T = a.tensor_model_parallel_size, PP = a.pipeline_model_parallel_size;
  a.validate_layout(pa.world_size > 0 ? pa.world_size : T * PP * a.context_parallel_size);
  const ModelConfig cfg = a.model_config(a.vocab_size ? *a.vocab_size : TrainArgs::kGpt2Vocab);
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
  if (pa.hardware.empty()) return 0;
  const PlanLayout layout = layout_from_args(a);
  StepPrediction pred = predict_step(cfg, layout, hw);
  // A calibrated device is this engine on a measured machine: its activations are Loom's own (what the
  // activations line will print), read from the model built without touching memory, not Korthikanti's
  // estimate of Megatron's.
  if (is_calibrated(hw)) {
    double act = 0;
    for (int r = 0; r < PP; r++) act = std::max(act, double(predict_stage_activation_bytes(a, cfg, r)));
    pred.activation_bytes = act;
  }
  print_prediction(pred, hw, layout.world());
  if (!pa.compare_log.empty()) std::fputs(format_comparison(measured, pred, layout.num_micro_batches()).c_str(), stdout);
  return 0;
}

}  // namespace loom::cmd
