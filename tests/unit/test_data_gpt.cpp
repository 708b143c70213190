// Megatron's GPT dataset pieces: numpy's RandomState, split rounding, epochs, index maps, blending,
// target sample counts and the LM batch (loss mask, positions, per-row document start).
// (Whole-pipeline parity with a numpy reference is tests/parity/test_indexed_dataset.py.)
#include <gtest/gtest.h>

#include <random>

#include "loom/core/error.h"
#include "loom/data/gpt_data.h"
#include "loom/data/gpt_index.h"

using namespace loom::data;

TEST(DataGpt, NumpyRandomStateMatchesNumpy) {
  // np.random.RandomState(seed) is MT19937 seeded by init_genrand, like std::mt19937(seed).
  NumpyRandomState r(1234);
  std::mt19937 m(1234);
  for (int i = 0; i < 2000; i++) ASSERT_EQ(r.next_uint32(), m());
  // rs = np.random.RandomState(1234); a = np.arange(10, dtype=np.int32); rs.shuffle(a)
  NumpyRandomState a(1234);
  std::vector<int32_t> x = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  a.shuffle(x.data(), 10);
  EXPECT_EQ(x, (std::vector<int32_t>{7, 2, 9, 1, 0, 8, 4, 5, 6, 3}));
  NumpyRandomState b(0);
  std::vector<uint32_t> y(20);
  for (uint32_t i = 0; i < 20; i++) y[i] = i;
  b.shuffle(y.data(), 20);
  EXPECT_EQ(y, (std::vector<uint32_t>{18, 1, 19, 8, 10, 17, 6, 13, 4, 2, 5, 14, 9, 7, 16, 11, 3, 0, 15, 12}));
  EXPECT_THROW(NumpyRandomState(uint64_t(1) << 32), loom::UserError);
}

TEST(DataGpt, SplitRoundingIsMegatrons) {
  using A = std::array<int64_t, 4>;
  EXPECT_EQ(train_valid_test_split("800,100,100", 1014), (A{0, 812, 913, 1014}));  // reference log 002
  EXPECT_EQ(train_valid_test_split("1,1", 5), (A{0, 3, 5, 5}));                     // round half to even
  EXPECT_EQ(train_valid_test_split("969, 30, 1", 1189), (A{0, 1152, 1188, 1189}));
  EXPECT_EQ(train_valid_test_split("949,50,1", 100), (A{0, 95, 100, 100}));
  EXPECT_EQ(train_valid_test_split("1/1/1", 10), (A{0, 4, 7, 10}));
  EXPECT_EQ(train_valid_test_split("2", 6), (A{0, 6, 6, 6}));
  EXPECT_THROW(train_valid_test_split("a,b", 6), loom::UserError);
  EXPECT_THROW(train_valid_test_split("0,0,0", 6), loom::UserError);
}

TEST(DataGpt, EpochsMatchReferenceLog) {
  // Log 002: 4852 train tokens -> 13508 epochs for 64000 samples; 603 tokens -> 2174 / 1087 epochs.
  EXPECT_EQ(num_epochs(4852, 1024, 64000), 13508);
  EXPECT_EQ(num_epochs(603, 1024, 1280), 2174);
  EXPECT_EQ(num_epochs(603, 1024, 640), 1087);
  EXPECT_EQ(num_epochs(100000, 1024, 10), 1);
  const auto p = plan_last_epoch(13508, 4852, 1024, 64000);
  EXPECT_EQ(p.samples_per_epoch, 4);
  EXPECT_EQ(p.samples_from_epochs_minus_one, (13507ll * 4852 - 1) / 1024);
  EXPECT_EQ(p.last_epoch_samples, 64000 - p.samples_from_epochs_minus_one);
  EXPECT_EQ(p.separate, p.last_epoch_samples < 3);
  // Megatron 2021 asserted here (fixed upstream in 2023); we accept it.
  EXPECT_FALSE(plan_last_epoch(num_epochs(4, 2, 3), 4, 2, 3).separate);
}

TEST(DataGpt, SampleIdxSpansDocuments) {
  // Documents of 3, 0, 5 and 2 tokens, seq_length 4: samples of 5 tokens overlapping by one.
  const std::vector<int32_t> sizes = {3, 0, 5, 2};
  const std::vector<int32_t> doc_idx = {0, 1, 2, 3};
  const auto s = build_sample_idx(sizes, doc_idx, 4, 1, 10);
  // (10 - 1) // 4 = 2 samples: [d0:0 .. d2:1], [d2:1 .. d2:4 + d3?]
  EXPECT_EQ(s, (std::vector<int32_t>{0, 0, 2, 1, 3, 0}));
}

TEST(DataGpt, BlendingIndices) {
  std::vector<uint8_t> d;
  std::vector<int64_t> s;
  build_blending_indices({0.3, 0.7}, 10, d, s);
  EXPECT_EQ(d, (std::vector<uint8_t>{1, 0, 1, 1, 0, 1, 1, 0, 1, 1}));
  EXPECT_EQ(s, (std::vector<int64_t>{0, 0, 1, 2, 1, 3, 4, 2, 5, 6}));
  const auto plan = plan_blend({3, 7}, {1000, 20, 0});
  EXPECT_DOUBLE_EQ(plan.weights[0], 0.3);
  EXPECT_EQ(plan.samples[0], (std::array<int64_t, 3>{302, 7, 0}));
  EXPECT_EQ(plan.samples[1], (std::array<int64_t, 3>{704, 15, 0}));
  EXPECT_EQ(numpy_sum({0.1, 0.2, 0.3}), (0.1 + 0.2) + 0.3);
}

TEST(DataGpt, TargetSamplesAsMegatron) {
  const auto t = megatron_target_samples(1000, 64, 1000, 10);  // reference log 002
  EXPECT_EQ(t.train, 64000);
  EXPECT_EQ(t.valid, 1280);
  EXPECT_EQ(t.test, 640);
  EXPECT_EQ(megatron_target_samples(1000, 64, 1000, 10, 5000).train, 5000);
}

TEST(DataGpt, LmBatchMatchesMegatronMasks) {
  const int32_t E = 50256;
  const int seq = 8;
  const std::vector<int32_t> samples = {5, 6, E, 7, 8, E, E, 9, 10,  // row 0
                                        1, 2, 3, 4, 5, 6, 7, 8, 9};  // row 1
  std::vector<int32_t> tokens(16), labels(16), pos(16), start(16);
  std::vector<float> mask(16);
  for (int flags = 0; flags < 8; flags++) {
    BatchOptions o;
    o.eod_mask_loss = flags & 1;
    o.reset_position_ids = flags & 2;
    o.reset_attention_mask = flags & 4;
    make_lm_batch(samples.data(), 2, seq, o, tokens.data(), labels.data(), mask.data(), pos.data(), start.data());
    for (int b = 0; b < 2; b++) {
      // Megatron's get_ltor_masks_and_position_ids, literally.
      std::vector<std::vector<int>> att(seq, std::vector<int>(seq));
      for (int r = 0; r < seq; r++)
        for (int c = 0; c < seq; c++) att[size_t(r)][size_t(c)] = c <= r;
      std::vector<int32_t> p(seq);
      for (int t = 0; t < seq; t++) p[size_t(t)] = t;
      int prev = 0;
      for (int i = 0; i < seq; i++) {
        if (samples[size_t(b * (seq + 1) + i)] != E) continue;
        if (o.reset_attention_mask)
          for (int r = i + 1; r < seq; r++)
            for (int c = 0; c <= i; c++) att[size_t(r)][size_t(c)] = 0;
        if (o.reset_position_ids) {
          for (int t = i + 1; t < seq; t++) p[size_t(t)] -= i + 1 - prev;
          prev = i + 1;
        }
      }
      for (int t = 0; t < seq; t++) {
        const size_t k = size_t(b * seq + t);
        EXPECT_EQ(tokens[k], samples[size_t(b * (seq + 1) + t)]);
        EXPECT_EQ(labels[k], samples[size_t(b * (seq + 1) + t + 1)]);
        EXPECT_EQ(mask[k], (o.eod_mask_loss && tokens[k] == E) ? 0.0f : 1.0f);
        EXPECT_EQ(pos[k], p[size_t(t)]) << "flags " << flags << " b " << b << " t " << t;
        for (int c = 0; c < seq; c++)  // doc_start + causality reproduce the mask
          EXPECT_EQ(att[size_t(t)][size_t(c)], int(c <= t && c >= start[k])) << "flags " << flags << " t " << t;
      }
    }
  }
}
