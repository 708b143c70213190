// GEMM wrappers over BLAS: every transpose combination, strided operands, alpha/beta, batches.
#include <vector>

#include "loom/kernels/cpu/gemm.h"
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

}  // namespace
