// `loom train --model coca`: EVA-CLIP's CoCa training (reference log 000). This file holds the flags and
// their examples; the run is loom::run_coca_training in src/loom/train/coca_run.cpp.
#include <chrono>
#include <string>
#include <vector>

#include "commands.h"
#include "loom/train/coca_args.h"
#include "loom/train/coca_run.h"
#include "loom/util/cli.h"

namespace loom::cmd {

int train_coca(int argc, char** argv) {
  const auto started = std::chrono::steady_clock::now();
  CocaArgs a;
  ArgParser p("loom train --model coca",
              "Train CoCa (EVA-02 ViT, CLIP text tower, caption decoder) on an image-text index, as EVA-CLIP does.");
  a.register_flags(p);
  p.add_example("loom make-images --output runs/shapes --num-train 2000 --num-val 200 --image-size 64");
  p.add_example("loom train --model coca --train-data runs/shapes/train.jsonl --val-data runs/shapes/val.jsonl "
                "--image-size 64 --patch-size 8 --vision-width 128 --vision-layers 2 --vision-heads 4 ... --epochs 5");
  p.add_example("mpirun -np 4 loom train --model-preset coca-b16 --train-data grit.json --batch-size 512 "
                "--enable-deepspeed --zero-stage 1 --precision amp --optimizer lamb --grad-checkpointing "
                "--visual-lr 2e-4 --text-lr 2e-5 --text-decoder-lr 2e-5 --visual-ld 0.75 --text-ld 0.75 "
                "--text-decoder-ld 0.75 --warmup 2000 --grad-clip-norm 5   (reference log 000)");
  p.add_example("loom train --model coca ... --resume latest   (the newest checkpoint of the run --name)");
  CocaOptimizerArgs::check_tower_flags(p, std::vector<std::string>(argv, argv + argc));
  if (!p.parse(argc, argv)) return 0;
  return run_coca_training(a, p, started);
}

}  // namespace loom::cmd
