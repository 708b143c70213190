// DeepSpeed's OVERFLOW and wall-clock lines, after their time prefix, equal reference log 000's text.
#include <gtest/gtest.h>

#include <regex>

#include "loom/train/deepspeed_lines.h"
#include "loom/train/deepspeed_progress.h"

namespace loom {
namespace {

TEST(DeepSpeedLines, OverflowMessagesOfLog000) {
  // Log 000's four overflows: the first uses up the hysteresis (int scale unchanged), the second halves it
  // (now a float), and after growing back the scale is the float 65536.0.
  EXPECT_EQ(deepspeed_overflow_message(0, {65536, false}, {65536, false}),
            "[deepspeed] OVERFLOW! Rank 0 Skipping step. Attempted loss scale: 65536, reducing to 65536");
  EXPECT_EQ(deepspeed_overflow_message(0, {65536, false}, {32768, true}),
            "[deepspeed] OVERFLOW! Rank 0 Skipping step. Attempted loss scale: 65536, reducing to 32768.0");
  EXPECT_EQ(deepspeed_overflow_message(0, {65536, true}, {65536, true}),
            "[deepspeed] OVERFLOW! Rank 0 Skipping step. Attempted loss scale: 65536.0, reducing to 65536.0");
}

TEST(DeepSpeedLines, WallClockBreakdownOfLog000) {
  EXPECT_EQ(deepspeed_timer_message(0, {{"forward", 364.60}, {"backward", 1038.75}, {"backward_inner", 1030.76},
                                        {"backward_allreduce", 7.94}, {"step", 124.41}}),
            "rank=0 time (ms) | forward: 364.60 | backward: 1038.75 | backward_inner: 1030.76 | backward_allreduce: "
            "7.94 | step: 124.41");
  EXPECT_EQ(deepspeed_timer_message(0, {{"optimizer_allgather", 37.72}, {"optimizer_gradients", 11.75},
                                        {"optimizer_step", 14.13}}),
            "rank=0 time (ms) | optimizer_allgather: 37.72 | optimizer_gradients: 11.75 | optimizer_step: 14.13");
}

TEST(DeepSpeedLines, ThroughputTimerCountsFromItsThirdStep) {
  // DeepSpeed 0.8.2's ThroughputTimer (start_step 2): steps 1 and 2 are not timed; from step 3 each step's
  // time adds to the running average, reported at multiples of steps_per_print of its own count, with
  // train_batch_size samples a step; memory in GiB rounded as Python's round(x, 2) prints it.
  DeepSpeedThroughputTimer t(2, 8);
  MemoryStats m;
  m.allocated = int64_t(1) << 29;      // 0.5 GiB
  m.max_allocated = int64_t(3) << 30;  // 3 GiB
  const double secs[] = {9.0, 9.0, 0.5, 2.0, 1.0, 1.0};
  std::vector<std::string> lines;
  for (double s : secs) {
    t.start();
    lines.push_back(t.stop(m, s));
  }
  EXPECT_EQ(lines[0], "");
  EXPECT_EQ(lines[1], "");  // a multiple of 2, but not timed yet
  EXPECT_EQ(lines[2], "");
  EXPECT_EQ(lines[3], "epoch=0/micro_step=4/global_step=4, RunningAvgSamplesPerSec=6.4, CurrSamplesPerSec=4.0, "
                      "MemAllocated=0.5GB, MaxMemAllocated=3.0GB");  // 8 / (2.5 / 2), 8 / 2
  EXPECT_EQ(lines[4], "");
  EXPECT_EQ(lines[5], "epoch=0/micro_step=6/global_step=6, RunningAvgSamplesPerSec=7.111111111111111, "
                      "CurrSamplesPerSec=8.0, MemAllocated=0.5GB, MaxMemAllocated=3.0GB");  // 8 / (4.5 / 4)
  // A stop without a start (DeepSpeed's `if not self.started: return`) counts nothing.
  EXPECT_EQ(t.stop(m, 1.0), "");
  t.start();
  EXPECT_EQ(t.stop(m, 1.0), "");  // step 7
}

TEST(DeepSpeedLines, StepMessageHasOneMomentumPairPerGroup) {
  EXPECT_EQ(deepspeed_step_message(0, 0, {0.0002, 2e-05, 0.0005}, 0.9, 0.98),
            "[Rank 0] step=0, skipped=0, lr=[0.0002, 2e-05, 0.0005], mom=[[0.9, 0.98], [0.9, 0.98], [0.9, 0.98]]");
}

TEST(DeepSpeedLines, PrefixFormat) {
  const std::string p = deepspeed_prefix("stage_1_and_2.py:1784:step");
  EXPECT_TRUE(std::regex_match(p, std::regex(R"(\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}\] \[INFO\] \[stage_1_and_2\.py:1784:step\] )")))
      << p;
}

}  // namespace
}  // namespace loom
