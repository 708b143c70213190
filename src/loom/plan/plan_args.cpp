#include "loom/plan/plan_args.h"

#include "loom/core/error.h"

namespace loom {

void PlanArgs::register_flags(ArgParser& p) {
  p.add_int("--world-size", &world_size, "processes to plan for (default tensor x pipeline x context parallel size)");
  p.add_string("--hardware", &hardware,
               "device to predict for: V100-16G, V100-32G, A100-40G, A100-80G, H100-SXM, H200, RTX4090, A40, L40S, "
               "or a FILE.json (as 'loom bench --calibrate' writes); prints the time per iteration and where it goes");
  p.add_flag("--search", &search,
             "search TP x PP x VPP x DP x micro-batch x recompute x ZeRO x sequence parallelism for --gpus devices; "
             "layout flags given explicitly stay fixed");
  p.add_int("--gpus", &gpus, "devices for --search");
  p.add_int("--top", &top, "layouts --search prints");
  p.add_flag("--unfused-attention", &unfused_attention,
             "predict attention with materialised s x s scores and a separate softmax (Megatron before flash "
             "attention, as in reference logs 001 and 002) instead of a fused flash kernel");
  p.add_string("--compare-log", &compare_log, "a training log to compare the prediction with (its timers and memory lines)");
}

void PlanArgs::validate() const {
  require(!search || !hardware.empty(), "--search needs --hardware");
  require(!search || gpus > 0, "--search needs --gpus N (N > 0)");
  require(search || gpus == 0, "--gpus is for --search (use --world-size for one layout)");
  require(top > 0, "--top must be positive");
  require(world_size >= 0, "--world-size must not be negative");
  require(compare_log.empty() || !hardware.empty(), "--compare-log needs --hardware");
}

Hardware PlanArgs::device() const {
  Hardware h = find_hardware(hardware);
  if (unfused_attention) h.fused_attention = false;
  return h;
}

PlanLayout layout_from_args(const TrainArgs& a) {
  PlanLayout l;
  l.tp = a.tensor_model_parallel_size, l.pp = a.pipeline_model_parallel_size;
  l.vpp = a.virtual_pipeline_size();
  l.dp = a.data_parallel_size;
  l.micro_batch = a.micro_batch_size;
  l.global_batch = *a.global_batch_size;
  l.sequence_parallel = a.sequence_parallel;
  l.recompute = a.recompute_granularity == "selective" ? RecomputeGranularity::kSelective
                : a.recompute_granularity == "full"    ? RecomputeGranularity::kFull
                                                       : RecomputeGranularity::kNone;
  l.zero_stage = a.zero_stage;
  l.schedule = l.vpp > 1 && a.schedule() != PipelineSchedule::Dynamic ? PipelineSchedule::Interleaved : a.schedule();
  const bool half = a.fp16 || a.bf16;
  l.dtype = a.fp16 ? ComputeDType::kFp16 : a.bf16 ? ComputeDType::kBf16 : ComputeDType::kFp32;
  l.activation_bytes = half ? 2 : 4;
  // Loom and Megatron: fp16 gradients with --fp16 (unless accumulated in fp32), fp32 with --bf16.
  l.grad_reduce_bytes = a.fp16 && !a.accumulate_allreduce_grads_in_fp32 ? 2 : 4;
  l.overlap_grad_reduce = a.overlap_grad_reduce;
  l.offload_optimizer = a.offload_optimizer != "none";
  l.vocab_divisible_by = a.make_vocab_size_divisible_by;
  return l;
}

}  // namespace loom
