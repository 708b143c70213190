// Token + position embedding and its deterministic backward.
#include <vector>

#include "loom/kernels/cpu/embedding.h"
#include "test_kernels_util.h"

namespace {

using loom::test::all_close;
using loom::test::random_floats;

TEST(KernelEmbedding, ForwardAndBackward) {
  const int V = 13, P = 9, N = 50;
  for (int C : {3, 64, 100}) {
    for (bool with_pos : {true, false}) {
      auto wte = random_floats(size_t(V) * C, 1), wpe = random_floats(size_t(P) * C, 2);
      std::vector<int32_t> tok(N), pos(N);
      for (int r = 0; r < N; r++) {
        tok[r] = (r * 7 + r / 3) % V;  // repeated tokens
        pos[r] = r % P;
      }
      std::vector<float> out(size_t(N) * C);
      loom::cpu::embedding_forward(tok.data(), with_pos ? pos.data() : nullptr, wte.data(),
                                   with_pos ? wpe.data() : nullptr, out.data(), N, C);
      std::vector<double> want(out.size());
      for (int r = 0; r < N; r++)
        for (int c = 0; c < C; c++)
          want[size_t(r) * C + c] = double(wte[size_t(tok[r]) * C + c]) + (with_pos ? wpe[size_t(pos[r]) * C + c] : 0.0);
      EXPECT_TRUE(all_close(out, want, 1e-7));

      auto dout = random_floats(out.size(), 3);
      auto dwte = random_floats(wte.size(), 4), dwpe = random_floats(wpe.size(), 5);
      std::vector<double> wte_want(dwte.begin(), dwte.end()), wpe_want(dwpe.begin(), dwpe.end());
      for (int r = 0; r < N; r++)
        for (int c = 0; c < C; c++) {
          wte_want[size_t(tok[r]) * C + c] += dout[size_t(r) * C + c];
          if (with_pos) wpe_want[size_t(pos[r]) * C + c] += dout[size_t(r) * C + c];
        }
      loom::cpu::embedding_backward(dout.data(), tok.data(), with_pos ? pos.data() : nullptr, dwte.data(),
                                    with_pos ? dwpe.data() : nullptr, N, C);
      EXPECT_TRUE(all_close(dwte, wte_want, 1e-6));
      EXPECT_TRUE(all_close(dwpe, wpe_want, 1e-6));
    }
  }
}

TEST(KernelEmbedding, BackwardDeterministicAcrossThreadCounts) {
  const int V = 31, P = 64, N = 512, C = 192;
  auto dout = random_floats(size_t(N) * C, 6);
  std::vector<int32_t> tok(N), pos(N);
  for (int r = 0; r < N; r++) {
    tok[r] = (r * r) % V;
    pos[r] = r % P;
  }
  std::vector<float> res[2][2];
  for (int t = 0; t < 2; t++) {
    loom::test::ScopedThreads threads(t + 1);
    std::vector<float> dwte(size_t(V) * C, 0.0f), dwpe(size_t(P) * C, 0.0f);
    loom::cpu::embedding_backward(dout.data(), tok.data(), pos.data(), dwte.data(), dwpe.data(), N, C);
    res[t][0] = dwte;
    res[t][1] = dwpe;
  }
  EXPECT_TRUE(loom::test::bitwise_equal(res[0][0], res[1][0]));
  EXPECT_TRUE(loom::test::bitwise_equal(res[0][1], res[1][1]));
}

}  // namespace
