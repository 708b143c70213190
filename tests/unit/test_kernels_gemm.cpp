// GEMM wrappers over BLAS: every transpose combination, strided operands, alpha/beta, batches.
#include <vector>

#include "loom/kernels/cpu/gemm.h"
#include "loom/kernels/cpu/small_gemm.h"
#include "test_kernels_util.h"

namespace {

using loom::test::all_close;
using loom::test::random_floats;

// C = alpha op(A) op(B) + beta C in double; op(A)[i][k] = trans_a ? A[k*lda+i] : A[i*lda+k].
std::vector<double> gemm_ref(bool ta, bool tb, int M, int N, int K, double alpha, const float* A, int lda,
                             const float* B, int ldb, double beta, const float* C, int ldc) {
  std::vector<double> out(size_t(M) * ldc);
  for (int i = 0; i < M; i++)
    for (int j = 0; j < ldc; j++) {
      if (j >= N) {
        out[size_t(i) * ldc + j] = C[size_t(i) * ldc + j];  // untouched padding
        continue;
      }
      double s = 0;
      for (int k = 0; k < K; k++) {
        const double a = ta ? A[size_t(k) * lda + i] : A[size_t(i) * lda + k];
        const double b = tb ? B[size_t(j) * ldb + k] : B[size_t(k) * ldb + j];
        s += a * b;
      }
      out[size_t(i) * ldc + j] = alpha * s + beta * C[size_t(i) * ldc + j];
    }
  return out;
}

TEST(KernelGemm, AllTransposesWithStrides) {
  const int M = 13, N = 17, K = 19;
  for (int ta = 0; ta < 2; ta++)
    for (int tb = 0; tb < 2; tb++)
      for (float beta : {0.0f, 1.0f, 0.5f}) {
        const int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 5, ldc = N + 2;
        auto A = random_floats(size_t(ta ? K : M) * lda, 1);
        auto B = random_floats(size_t(tb ? N : K) * ldb, 2);
        auto C = random_floats(size_t(M) * ldc, 3);
        auto want = gemm_ref(ta, tb, M, N, K, 0.75, A.data(), lda, B.data(), ldb, beta, C.data(), ldc);
        loom::cpu::gemm(ta, tb, M, N, K, 0.75f, A.data(), lda, B.data(), ldb, beta, C.data(), ldc);
        EXPECT_TRUE(all_close(C, want, 1e-6)) << "ta " << ta << " tb " << tb << " beta " << beta;
      }
}

TEST(KernelGemm, BetaZeroOverwritesAndEmptyK) {
  const int M = 4, N = 5, K = 3;
  auto A = random_floats(M * K, 4), B = random_floats(K * N, 5);
  std::vector<float> C(M * N, std::numeric_limits<float>::quiet_NaN());
  loom::cpu::gemm(false, false, M, N, K, 1.0f, A.data(), K, B.data(), N, 0.0f, C.data(), N);
  auto want = gemm_ref(false, false, M, N, K, 1.0, A.data(), K, B.data(), N, 0.0, std::vector<float>(M * N).data(), N);
  EXPECT_TRUE(all_close(C, want, 1e-6));
  std::vector<float> C2(M * N, 2.0f);
  loom::cpu::gemm(false, false, M, N, 0, 1.0f, A.data(), 1, B.data(), N, 0.5f, C2.data(), N);
  for (float c : C2) EXPECT_EQ(c, 1.0f);
}

TEST(KernelGemm, StridedBatched) {
  const int M = 9, N = 11, K = 7;
  for (int batch : {1, 2, 5}) {
    for (int ta = 0; ta < 2; ta++) {
      const int lda = ta ? M : K, ldb = N, ldc = N;
      const long sa = long(K) * M + 3, sb = long(K) * N + 1, sc = long(M) * N + 2;
      auto A = random_floats(size_t(sa) * batch, 6), B = random_floats(size_t(sb) * batch, 7);
      auto C = random_floats(size_t(sc) * batch, 8);
      std::vector<double> want(C.begin(), C.end());
      for (int i = 0; i < batch; i++) {
        auto w = gemm_ref(ta, false, M, N, K, 1.5, A.data() + i * sa, lda, B.data() + i * sb, ldb, 1.0,
                          C.data() + i * sc, ldc);
        std::copy(w.begin(), w.end(), want.begin() + i * sc);
      }
      loom::cpu::gemm_strided_batched(ta, false, M, N, K, 1.5f, A.data(), lda, sa, B.data(), ldb, sb, 1.0f, C.data(),
                                      ldc, sc, batch);
      EXPECT_TRUE(all_close(C, want, 1e-6)) << "batch " << batch << " ta " << ta;
    }
  }
}

TEST(KernelGemm, DeterministicAcrossThreadCountsAndRegions) {
  // Large enough to be split into several blocks; the result must not depend on the thread count or
  // on being called from inside a parallel region.
  struct Shape {
    int M, N, K;
    bool ta, tb;
  } shapes[] = {{512, 1024, 256, false, true}, {1024, 256, 300, true, false}, {64, 64, 64, false, false}};
  for (const Shape& sh : shapes) {
    const int lda = sh.ta ? sh.M : sh.K, ldb = sh.tb ? sh.K : sh.N;
    auto A = random_floats(size_t(sh.M) * sh.K, 20), B = random_floats(size_t(sh.K) * sh.N, 21);
    std::vector<float> C[3];
    for (int t = 0; t < 3; t++) {
      loom::test::ScopedThreads threads(t == 0 ? 1 : 2);
      C[t].assign(size_t(sh.M) * sh.N, 0.0f);
      if (t < 2) {
        loom::cpu::gemm(sh.ta, sh.tb, sh.M, sh.N, sh.K, 1.0f, A.data(), lda, B.data(), ldb, 0.0f, C[t].data(), sh.N);
      } else {
#pragma omp parallel num_threads(2)
        {
#pragma omp single
          loom::cpu::gemm(sh.ta, sh.tb, sh.M, sh.N, sh.K, 1.0f, A.data(), lda, B.data(), ldb, 0.0f, C[t].data(),
                          sh.N);
        }
      }
    }
    EXPECT_TRUE(loom::test::bitwise_equal(C[0], C[1])) << sh.M << "x" << sh.N << "x" << sh.K;
    EXPECT_TRUE(loom::test::bitwise_equal(C[0], C[2])) << sh.M << "x" << sh.N << "x" << sh.K;
  }
}

TEST(KernelSmallGemm, MatchesReferenceForAllTileShapes) {
  // Every row remainder (tiles of 6 rows) and column remainder (tiles of 16 columns).
  for (int M : {1, 2, 3, 4, 5, 6, 7, 13})
    for (int N : {1, 5, 8, 9, 15, 16, 17, 40})
      for (int K : {0, 1, 7, 64}) {
        const int lda = K + 3, ldb = N + 5, ldc = N + 2;
        auto A = random_floats(size_t(M) * lda, 30), B = random_floats(size_t(std::max(K, 1)) * ldb, 31);
        for (float beta : {0.0f, 1.0f}) {
          auto C = random_floats(size_t(M) * ldc, 32);
          auto want = gemm_ref(false, false, M, N, K, 0.5, A.data(), lda, B.data(), ldb, beta, C.data(), ldc);
          loom::cpu::detail::sgemm_small(M, N, K, 0.5f, A.data(), lda, B.data(), ldb, beta, C.data(), ldc);
          ASSERT_TRUE(all_close(C, want, 1e-6)) << M << "x" << N << "x" << K << " beta " << beta;
        }
      }
}

TEST(KernelSmallGemm, Transpose) {
  for (int rows : {1, 7, 8, 9, 24, 30})
    for (int cols : {1, 8, 13, 64}) {
      const int lds = cols + 3, ldd = rows + 1;
      auto src = random_floats(size_t(rows) * lds, 40);
      std::vector<float> dst(size_t(cols) * ldd, -7.0f);
      loom::cpu::detail::transpose(src.data(), lds, rows, cols, dst.data(), ldd);
      for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) ASSERT_EQ(dst[size_t(c) * ldd + r], src[size_t(r) * lds + c]);
      for (int c = 0; c < cols; c++) ASSERT_EQ(dst[size_t(c) * ldd + rows], -7.0f);  // padding untouched
    }
}

}  // namespace
