#pragma once
// Half-precision storage on a CPU that computes in fp32: values are rounded in place to what a bf16 or
// fp16 tensor would hold (round to nearest even; fp16 overflows to inf and flushes to its subnormals).
// Rounding at the points where Megatron stores half-precision tensors (model weights, activations
// between layers, fp16 gradients) reproduces half-precision training's numerics, overflow included.
#include "loom/core/dtype.h"

namespace loom::cpu {

void round_to_dtype(float* x, long n, DType dtype);  // F32: no-op

}  // namespace loom::cpu
