#include "loom/optim/lr_schedule_resume.h"

#include <cmath>

#include "loom/util/cli.h"

namespace loom {

namespace {

// As Python prints the value Megatron holds: ints for the step counts, floats for the rates, the style's name.
std::string shown(double v, bool integral) {
  if (integral && std::floor(v) == v) return std::to_string(static_cast<long long>(v));
  return python_float(v);
}

}  // namespace

LrScheduleResume resume_lr_schedule(const LrSchedule& cl, const LrSchedule& ck, bool use_checkpoint,
                                    bool override_schedule) {
  LrScheduleResume r;
  r.schedule = cl;  // init_lr (--lr-warmup-init) is not in Megatron's state dict: the command line's
  auto check_and_set = [&](auto& dst, const auto& cls_value, const auto& sd_value, const std::string& name,
                           const std::string& cls_text, const std::string& sd_text) {
    if (override_schedule) {
      r.lines.push_back(" > overriding " + name + " value to " + cls_text);
      dst = cls_value;
      return;
    }
    if (!use_checkpoint) {
      if (!(cls_value == sd_value)) r.mismatches.push_back(name + ": checkpoint " + sd_text + ", command line " + cls_text);
      dst = cls_value;
      return;
    }
    r.lines.push_back(" > using checkpoint value " + sd_text + " for " + name);
    dst = sd_value;
  };
  check_and_set(r.schedule.max_lr, cl.max_lr, ck.max_lr, "learning rate", shown(cl.max_lr, false), shown(ck.max_lr, false));
  check_and_set(r.schedule.min_lr, cl.min_lr, ck.min_lr, "minimum learning rate", shown(cl.min_lr, false),
                shown(ck.min_lr, false));
  check_and_set(r.schedule.warmup_steps, cl.warmup_steps, ck.warmup_steps, "warmup iterations",
                shown(cl.warmup_steps, true), shown(ck.warmup_steps, true));
  check_and_set(r.schedule.decay_steps, cl.decay_steps, ck.decay_steps, "total number of iterations",
                std::to_string(cl.decay_steps), std::to_string(ck.decay_steps));
  check_and_set(r.schedule.style, cl.style, ck.style, "learning rate decay style", cl.style, ck.style);
  return r;
}

}  // namespace loom
