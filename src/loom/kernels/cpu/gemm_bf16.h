#pragma once
// GEMM on bf16 operands with fp32 accumulation and an fp32 result, for --bf16 training (Megatron's bf16
// GEMMs): C = alpha op(A) op(B) + beta C, row-major, with the conventions and the fixed block grid of
// gemm() (bitwise independent of the thread count). AVX-512 BF16 through oneDNN where the CPU has it;
// elsewhere the operands are widened and go to fp32 BLAS. A product of two bf16 values is exact in fp32,
// so the two differ only in summation order.
#include <cstdint>

namespace loom::cpu {

void gemm_bf16(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const uint16_t* A, int lda,
               const uint16_t* B, int ldb, float beta, float* C, int ldc);

// Whether gemm_bf16 runs on bf16 hardware instructions here (else the fp32 fallback).
bool bf16_gemm_native();
// Tests: force the fp32 fallback (false) or return to the hardware path where there is one (true).
void set_bf16_gemm_native(bool allowed);

// dst [rows, cols] (compact) = src [rows, cols] (row stride ld) rounded to bf16; threaded.
void to_bf16_rows(const float* src, int rows, int cols, int ld, uint16_t* dst);

}  // namespace loom::cpu
