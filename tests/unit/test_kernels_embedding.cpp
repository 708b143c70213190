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

TEST(KernelEmbedding, VocabularyShardsSumToTheLookup) {
  const int V = 20, P = 8, N = 30, C = 24, split = 9;
  auto wte = random_floats(size_t(V) * C, 7), wpe = random_floats(size_t(P) * C, 8);
  std::vector<int32_t> tok(N), pos(N);
  for (int r = 0; r < N; r++) {
    tok[r] = (r * 13) % V;
    pos[r] = r % P;
  }
  std::vector<float> want(size_t(N) * C);
  loom::cpu::embedding_forward(tok.data(), pos.data(), wte.data(), wpe.data(), want.data(), N, C);
  // Shard 0 holds rows [0, split), shard 1 rows [split, V); each writes its tokens and zeros elsewhere;
  // the positions are then accumulated as a lookup of their own.
  std::vector<float> a(want.size(), 5.0f), b(want.size(), 5.0f);
  loom::cpu::embedding_forward(tok.data(), nullptr, wte.data(), nullptr, a.data(), N, C, 0, split);
  loom::cpu::embedding_forward(tok.data(), nullptr, wte.data() + size_t(split) * C, nullptr, b.data(), N, C, split, V);
  for (size_t i = 0; i < a.size(); i++) a[i] += b[i];
  loom::cpu::embedding_forward(pos.data(), nullptr, wpe.data(), nullptr, a.data(), N, C, 0, P, /*accumulate=*/true);
  EXPECT_TRUE(all_close(a, loom::test::to_double(want), 1e-6));

  auto dout = random_floats(want.size(), 9);
  std::vector<float> dfull(size_t(V) * C, 0.0f), dshard(size_t(V - split) * C, 0.0f);
  loom::cpu::embedding_backward(dout.data(), tok.data(), nullptr, dfull.data(), nullptr, N, C);
  loom::cpu::embedding_backward(dout.data(), tok.data(), nullptr, dshard.data(), nullptr, N, C, split, V);
  EXPECT_TRUE(loom::test::bitwise_equal(dshard, std::vector<float>(dfull.begin() + size_t(split) * C, dfull.end())));
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
