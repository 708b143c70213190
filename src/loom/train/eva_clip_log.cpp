#include "loom/train/eva_clip_log.h"

#include <cmath>
#include <cstdio>

namespace loom {

std::string py_format(double v, const char* printf_spec) {
  char buf[64];
  std::snprintf(buf, sizeof buf, printf_spec, v);
  return buf;
}

std::string eva_log_prefix(std::time_t t, const char* level) {
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%d,%H:%M:%S", &tm);
  return std::string(buf) + " | " + level + " | ";
}

namespace {

// "Name: #.5g (#.4g) " as EVA-CLIP prints each loss meter.
std::string meter(const char* name, const AverageMeter& m) {
  return std::string(name) + ": " + py_format(m.val, "%#.5g") + " (" + py_format(m.avg, "%#.4g") + ") ";
}

}  // namespace

std::string format_eva_train_line(const EvaTrainLine& l) {
  // EVA-CLIP: sample_digits = ceil(log10(num_samples + 1)), the count right-aligned to that width.
  const int digits = int(std::ceil(std::log10(double(l.samples_per_epoch) + 1.0)));
  char head[160];
  std::snprintf(head, sizeof head, "Global Steps: %lld Train Epoch: %lld [%*lld/%lld (%.0f%%)] ",
                (long long)l.global_step, (long long)l.epoch, digits, (long long)l.num_samples,
                (long long)l.samples_per_epoch, l.percent_complete);
  std::string s = head;
  s += meter("Loss", l.loss);
  s += meter("Loss(CLIP)", l.loss_clip);
  if (l.has_caption) s += meter("Loss(CoCa)", l.loss_caption);
  s += meter("Grad Norm", l.grad_norm);
  s += meter("Loss Scaler", l.loss_scale);
  for (const NamedLr& lr : l.lrs) s += lr.name + ": " + py_format(lr.lr, "%5f") + " ";
  s += "Logit Scale: " + py_format(l.logit_scale, "%.3f") + " ";
  s += "Data (t): " + py_format(l.data_time.avg, "%.3f") + " ";
  s += "Batch (t): " + py_format(l.batch_time.avg, "%.3f") + ", ";
  s += py_format(double(l.global_batch) / l.batch_time.val, "%#g") + "/s";
  return s;
}

}  // namespace loom
