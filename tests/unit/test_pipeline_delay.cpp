// LOOM_PIPELINE_DELAY: its parser's refusals, and the slow link's draws (link=1): a function of the message
// only, on the named stage only, at the asked probability, and never a device sleep.
#include <gtest/gtest.h>

#include <chrono>

#include "loom/core/error.h"
#include "loom/train/pipeline_delay.h"

namespace loom {
namespace {

std::string refusal(const std::string& spec) {
  try {
    (void)PipelineDelay::parse(spec);
  } catch (const UserError& e) {
    return e.what();
  }
  return "";
}

TEST(PipelineDelay, LinkTakesMillisecondsOnly) {
  EXPECT_EQ(refusal("stage=1,prob=0.3,frac=0.3,link=1"),
            "LOOM_PIPELINE_DELAY: link=1 takes ms= (a message has no pass time to take frac= of)");
  EXPECT_EQ(refusal("stage=1,prob=0.3,ms=4,link=2"), "LOOM_PIPELINE_DELAY: link=2 is not 0 or 1");
  EXPECT_EQ(refusal("stage=1,prob=0.3,ms=4,wire=1"),
            "LOOM_PIPELINE_DELAY: unknown key 'wire' (stage, prob, ms, frac, seed, link)");
  EXPECT_EQ(refusal("stage=1,prob=0.3,ms=4,link=1"), "");
  EXPECT_EQ(refusal("stage=1,prob=0.3,ms=4,link=0"), "");
}

TEST(PipelineDelay, LinkDrawsDependOnTheMessageOnly) {
  const PipelineDelay d = PipelineDelay::parse("stage=1,prob=0.3,ms=4,link=1");
  ASSERT_TRUE(d.link());
  int late = 0, n = 0;
  for (uint64_t run = 1; run <= 50; run++)
    for (int micro = 0; micro < 40; micro++)
      for (int chunk = 0; chunk < 2; chunk++)
        for (int kind = 0; kind < 2; kind++) {
          const double us = d.message_delay_us(1, run, micro, chunk, kind);
          ASSERT_TRUE(us == 0 || us == 4000) << us;
          ASSERT_EQ(us, d.message_delay_us(1, run, micro, chunk, kind));  // the same message, the same draw
          ASSERT_EQ(d.message_delay_us(0, run, micro, chunk, kind), 0);  // another stage's link is fast
          late += us > 0, n++;
        }
  // 8000 draws at p = 0.3: the standard deviation of the count is 41.
  EXPECT_NEAR(double(late), 0.3 * n, 5 * 41.0);
  // Another seed draws other messages.
  const PipelineDelay e = PipelineDelay::parse("stage=1,prob=0.3,ms=4,link=1,seed=7");
  int differ = 0;
  for (int micro = 0; micro < 200; micro++) differ += d.message_delay_us(1, 1, micro, 0, 0) != e.message_delay_us(1, 1, micro, 0, 0);
  EXPECT_GT(differ, 40);
}

TEST(PipelineDelay, LinkNeverSleepsAfterAPassAndDeviceNeverDelaysAMessage) {
  PipelineDelay link = PipelineDelay::parse("stage=0,prob=1,ms=200,link=1");
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(link.after_pass(0, 1000.0), 0.0);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 0.1);
  const PipelineDelay device = PipelineDelay::parse("stage=0,prob=1,ms=200");
  EXPECT_FALSE(device.link());
  EXPECT_EQ(device.message_delay_us(0, 1, 0, 0, 0), 0.0);
  PipelineDelay sure = PipelineDelay::parse("stage=0,prob=1,ms=1");
  EXPECT_EQ(sure.after_pass(0, 10.0), 1000.0);
}

}  // namespace
}  // namespace loom
