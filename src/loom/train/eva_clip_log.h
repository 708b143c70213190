#pragma once
// EVA-CLIP's training log (training/train.py train_one_epoch as reference log 000 prints it): Python
// logging's `YYYY-MM-DD,HH:MM:SS | INFO | ` prefix, AverageMeter semantics, and the `Global Steps:` line
// with its exact format specifiers (#.5g values, #.4g averages, :5f learning rates, .3f times, #g
// samples/s), so `loom report` and a user's own parsers read Loom's CoCa runs like EVA-CLIP's.
#include <cstdint>
#include <ctime>
#include <string>
#include <vector>

namespace loom {

// open_clip's AverageMeter: val is the last value, avg the mean of every update since reset().
struct AverageMeter {
  double val = 0, avg = 0, sum = 0;
  int64_t count = 0;
  void reset() { *this = AverageMeter{}; }
  void update(double v, int64_t n = 1) {
    val = v;
    sum += v * double(n);
    count += n;
    avg = sum / double(count);
  }
};

// `2024-02-20,09:55:01 | INFO | ` for local time `t`.
std::string eva_log_prefix(std::time_t t, const char* level = "INFO");

// One named learning rate of the line (`LR`, `LR_visual`, ...).
struct NamedLr {
  std::string name;
  double lr = 0;
};

struct EvaTrainLine {
  int64_t global_step = 0;        // step + 1
  int64_t epoch = 0;
  int64_t num_samples = 0;        // (i + 1) x batch x world
  int64_t samples_per_epoch = 0;  // the loader's num_samples
  double percent_complete = 0;    // 100 (i + 1) / batches per epoch
  // Meters as EVA-CLIP keeps them: updated at log time only, never reset within an epoch.
  AverageMeter loss, loss_clip, loss_caption, grad_norm, loss_scale;
  bool has_caption = true;        // CoCa's Loss(CoCa) field
  std::vector<NamedLr> lrs;       // LR, then one per tower
  double logit_scale = 0;         // exp(logit_scale parameter)
  AverageMeter data_time, batch_time;  // reset after each log line
  int64_t global_batch = 0;       // batch x world: samples/s = global_batch / batch_time.val
};

// "Global Steps: 1 Train Epoch: 0 [    2048/12202117 (0%)] Loss: 29.341 (29.34) ... Batch (t): 38.165, 53.6611/s"
// without the prefix.
std::string format_eva_train_line(const EvaTrainLine& l);

// Python's format(v, spec) for the specifiers above ("#.5g", "#.4g", "5f", ".3f", "#g"): printf's
// conversions with the same flags give the same text (both round half to even on the binary value).
std::string py_format(double v, const char* printf_spec);

}  // namespace loom
