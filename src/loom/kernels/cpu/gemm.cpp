#include "loom/kernels/cpu/gemm.h"

#include "loom/kernels/cpu/gemm_grid.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cstring>

namespace loom::cpu {

// Determinism: OpenBLAS's threaded GEMM partitions work by thread count and can round differently from
// its single-threaded GEMM. So every GEMM here is cut into a fixed grid of column (or row) blocks that
// depends only on (M, N, K), and each block is one single-threaded BLAS call: inside our own parallel
// region (OpenBLAS's OpenMP build then runs on the calling thread), or, when called from sequential
// code, spread over the threads by a parallel loop of our own. The result is bitwise the same for any
// number of threads, and from inside or outside a parallel region.

namespace {

using detail::Split;
using detail::split_for;
using detail::scale_c;

void gemm_block(bool ta, bool tb, int M, int N, int K, float alpha, const float* A, int lda, const float* B, int ldb,
                float beta, float* C, int ldc, const Split& s, int i) {
  const int b0 = s.begin(i), b1 = s.begin(i + 1);
  if (b1 <= b0) return;
  const CBLAS_TRANSPOSE opa = ta ? CblasTrans : CblasNoTrans, opb = tb ? CblasTrans : CblasNoTrans;
  if (s.along_n) {
    const float* Bb = tb ? B + size_t(b0) * ldb : B + b0;
    cblas_sgemm(CblasRowMajor, opa, opb, M, b1 - b0, K, alpha, A, lda, Bb, ldb, beta, C + b0, ldc);
  } else {
    const float* Ab = ta ? A + b0 : A + size_t(b0) * lda;
    cblas_sgemm(CblasRowMajor, opa, opb, b1 - b0, N, K, alpha, Ab, lda, B, ldb, beta, C + size_t(b0) * ldc, ldc);
  }
}

}  // namespace

void gemm(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A, int lda, const float* B,
          int ldb, float beta, float* C, int ldc) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0 || alpha == 0.0f) {
    scale_c(M, N, beta, C, ldc);
    return;
  }
  const Split s = split_for(M, N, K);
  if (omp_in_parallel() || omp_get_max_threads() == 1) {
    for (int i = 0; i < s.blocks; i++) gemm_block(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, s, i);
    return;
  }
  // Even a single block goes through a parallel region, so that BLAS runs it single-threaded.
#pragma omp parallel for schedule(dynamic, 1)
  for (int i = 0; i < s.blocks; i++) gemm_block(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, s, i);
}

void gemm_strided_batched(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A, int lda,
                          long stride_a, const float* B, int ldb, long stride_b, float beta, float* C, int ldc,
                          long stride_c, int batch) {
  if (batch <= 0) return;
  if (batch == 1) {
    gemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  // One GEMM per iteration; inside the region each runs its fixed blocks on the calling thread.
#pragma omp parallel for schedule(dynamic, 1)
  for (int i = 0; i < batch; i++)
    gemm(trans_a, trans_b, M, N, K, alpha, A + i * stride_a, lda, B + i * stride_b, ldb, beta, C + i * stride_c, ldc);
}

}  // namespace loom::cpu
