#pragma once
// The learning-rate schedule of a resumed run: Megatron's OptimizerParamScheduler.load_state_dict and its
// _check_and_set, value by value (learning rate, minimum learning rate, warmup iterations, total number
// of iterations, learning rate decay style):
//  - override (--override-lr-scheduler): the command line's value, line " > overriding NAME value to V";
//  - use_checkpoint (--use-checkpoint-lr-scheduler): the checkpoint's, line " > using checkpoint value V for NAME";
//  - neither: Megatron asserts the two are equal. Loom keeps the command line's value (what it did before
//    these flags) and returns each mismatch in `mismatches` for a warning.
// Both flags together are refused earlier (MegatronCompat::apply), as Megatron's assert does.
#include <string>
#include <vector>

#include "loom/optim/lr_scheduler.h"

namespace loom {

struct LrScheduleResume {
  LrSchedule schedule;                  // what the run uses
  std::vector<std::string> lines;       // Megatron's lines (with one of the flags)
  std::vector<std::string> mismatches;  // "NAME: checkpoint V, command line W" (with neither flag)
};

LrScheduleResume resume_lr_schedule(const LrSchedule& command_line, const LrSchedule& checkpoint, bool use_checkpoint,
                                    bool override_schedule);

}  // namespace loom
