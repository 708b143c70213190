// `loom plan --model coca`: CoCa's parameter counts as EVA-CLIP prints them at start-up (log 000), per
// tower, and the bytes of weights, gradients and optimizer state, from the shape alone (nothing allocated);
// with --hardware, the predicted step (plan/coca_time_model.h) in EVA-CLIP's terms; the GPU memory as EVA-CLIP holds it
// (plan/coca_memory_model.h); with --compare-log, both beside what a run's log measured.
#include <cstdio>

#include "commands.h"
#include "loom/plan/coca_memory_model.h"
#include "loom/plan/coca_time_model.h"
#include "loom/plan/eva_clip_log_compare.h"
#include "loom/plan/hardware.h"
#include "loom/train/coca_args.h"
#include "loom/util/cli.h"

namespace loom::cmd {

int plan_coca(int argc, char** argv) {
  CocaArgs a;
  ArgParser p("loom plan --model coca", "CoCa's parameter counts per tower and its state's size, without allocating.");
  a.register_flags(p);
  int world_size = 1;
  p.add_int("--world-size", &world_size, "data-parallel processes to plan for (ZeRO shards over them)");
  std::string hardware;
  p.add_string("--hardware", &hardware,
               "predict the step time on this device: a built-in name (A100-80G, V100-32G, ...) or a FILE.json "
               "from 'loom bench --calibrate'");
  std::string compare_log;
  p.add_string("--compare-log", &compare_log,
               "an EVA-CLIP (or Loom) CoCa log to set beside the prediction: its Batch (t) (with --hardware) and "
               "DeepSpeed's MemAllocated / MaxMemAllocated");
  p.add_example("loom plan --model-preset coca-b16");
  p.add_example("loom plan --model coca --vision-layers 2 --vision-width 64 --vision-heads 4 --image-size 32 --patch-size 8");
  if (!p.parse(argc, argv)) return 0;
  a.validate(world_size);
  const Hardware hw = hardware.empty() ? Hardware{} : find_hardware(hardware);  // one error line before output
  const MeasuredCocaRun measured = compare_log.empty() ? MeasuredCocaRun{} : read_eva_clip_log(compare_log);
  const CocaParamCounts c = coca_parameter_counts(a.shape);
  std::printf("number of total params: %lld\n", (long long)c.total);
  std::printf("number of params with requires_grad: %lld\n", (long long)c.total);
  std::printf("number of visual params: %lld\n", (long long)c.visual);
  std::printf("number of text params: %lld\n", (long long)c.text);
  std::printf("number of text decoder params: %lld\n", (long long)c.text_decoder);
  std::printf("number of other params (logit_scale): %lld\n", (long long)c.other);
  std::printf("number of model state_dict keys: %zu\n",
              coca_parameter_specs(a.shape).size() + 2 + 2 * size_t(a.shape.vision.layers));
  // Mixed precision keeps 2-byte weights and gradients plus fp32 main weights and two moments (ZeRO 1-2
  // shard the fp32 state over the ranks); fp32 keeps weights, gradients and moments in fp32.
  const bool half = a.precision != "fp32";
  const int zero = a.enable_deepspeed || a.zero_stage > 0 ? a.zero_stage : 0;
  const double n = double(c.total), mb = 1024.0 * 1024.0;
  const double weights = n * (half ? 2 : 4), grads = n * (half ? 2 : 4) / (zero >= 2 ? world_size : 1);
  const double state = n * (half ? 12 : 8) / (zero >= 1 ? world_size : 1);
  std::printf(" > per rank: weights %.2f MB, gradients %.2f MB, optimizer state %.2f MB (%s, ZeRO stage %d over %d)\n",
              weights / mb, grads / mb, state / mb, half ? "fp16/bf16 with fp32 main weights" : "fp32", zero,
              world_size);
  CocaLayout l;
  l.dp = world_size, l.batch = a.batch_size, l.grad_checkpointing = a.grad_checkpointing, l.zero_stage = zero;
  l.dtype = a.precision == "bf16" ? ComputeDType::kBf16 : half ? ComputeDType::kFp16 : ComputeDType::kFp32;
  l.activation_bytes = half ? 2 : 4;
  l.lamb = a.optimizer == "lamb";
  // GPU memory as EVA-CLIP on PyTorch and DeepSpeed holds it (plan/coca_memory_model.h), in the GiB of
  // DeepSpeed's MemAllocated / MaxMemAllocated.
  const CocaMemoryTerms m = predict_coca_memory(a.shape, l);
  const double gib = 1024.0 * 1024.0 * 1024.0;
  std::printf(" > predicted GPU memory per rank, EVA-CLIP on PyTorch/DeepSpeed: MemAllocated=%.2fGB, "
              "MaxMemAllocated=%.2fGB (%s)\n",
              m.steady() / gib, m.peak() / gib,
              m.peak() == m.start_of_backward() ? "at the start of the backward" : "at the end of the backward");
  std::printf("   (GB: model states %.2f | batch %.2f | held outputs %.2f | saved activations %.2f | caption loss %.2f"
              " | gradients %.2f | recompute %.2f)\n",
              m.model_states / gib, m.batch / gib, m.held_outputs / gib, m.saved / gib, m.caption_loss / gib,
              m.gradients / gib, m.recompute / gib);
  if (hardware.empty()) {
    if (!compare_log.empty()) std::fputs(format_coca_comparison(measured, 0.0, m).c_str(), stdout);
    return 0;
  }
  if (hw.memory_bytes > 0)
    std::printf(" > %s on %s (%.2f GB)\n", m.peak() <= hw.memory_bytes ? "fits" : "does not fit", hw.name.c_str(),
                hw.memory_bytes / gib);
  const StepPrediction s = predict_coca_step(a.shape, l, hw);
  std::printf(" > predicted time per step on %d x %s (ms, batch %d per rank):\n", world_size, hw.name.c_str(), a.batch_size);
  for (const TimeRow& r : s.rows)
    if (r.seconds > 0)
      std::printf("   %-34s %12.2f  %5.1f%%\n", r.name.c_str(), r.seconds * 1e3, 100.0 * r.seconds / s.step_seconds);
  std::printf(" > predicted per GPU | samples per second: %.1f | model TFLOP/s (3 x forward, recompute excluded): %.1f\n",
              s.tokens_per_s_per_gpu, s.tflops_per_gpu);
  // EVA-CLIP's train line ends with the step time and the global samples per second of the step.
  std::printf(" Batch (t): %.3f, %#g/s\n", s.step_seconds, double(a.batch_size) * world_size / s.step_seconds);
  if (!compare_log.empty()) std::fputs(format_coca_comparison(measured, s.step_seconds, m).c_str(), stdout);
  return 0;
}

}  // namespace loom::cmd
