#pragma once
// `loom train --model coca`: EVA-CLIP's training/main.py + train.py for CoCa on Loom (reference log 000):
// set-up (inputs and outputs checked first, the DeepSpeed JSON, the model, EVA-CLIP's parameter groups,
// LAMB/AdamW, the fp16 loss scaler, the image-text loader), then epochs of steps with the `Global Steps:`
// line every --log-every-n-steps, DeepSpeed's OVERFLOW and wall-clock lines, retrieval evaluation and
// checkpoints (epoch_N) at epoch ends, a clean stop with a checkpoint on SIGHUP/SIGTERM/SIGINT, and exact
// resume (--resume).
#include <chrono>

#include "loom/train/coca_args.h"
#include "loom/util/cli.h"

namespace loom {

int run_coca_training(CocaArgs& a, const ArgParser& p, std::chrono::steady_clock::time_point started);

}  // namespace loom
