#pragma once
// Summing stored gradients over a group whatever their storage type: fp32 in place; bf16/fp16 widened a
// staging chunk at a time, summed in fp32 and stored rounded once (not summed in half precision).
#include <cstdint>

#include "loom/core/dtype.h"
#include "loom/core/tensor.h"
#include "loom/dist/communicator.h"

namespace loom {

// data[0, n) of type `type` = scale x (sum over `group`). `staging`: fp32 scratch (any length > 0) for
// half-precision data; unused for fp32.
void all_reduce_in_fp32(dist::Communicator& group, void* data, DType type, int64_t n, const Tensor& staging,
                        float scale = 1.0f);

}  // namespace loom
