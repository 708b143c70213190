#pragma once
// GEMM through BLAS (OpenBLAS, OpenMP build). Row-major: C = alpha * op(A) @ op(B) + beta * C,
// op(A) is M x K, op(B) is K x N, C is M x N; ld* are row strides in elements (so strided column
// blocks of a fused QKV matrix can be passed without copying).
namespace loom::cpu {

void gemm(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A, int lda,
          const float* B, int ldb, float beta, float* C, int ldc);

// `batch` independent GEMMs with constant strides (elements) between consecutive A, B and C.
void gemm_strided_batched(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A,
                          int lda, long stride_a, const float* B, int ldb, long stride_b, float beta, float* C,
                          int ldc, long stride_c, int batch);

}  // namespace loom::cpu
