// `loom plan --model coca`: CoCa's parameter counts as EVA-CLIP prints them at start-up (log 000), per
// tower, and the bytes of weights, gradients and optimizer state, from the shape alone (nothing allocated).
#include <cstdio>

#include "commands.h"
#include "loom/train/coca_args.h"
#include "loom/util/cli.h"

namespace loom::cmd {

int plan_coca(int argc, char** argv) {
  CocaArgs a;
  ArgParser p("loom plan --model coca", "CoCa's parameter counts per tower and its state's size, without allocating.");
  a.register_flags(p);
  int world_size = 1;
  p.add_int("--world-size", &world_size, "data-parallel processes to plan for (ZeRO shards over them)");
  p.add_example("loom plan --model-preset coca-b16");
  p.add_example("loom plan --model coca --vision-layers 2 --vision-width 64 --vision-heads 4 --image-size 32 --patch-size 8");
  if (!p.parse(argc, argv)) return 0;
  a.validate(world_size);
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
  return 0;
}

}  // namespace loom::cmd
