// EVA-CLIP's `Global Steps:` line, rebuilt from the values reference log 000 logged at steps 1, 101 and
// 601 (its meters are updated at log time only, so each average is over the logged points), must equal
// the log's text byte for byte.
#include <gtest/gtest.h>

#include <vector>

#include "loom/train/eva_clip_log.h"

namespace loom {
namespace {

struct Logged {
  double loss, clip, coca, grad_norm, scale, lr0, lr_visual, lr_text, logit_scale, data_t, batch_t, per_sec;
};

// Steps 1, 101, ..., 601 of log 000 (table in analysis-000-coca.md section 6); the learning rates are
// EVA-CLIP's warmup values, base x (step + 1) / 2000 x lr_scale.
const std::vector<Logged> kLog = {
    {29.341, 7.7311, 21.609, 4.9168, 65536, 0, 0, 0, 14.299, 18.972, 38.165, 53.6611},
    {29.299, 7.6892, 21.609, 4.7007, 65536, 2e-4 * 0.023757264018058777 * 101 / 2000, 2e-4 * 101 / 2000,
     2e-5 * 101 / 2000, 14.299, 0.001, 1.856, 1057.47},
    {29.231, 7.6216, 21.609, 4.3722, 65536, 0, 0, 0, 14.243, 0, 1, 1},
    {29.014, 7.4043, 21.609, 5.9928, 65536, 0, 0, 0, 14.271, 0, 1, 1},
    {28.624, 7.0141, 21.610, 7.5315, 65536, 0, 0, 0, 14.439, 0, 1, 1},
    {28.336, 6.7268, 21.609, 8.5119, 65536, 0, 0, 0, 14.724, 0, 1, 1},
    {28.062, 6.4613, 21.601, 9.2736, 32768, 2e-4 * 0.023757264018058777 * 601 / 2000, 2e-4 * 601 / 2000,
     2e-5 * 601 / 2000, 15.073, 0.002, 1.981, 1178.83},
};

std::vector<std::string> lines_for_logged_steps() {
  EvaTrainLine l;
  l.epoch = 0;
  l.samples_per_epoch = 12202117;
  l.global_batch = 2048;
  std::vector<std::string> out;
  for (size_t k = 0; k < kLog.size(); ++k) {
    const Logged& v = kLog[k];
    const int64_t i = int64_t(k) * 100;  // batch index within the epoch
    l.global_step = i + 1;
    l.num_samples = (i + 1) * 2048;
    l.percent_complete = 100.0 * double(i + 1) / 5958.0;
    l.loss.update(v.loss);
    l.loss_clip.update(v.clip);
    l.loss_caption.update(v.coca);
    l.grad_norm.update(v.grad_norm);
    l.loss_scale.update(v.scale);
    l.lrs = {{"LR", v.lr0}, {"LR_visual", v.lr_visual}, {"LR_text", v.lr_text}, {"LR_text_decoder", v.lr_text}};
    l.logit_scale = v.logit_scale;
    l.data_time.reset();
    l.batch_time.reset();
    l.data_time.update(v.data_t);
    l.batch_time.update(v.batch_t);
    // the X/s field is of the last step: global batch / its time
    l.batch_time.val = 2048.0 / v.per_sec;
    out.push_back(format_eva_train_line(l));
  }
  return out;
}

TEST(EvaClipLog, GlobalStepsLinesEqualLog000) {
  const auto lines = lines_for_logged_steps();
  EXPECT_EQ(lines[0],
            "Global Steps: 1 Train Epoch: 0 [    2048/12202117 (0%)] Loss: 29.341 (29.34) Loss(CLIP): 7.7311 (7.731) "
            "Loss(CoCa): 21.609 (21.61) Grad Norm: 4.9168 (4.917) Loss Scaler: 65536. (6.554e+04) LR: 0.000000 "
            "LR_visual: 0.000000 LR_text: 0.000000 LR_text_decoder: 0.000000 Logit Scale: 14.299 Data (t): 18.972 "
            "Batch (t): 38.165, 53.6611/s");
  EXPECT_EQ(lines[1],
            "Global Steps: 101 Train Epoch: 0 [  206848/12202117 (2%)] Loss: 29.299 (29.32) Loss(CLIP): 7.6892 "
            "(7.710) Loss(CoCa): 21.609 (21.61) Grad Norm: 4.7007 (4.809) Loss Scaler: 65536. (6.554e+04) LR: "
            "0.000000 LR_visual: 0.000010 LR_text: 0.000001 LR_text_decoder: 0.000001 Logit Scale: 14.299 Data "
            "(t): 0.001 Batch (t): 1.856, 1057.47/s");
  EXPECT_EQ(lines[6],
            "Global Steps: 601 Train Epoch: 0 [ 1230848/12202117 (10%)] Loss: 28.062 (28.84) Loss(CLIP): 6.4613 "
            "(7.235) Loss(CoCa): 21.601 (21.61) Grad Norm: 9.2736 (6.471) Loss Scaler: 32768. (6.085e+04) LR: "
            "0.000001 LR_visual: 0.000060 LR_text: 0.000006 LR_text_decoder: 0.000006 Logit Scale: 15.073 Data "
            "(t): 0.002 Batch (t): 1.981, 1178.83/s");
}

TEST(EvaClipLog, PrefixIsPythonLoggingFormat) {
  const std::string p = eva_log_prefix(0);
  ASSERT_EQ(p.size(), std::string("1970-01-01,00:00:00 | INFO | ").size());
  EXPECT_EQ(p.substr(4, 1), "-");
  EXPECT_EQ(p.substr(10, 1), ",");
  EXPECT_EQ(p.substr(19), " | INFO | ");
}

}  // namespace
}  // namespace loom
