// Megatron's log lines, exactly.
#include <gtest/gtest.h>

#include "loom/train/log_format.h"
#include "loom/train/timers.h"

using namespace loom;

TEST(LogFormat, IterationLine) {
  IterationLog l;
  l.timestamp = "2025-06-28 18:42:27";
  l.iteration = 1;
  l.train_iters = 20;
  l.consumed_samples = 16;
  l.elapsed_ms = 4493.2;
  l.tflops = 5.7;
  l.tokens_per_s = 3646.4;
  l.learning_rate = 0;
  l.global_batch_size = 16;
  l.lm_loss = 11.29461;
  l.loss_scale = 4294967296.0;
  l.grad_norm = 199.088;
  l.skipped = 1;
  EXPECT_EQ(format_iteration_line(l),
            " [2025-06-28 18:42:27] iteration        1/      20 | consumed samples:           16 | elapsed time per "
            "iteration (ms): 4493.2 | throughput per GPU (TFLOP/s/GPU): 5.700 | tokens per second per GPU: 3646.4 | "
            "learning rate: 0.000000E+00 | global batch size:    16 | lm loss: 1.129461E+01 | loss scale: "
            "4294967296.0 | grad norm: 199.088 | number of skipped iterations:   1 | number of nan iterations:   0 |");
}

TEST(LogFormat, ParameterCountAndValidation) {
  EXPECT_EQ(format_param_count_line(0, 0, 1557686400),
            " > number of parameters on (tensor, pipeline) model parallel rank (0, 0): 1557686400");
  // Megatron: '-' * (len(string) + 1) above and below.
  const std::string dashes(95, '-');
  EXPECT_EQ(format_validation_block("iteration 100", 2.0),
            dashes + "\n validation loss at iteration 100 | lm loss value: 2.000000E+00 | lm loss PPL: 7.389056E+00 | \n" +
                dashes);
}

TEST(LogFormat, TimerLineOrderAndAverage) {
  Timers t;
  t.start("batch-generator");
  t.stop("batch-generator");
  t.start("forward-compute");
  t.stop("forward-compute");
  std::string line = t.log_line(1.0);
  EXPECT_EQ(line.rfind("time (ms) | forward-compute: ", 0), 0u) << line;
  EXPECT_NE(line.find(" | batch-generator: "), std::string::npos);
  EXPECT_LT(line.find("forward-compute"), line.find("batch-generator"));
}

TEST(LogFormat, ModelStatesAndActivationLines) {
  EXPECT_EQ(format_model_states_line(3, 13.8, 13.8, 82.8125, 1.5),
            "[Rank 3] model states (MB) | weights: 13.8000 | gradients: 13.8000 | optimizer: 82.8125 | total: "
            "110.4125 | working buffers: 1.5000");
  EXPECT_EQ(format_activations_line(0, 4, 196.40625), "[Rank 0] activations (MB) | micro-batches in flight: 4 | total: 196.4062");
}
