// Megatron's micro-batch calculator (loom/train/batch_rampup.h) on the example of Megatron's own help text
// (--rampup-batch-size 16 8 300000 --global-batch-size 1024: 126 increments of 300000 / 126 = 2380.95
// samples) and on --decrease-batch-size-if-needed; the full transcription comparison is
// tests/parity/test_batch_rampup.py.
#include <gtest/gtest.h>

#include "loom/core/error.h"
#include "loom/train/batch_rampup.h"

using namespace loom;

namespace {
BatchRampup make(int64_t global, int64_t micro, int64_t dp, bool decrease, std::optional<std::array<int64_t, 3>> r) {
  BatchRampup::Options o;
  o.global_batch = global;
  o.micro_batch = micro;
  o.data_parallel = dp;
  o.decrease_if_needed = decrease;
  o.rampup = r;
  return BatchRampup(o);
}
}  // namespace

TEST(BatchRampup, MegatronsHelpExample) {
  const BatchRampup r = make(1024, 2, 4, false, std::array<int64_t, 3>{16, 8, 300000});
  EXPECT_EQ(r.at(0).global, 16);
  EXPECT_EQ(r.at(0).micro_batches, 2);
  EXPECT_EQ(r.at(2380).global, 16);  // int(2380 / 2380.952...) = 0
  EXPECT_EQ(r.at(2381).global, 24);
  EXPECT_EQ(r.at(300000).global, 16 + 126 * 8);  // int(300000 / (300000 / 126)) = 126 (Python gives 126 too)
  EXPECT_EQ(r.at(300001).global, 1024);
  EXPECT_EQ(r.at(300001).micro_batches, 128);
  EXPECT_EQ(r.max_micro_batches(), 128);
  EXPECT_EQ(r.micro_batch_counts().size(), 127u);  // 16, 24, ..., 1024 on 8: 2, 3, ..., 128
  EXPECT_EQ(r.setup_lines().front(),
            "will use batch size rampup starting from global batch size 16 to global batch size 1024 with batch size "
            "increments 8 over 300000 samples.");
  EXPECT_EQ(r.change_lines(r.at(0), r.at(2381)), std::vector<std::string>{"ramping up batch size from 16 to 24"});
  EXPECT_TRUE(r.change_lines(r.at(0), r.at(100)).empty());
}

TEST(BatchRampup, DecreaseRoundsEachBatchDown) {
  const BatchRampup r = make(30, 2, 2, true, std::array<int64_t, 3>{6, 6, 120});
  EXPECT_EQ(r.at(0).global, 6);
  EXPECT_EQ(r.at(0).running, 4);
  EXPECT_EQ(r.at(0).micro_batches, 1);
  EXPECT_EQ(r.at(1000).running, 28);
  EXPECT_EQ(r.inconsistency(0), "");
  const BatchRampup c = make(30, 2, 2, true, std::nullopt);
  EXPECT_EQ(c.at(123).running, 28);
  EXPECT_EQ(c.setup_lines().front(),
            "decreasing batch size from 30 to 28 to keep divisiblity by micro_batch_size=2 * data_parallel_size=2");
}

TEST(BatchRampup, RefusesWhatMegatronRejects) {
  using A = std::array<int64_t, 3>;
  EXPECT_THROW(make(32, 1, 1, false, A{8, 5, 100}), UserError);   // 24 not a multiple of 5
  EXPECT_THROW(make(32, 1, 1, false, A{40, 8, 100}), UserError);  // start above global
  EXPECT_THROW(make(32, 1, 1, false, A{32, 8, 100}), UserError);  // nothing to ramp (Megatron: ZeroDivisionError)
  EXPECT_THROW(make(32, 1, 1, false, A{8, 8, 0}), UserError);     // no ramp-up samples (ZeroDivisionError)
  EXPECT_THROW(make(30, 2, 2, false, std::nullopt), UserError);   // constant batch not divisible
  const BatchRampup r = make(32, 2, 2, false, A{6, 2, 100});      // 6 on 4 does not divide: found when reached
  EXPECT_NE(r.inconsistency(0), "");
  EXPECT_THROW(r.check_run(5, 1, ""), UserError);
  EXPECT_EQ(make(40, 4, 1, false, A{4, 4, 1000}).train_iters(12), 4);  // consumed 0, 4, 8, 12 are all <= 12
}
