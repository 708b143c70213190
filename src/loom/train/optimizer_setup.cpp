#include "loom/train/optimizer_setup.h"

#include <algorithm>
#include <cstdio>
#include <string>

#include "loom/ckpt/checkpoint.h"
#include "loom/models/decoder_model.h"
#include "loom/optim/lr_schedule_resume.h"
#include "loom/train/arguments.h"
#include "loom/train/run_logging.h"

namespace loom {

std::vector<std::unique_ptr<AdamW>> build_optimizers(const TrainArgs& a, const std::vector<DecoderModel*>& chunks,
                                                     const TensorParallel& tp) {
  std::vector<std::unique_ptr<AdamW>> opts;
  for (DecoderModel* m : chunks) {
    AdamWOptions ao{a.adam_beta1, a.adam_beta2, a.adam_eps, a.weight_decay};
    ao.kind = a.optimizer == "lamb" ? OptimizerKind::Lamb : a.optimizer == "sgd" ? OptimizerKind::Sgd : OptimizerKind::AdamW;
    ao.sgd_momentum = a.sgd_momentum;
    a.deepspeed_lamb.to_options(ao);
    opts.push_back(std::make_unique<AdamW>(m->params(), ao, tp.comm));
  }
  return opts;
}

void offload_optimizer_states(const TrainArgs& a, const std::vector<AdamW*>& opts, DType weights,
                              const RankPrinter& out) {
  if (a.offload_optimizer != "nvme") return;
  // Three blocks of (m, v) are resident, 24 bytes per block element; 36 with fp32 main weights (half
  // precision), which go to the file too.
  const double per_element = weights == DType::F32 ? 24.0 : 36.0;
  const int64_t block = std::max<int64_t>(1 << 14, int64_t(a.memory_budget_gb * 1073741824.0 / per_element));
  for (AdamW* o : opts) o->offload(a.offload_path, block);
  out.print_rank_0("> optimizer state offloaded to " + a.offload_path + " in blocks of " + std::to_string(block) +
                   " parameters");
}

std::unique_ptr<GradScaler> build_grad_scaler(const TrainArgs& a) {
  GradScalerOptions gso;
  gso.fp16 = a.fp16;
  gso.bf16 = a.bf16;
  gso.loss_scale = a.loss_scale;
  gso.initial_loss_scale = a.initial_loss_scale;
  gso.min_loss_scale = a.min_loss_scale;
  gso.loss_scale_window = a.loss_scale_window;
  gso.hysteresis = a.hysteresis;
  return make_grad_scaler(gso);
}

LrSchedule lr_schedule(const TrainArgs& a, bool warmup_as_fraction) {
  const int64_t gbs = *a.global_batch_size;
  LrSchedule ls;
  ls.max_lr = a.lr;
  ls.min_lr = a.min_lr;
  ls.init_lr = a.lr_warmup_init;
  ls.style = a.lr_decay_style;
  if (a.compat.sample_based()) {  // Megatron: --train-samples counts the schedule in samples directly
    ls.decay_steps = a.compat.lr_decay_samples.value_or(*a.compat.train_samples);
    ls.warmup_steps =
        warmup_as_fraction ? a.lr_warmup_fraction * double(ls.decay_steps) : double(a.compat.lr_warmup_samples);
    return ls;
  }
  ls.decay_steps = *a.lr_decay_iters * gbs;
  ls.warmup_steps =
      warmup_as_fraction ? a.lr_warmup_fraction * double(ls.decay_steps) : double(a.lr_warmup_iters * gbs);
  return ls;
}

LrSchedule resumed_lr_schedule(const TrainArgs& a, const LrSchedule& command_line, const TrainState& resumed,
                               const RankPrinter& out) {
  const bool use_checkpoint = a.compat.use_checkpoint_lr_scheduler;
  if (!resumed.has_lr_schedule) {
    if (use_checkpoint && !a.load.empty() && !a.finetune && out.rank == 0)
      std::fprintf(stderr, "loom: warning: --use-checkpoint-lr-scheduler: %s records no learning-rate schedule "
                   "(saved by an older Loom): the command line's is used\n", a.load.c_str());
    return command_line;
  }
  const LrScheduleResume r = resume_lr_schedule(command_line, resumed.lr_schedule, use_checkpoint, a.compat.override_lr_scheduler);
  for (const std::string& line : r.lines) out.print_rank_0(line);
  if (!r.mismatches.empty() && out.rank == 0) {
    std::string list;
    for (const std::string& m : r.mismatches) list += (list.empty() ? "" : "; ") + m;
    std::fprintf(stderr, "loom: warning: the learning-rate schedule differs from the checkpoint's (%s): the command "
                 "line's is used (Megatron stops here; --use-checkpoint-lr-scheduler takes the checkpoint's, "
                 "--override-lr-scheduler the command line's)\n", list.c_str());
  }
  return r.schedule;
}

}  // namespace loom
