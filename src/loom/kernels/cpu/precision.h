#pragma once
// Half-precision storage on a CPU that computes in fp32.
//  - round_to_dtype rounds fp32 values in place to what a bf16 or fp16 tensor would hold (round to nearest
//    even; fp16 overflows to inf and keeps its subnormals): used where activations would be stored in half.
//  - to_f32 / from_f32 / accumulate_from_f32 convert between real half-precision buffers (weights and
//    gradients of a mixed-precision model) and the fp32 the kernels compute in.
// F32 is accepted everywhere (a copy, or a no-op), so callers need not special-case full precision.
#include "loom/core/dtype.h"

namespace loom::cpu {

void round_to_dtype(float* x, long n, DType dtype);  // F32: no-op

void to_f32(const void* src, DType src_type, float* dst, long n);
// The first n values of `data` are of src_type; widen them in place to n floats (the buffer holds n
// floats). Used to all-gather half-precision weights straight into the fp32 buffer that will hold them.
void to_f32_in_place(void* data, DType src_type, long n);
// The reverse of to_f32_in_place: n floats narrowed in place to the first n values of dst_type (sequential).
void from_f32_in_place(float* data, DType dst_type, long n);
// dst = round(src) in dst_type.
void from_f32(const float* src, void* dst, DType dst_type, long n);
// dst = round(x) in dst_type and x = dst widened: x rounded in place, with a half-precision copy kept
// (saved activations: the forward goes on with exactly the values its backward will read back).
void round_and_store(float* x, void* dst, DType dst_type, long n);
// dst = round(dst + scale x src), the sum formed in fp32 (gradient accumulation into half storage).
void accumulate_from_f32(void* dst, DType dst_type, const float* src, long n, float scale);
// Sum of squares in double, in the same fixed chunks as sum_squares (thread-count independent).
double sum_squares(const void* x, DType type, long n);
bool has_inf_or_nan(const void* x, DType type, long n);
// Elements equal to zero (+0 or -0) in any float format (Megatron's count_zeros_fp32, --log-num-zeros-in-grad).
int64_t count_zeros(const void* x, DType type, long n);

}  // namespace loom::cpu
