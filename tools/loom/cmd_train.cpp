// `loom train`: Megatron's pretrain_gpt. This file holds the flags and their examples; the run itself
// (set-up, iterations, logs, checkpoints, exit) is loom::TrainingRun in src/loom/train/. Everything the
// user can get wrong is checked before the model is allocated; the log lines are Megatron's.
#include <chrono>

#include "commands.h"
#include "loom/train/arguments.h"
#include "loom/train/coca_args.h"
#include "loom/train/training_run.h"
#include "loom/util/cli.h"

namespace loom::cmd {

int train(int argc, char** argv) {
  if (wants_coca(argc, argv)) return train_coca(argc, argv);
  const auto started = std::chrono::steady_clock::now();  // --exit-duration-in-mins counts from here
  TrainArgs a;
  ArgParser p("loom train", "Train a GPT or Llama (--model) on data written by 'loom preprocess' (--model coca: image-text, see --model coca --help).");
  a.register_flags(p);
  p.add_example(
      "loom train --num-layers 4 --hidden-size 256 --num-attention-heads 4 --seq-length 256 --micro-batch-size 8 "
      "--global-batch-size 16 --train-iters 400 --lr 6e-4 --min-lr 6e-5 --lr-decay-style cosine --lr-warmup-iters 40 "
      "--data-path runs/kjv_text_document --vocab-file data/gpt2/vocab.json --merge-file data/gpt2/merges.txt "
      "--save runs/demo");
  p.add_example("loom train ... --hidden-dropout 0 --attention-dropout 0 --clip-grad 1.0 --eval-interval 100 --eval-iters 10");
  p.add_example("mpirun -np 8 loom train ... --tensor-model-parallel-size 2 --sequence-parallel "
                "--pipeline-model-parallel-size 2 --num-layers-per-virtual-pipeline-stage 1 --zero-stage 1");
  p.add_example("loom train ... --fp16 --recompute-granularity full --save runs/ckpt --save-interval 100 --exit-signal-handler");
  p.add_example("loom train ... --load runs/ckpt --save runs/ckpt   (resume, in any parallel layout)");
  p.add_example("loom train --model-preset llama3.2-1b --num-layers 4 ... --tokenizer-type HuggingFaceTokenizer "
                "--tokenizer-model tokenizer.json   (a preset's flags, overridden by explicit ones)");
  if (!TrainArgs::parse(p, argc, argv)) return 0;
  return run_training(a, p, argc, argv, started);
}

}  // namespace loom::cmd
