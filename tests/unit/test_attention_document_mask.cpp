// Document masking (--reset-attention-mask): attention over two concatenated documents with key_start
// equals attention over each document alone, forward and backward.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "loom/core/rng.h"
#include "loom/kernels/cpu/attention.h"

using namespace loom;
using loom::cpu::AttentionShape;

TEST(AttentionDocumentMask, EqualsSeparateDocuments) {
  const int T = 150, H = 2, D = 16, split = 67, W = 3 * H * D;  // the split is inside a 64-row query block
  Rng r(11);
  std::vector<float> qkv(size_t(T) * W), dout(size_t(T) * H * D);
  for (auto& v : qkv) v = r.normal();
  for (auto& v : dout) v = r.normal();
  std::vector<int32_t> start(T);
  for (int t = 0; t < T; t++) start[t] = t < split ? 0 : split;

  AttentionShape full{1, T, H, D};
  full.key_start = start.data();
  std::vector<float> out(size_t(T) * H * D), lse(size_t(H) * T), dqkv(qkv.size());
  cpu::attention_forward(qkv.data(), out.data(), lse.data(), full, 0.f, 0);
  cpu::attention_backward(dout.data(), qkv.data(), out.data(), lse.data(), dqkv.data(), full, 0.f, 0);

  for (auto [first, len] : {std::pair{0, split}, std::pair{split, T - split}}) {
    AttentionShape alone{1, len, H, D};
    std::vector<float> o(size_t(len) * H * D), l(size_t(H) * len), d(size_t(len) * W);
    cpu::attention_forward(qkv.data() + size_t(first) * W, o.data(), l.data(), alone, 0.f, 0);
    cpu::attention_backward(dout.data() + size_t(first) * H * D, qkv.data() + size_t(first) * W, o.data(), l.data(),
                            d.data(), alone, 0.f, 0);
    for (size_t i = 0; i < o.size(); i++) ASSERT_NEAR(out[size_t(first) * H * D + i], o[i], 1e-5) << "out " << i;
    for (size_t i = 0; i < d.size(); i++) ASSERT_NEAR(dqkv[size_t(first) * W + i], d[i], 1e-4) << "dqkv " << i;
  }
}
