// Reading an EVA-CLIP CoCa log for `loom plan --model coca --compare-log`: each Global Steps line's
// Batch (t) window average, the step time as the mean of the lines after the first, and the last DeepSpeed
// throughput line's MemAllocated / MaxMemAllocated (the lines copied from reference log 000's formats).
#include <gtest/gtest.h>

#include "loom/plan/eva_clip_log_compare.h"

namespace loom {
namespace {

const char* kLog =
    "2024-02-20,09:51:04 | INFO | Global Steps: 1 Train Epoch: 0 [   2048/12201984 (0%)] Loss: 23.758 (23.76) "
    "Data (t): 18.972 Batch (t): 38.165, 53.6611/s\n"
    "[2024-02-20 10:25:57,892] [INFO] [timer.py:198:stop] epoch=0/micro_step=1000/global_step=1000, "
    "RunningAvgSamplesPerSec=1126.8026294283802, CurrSamplesPerSec=1211.289158780771, MemAllocated=5.29GB, "
    "MaxMemAllocated=28.74GB\n"
    "2024-02-20,09:54:10 | INFO | Global Steps: 101 Train Epoch: 0 [ 206848/12201984 (2%)] Loss: 23.1 (23.4) "
    "Data (t): 0.001 Batch (t): 1.856, 1057.47/s\n"
    "2024-02-20,09:57:14 | INFO | Global Steps: 201 Train Epoch: 0 [ 411648/12201984 (3%)] Loss: 22.9 (23.0) "
    "Data (t): 0.001 Batch (t): 1.800, 966.353/s\n";

TEST(EvaClipLogCompare, BatchTimesAndDeepSpeedMemory) {
  const MeasuredCocaRun r = parse_eva_clip_log(kLog);
  ASSERT_EQ(r.batch_seconds.size(), 3u);
  EXPECT_EQ(r.batch_seconds[0], 38.165);
  EXPECT_DOUBLE_EQ(r.steady_batch_seconds(), (1.856 + 1.800) / 2);
  ASSERT_TRUE(r.mem_allocated_gb && r.max_mem_allocated_gb);
  EXPECT_EQ(*r.mem_allocated_gb, 5.29);
  EXPECT_EQ(*r.max_mem_allocated_gb, 28.74);
}

TEST(EvaClipLogCompare, ComparisonRows) {
  const MeasuredCocaRun r = parse_eva_clip_log(kLog);
  CocaMemoryTerms m;
  m.model_states = 1.0 * (1ll << 30), m.held_outputs = 4.0 * (1ll << 30), m.caption_loss = 20.0 * (1ll << 30);
  EXPECT_EQ(format_coca_comparison(r, 2.0, m),
            " > prediction against the log         measured    predicted   predicted/measured\n"
            "   Batch (t) (s)                         1.828       2.000   1.094\n"
            "   MemAllocated (GB)                     5.290       5.000   0.945\n"
            "   MaxMemAllocated (GB)                 28.740      25.000   0.870\n");
  // Without a device no step is predicted: the memory rows only. A log without DeepSpeed's line: no memory rows.
  EXPECT_EQ(format_coca_comparison(r, 0.0, m).find("Batch (t)"), std::string::npos);
  const MeasuredCocaRun plain = parse_eva_clip_log("x | INFO | Global Steps: 1 Batch (t): 0.5, 16/s\n");
  EXPECT_EQ(plain.steady_batch_seconds(), 0.5);
  EXPECT_EQ(format_coca_comparison(plain, 1.0, m).find("MemAllocated"), std::string::npos);
}

TEST(EvaClipLogCompare, UnreadableOrEmptyLogIsAnError) {
  EXPECT_THROW(read_eva_clip_log("/nonexistent/out.log"), std::exception);
}

}  // namespace
}  // namespace loom
