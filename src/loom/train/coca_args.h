#pragma once
// `loom train --model coca` / `loom plan --model coca` arguments: EVA-CLIP's training/params.py flag
// names (--batch-size per rank, --epochs, --warmup, --train-data, --dataset-type, --precision,
// --grad-checkpointing, --coca-*-loss-weight, ...) beside Loom's shape flags for the towers (defaults:
// log 000's CoCa-B/16, also --model-preset coca-b16). Checked before anything is allocated.
#include <cstdint>
#include <string>
#include <vector>

#include "loom/models/coca/coca_config.h"
#include "loom/train/coca_optimizer_args.h"
#include "loom/train/deepspeed_lamb_args.h"
#include "loom/train/image_text_data_args.h"
#include "loom/train/zero_shot_args.h"
#include "loom/util/cli.h"

namespace loom {

// True when the command line asks for CoCa (--model coca or --model-preset coca-b16, either spelling).
bool wants_coca(int argc, char** argv);

struct CocaArgs {
  std::string model = "coca", model_preset;
  CocaConfig shape = [] {
    CocaConfig c = coca_b16_config();
    c.vision.rope_pt_grid = 0;  // resolved in validate(): the preset's 16, else the grid
    return c;
  }();
  // batch, schedule, optimizer (EVA-CLIP's names)
  int batch_size = 64;  // per rank
  int64_t epochs = 1;
  int64_t max_steps = 0;  // stop after this many optimizer steps (0: the epochs decide)
  int64_t warmup = 0;
  double lr = 5e-4, wd = 0.05, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, grad_clip_norm = 0;
  std::string optimizer = "adamw";
  int64_t seed = 0;
  std::string precision = "fp32";  // fp32 | fp16 | amp (EVA-CLIP's spelling; with DeepSpeed: fp16) | bf16
  bool grad_checkpointing = false;
  bool local_loss = true, gather_with_grad = true;
  double coca_contrastive_loss_weight = 1.0, coca_caption_loss_weight = 2.0;
  CocaOptimizerArgs group_flags;  // per-tower lr / wd / layer decay (EVA-CLIP's --visual-lr ...)
  // data
  std::string train_data, val_data;
  ImageTextDataArgs data = [] {  // --dataset-type (json by default here), its key flags, --workers
    ImageTextDataArgs d;
    d.dataset_type = "json";
    return d;
  }();
  std::string tokenizer_type = "CLIPTokenizer";
  std::string tokenizer_model;        // CLIPTokenizer: bpe_simple_vocab_16e6.txt.gz
  std::string vocab_file, merge_file;  // GPT2BPETokenizer
  // logging, evaluation, checkpoints
  int64_t log_every_n_steps = 100;
  int64_t val_frequency = 1, save_frequency = 1;
  ZeroShotArgs zeroshot;  // --zeroshot-frequency, --zeroshot-classes, ...
  std::string logs = "./logs/", name, resume;
  std::string report_to;  // "tensorboard": EVA-CLIP's train/* scalars in LOGS/NAME/tensorboard
  // DeepSpeed (EVA-CLIP's --enable-deepspeed --zero-stage, and the JSON it writes)
  bool enable_deepspeed = false;
  int zero_stage = 0;
  std::string deepspeed_config;
  // fp16 loss scaling (DeepSpeed's fp16 section; EVA-CLIP writes initial_scale_power 16, window 1000,
  // hysteresis 2, min 1); static_loss_scale > 0: a constant scale.
  int initial_scale_power = 16;
  int64_t loss_scale_window = 1000, hysteresis = 2;
  double min_loss_scale = 1, static_loss_scale = 0;
  bool wall_clock_breakdown = false;   // DeepSpeed's per-step timer lines
  // DeepSpeed's progress lines (deepspeed_progress.h) every this many steps: the JSON's steps_per_print
  // (DeepSpeed's default 10 when it has none), 1000 as EVA-CLIP's generated JSON with --enable-deepspeed alone.
  int64_t steps_per_print = 1000;
  DeepSpeedLambArgs lamb;  // FusedLamb's parameters from the DeepSpeed config's optimizer section
  std::vector<std::string> config_warnings;  // unknown DeepSpeed keys, printed at start

  // The DeepSpeed JSON (--deepspeed-config), onto the flags the user did not give; UserError on a
  // malformed file or values DeepSpeed would reject.
  void apply_deepspeed_config(const ArgParser& p, int world_size);

  void register_flags(ArgParser& p);
  // Fills the shape from the flags and checks everything that does not need a file; throws UserError.
  void validate(int world_size);
  int64_t global_batch(int world_size) const { return int64_t(batch_size) * world_size; }
};

}  // namespace loom
