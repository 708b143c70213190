#pragma once
// Dropout with masks regenerated from a counter-based RNG (loom/core/rng.h): element i of a tensor is
// kept iff uniform(key, i) >= p, so forward, backward and recompute see the same mask without storing
// it. Kept elements are scaled by 1/(1-p). With p == 0 these are plain copies/adds.
// `first` is the stream index of the first element (a shard of rows of a larger tensor passes the index
// of its first element, so the mask does not depend on how the tensor is split).
#include <cstdint>

namespace loom::cpu {

// Megatron's bias-dropout-add: out = residual + dropout(x + bias). bias may be null.
// out may alias residual.
void bias_dropout_add_forward(const float* x, const float* bias, const float* residual, float* out, int N, int C,
                              float p, uint64_t key, uint64_t first = 0);
// Given dout: dresidual = dout is left to the caller (the residual stream); this computes
// dx = dropout_mask(dout) (overwrites dx) and dbias += column sums of dx (dbias may be null).
void bias_dropout_add_backward(const float* dout, float* dx, float* dbias, int N, int C, float p, uint64_t key,
                               uint64_t first = 0);

// In place: x = dropout(x) over n elements.
void dropout_forward(float* x, long n, float p, uint64_t key, uint64_t first = 0);
void dropout_backward(float* dx, long n, float p, uint64_t key, uint64_t first = 0);  // same mask, in place

}  // namespace loom::cpu
