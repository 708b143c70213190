#pragma once
// The optimizer side of `loom train` from its flags: one AdamW/LAMB per model chunk, the NVMe offload of
// their state, the loss scaler and the learning-rate schedule.
#include <memory>
#include <vector>

#include "loom/core/dtype.h"
#include "loom/optim/adamw.h"
#include "loom/optim/loss_scaler.h"
#include "loom/optim/lr_scheduler.h"

namespace loom {

class DecoderModel;
struct RankPrinter;
struct TrainState;
struct TensorParallel;
struct TrainArgs;

// One optimizer per chunk, over its parameters (LAMB's trust ratios summed over `tp`'s shards).
std::vector<std::unique_ptr<AdamW>> build_optimizers(const TrainArgs& a, const std::vector<DecoderModel*>& chunks,
                                                     const TensorParallel& tp);

// --offload-optimizer nvme: the moments (and with half-precision `weights` the fp32 main weights) go to
// files under --offload-path, streamed in blocks sized by --memory-budget-gb. Nothing otherwise.
void offload_optimizer_states(const TrainArgs& a, const std::vector<AdamW*>& opts, DType weights,
                              const RankPrinter& out);

// Megatron's loss scaler for --fp16/--bf16 and the --loss-scale flags (null: none).
std::unique_ptr<GradScaler> build_grad_scaler(const TrainArgs& a);

// Megatron's OptimizerParamScheduler in samples; `warmup_as_fraction`: --lr-warmup-fraction was given.
LrSchedule lr_schedule(const TrainArgs& a, bool warmup_as_fraction);

// The schedule of a run resumed from `resumed` (optim/lr_schedule_resume.h): the checkpoint's values with
// --use-checkpoint-lr-scheduler, the command line's with --override-lr-scheduler (Megatron's lines on rank
// 0), the command line's with a warning naming each difference otherwise; `command_line` as it is when
// the checkpoint has no schedule (saved before Loom recorded it, or not a checkpoint).
LrSchedule resumed_lr_schedule(const TrainArgs& a, const LrSchedule& command_line, const TrainState& resumed,
                               const RankPrinter& out);

}  // namespace loom
