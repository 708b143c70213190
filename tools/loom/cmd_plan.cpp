// `loom plan`: what a configuration costs, computed from the flags alone (nothing is allocated).
#include <cstdio>

#include "commands.h"
#include "loom/models/gpt_config.h"
#include "loom/train/arguments.h"
#include "loom/train/log_format.h"

namespace loom::cmd {

int plan(int argc, char** argv) {
  TrainArgs a;
  ArgParser p("loom plan", "Print the parameter count and the work of one iteration for 'loom train' flags, "
                           "without allocating the model.");
  a.register_flags(p);
  p.add_example("loom plan --num-layers 48 --hidden-size 1600 --num-attention-heads 25 --seq-length 1024");
  int world_size = 0;
  p.add_int("--world-size", &world_size, "processes to plan for (default tensor x pipeline x context parallel size)");
  if (!p.parse(argc, argv)) return 0;
  a.validate(p, /*need_data=*/false);
  const int T = a.tensor_model_parallel_size;
  a.validate_layout(world_size > 0 ? world_size : T * a.pipeline_model_parallel_size * a.context_parallel_size);
  const GptConfig cfg = a.model_config(TrainArgs::kGpt2Vocab);
  std::printf(" > padded vocab (size: %d) with %d dummy tokens (new size: %d)\n", cfg.vocab_size,
              cfg.padded_vocab_size - cfg.vocab_size, cfg.padded_vocab_size);
  for (int t = 0; t < T; t++) std::printf("%s\n", format_param_count_line(t, 0, gpt_total_params(cfg, T)).c_str());
  std::printf(" > parameters per transformer layer per tensor-parallel rank: %lld\n",
              (long long)transformer_layer_params(cfg, T));
  const double flops = gpt_flops_per_iteration(cfg, *a.global_batch_size);
  std::printf(" > model FLOPs per iteration (global batch %lld): %.6E\n", (long long)*a.global_batch_size, flops);
  std::printf(" > fp32 weights + gradients + Adam moments: %.2f MB\n",
              double(gpt_total_params(cfg)) * 16.0 / 1048576.0);
  return 0;
}

}  // namespace loom::cmd
