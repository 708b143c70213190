// DeepSpeed's OVERFLOW and wall-clock lines, after their time prefix, equal reference log 000's text.
#include <gtest/gtest.h>

#include <regex>

#include "loom/train/deepspeed_lines.h"

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

TEST(DeepSpeedLines, PrefixFormat) {
  const std::string p = deepspeed_prefix("stage_1_and_2.py:1784:step");
  EXPECT_TRUE(std::regex_match(p, std::regex(R"(\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}\] \[INFO\] \[stage_1_and_2\.py:1784:step\] )")))
      << p;
}

}  // namespace
}  // namespace loom
