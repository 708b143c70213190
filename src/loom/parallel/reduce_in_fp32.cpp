#include "loom/parallel/reduce_in_fp32.h"

#include <algorithm>

#include "loom/kernels/cpu/adamw.h"
#include "loom/kernels/cpu/precision.h"

namespace loom {

void all_reduce_in_fp32(dist::Communicator& group, void* data, DType type, int64_t n, const Tensor& staging,
                        float scale) {
  if (type == DType::F32) {
    float* x = static_cast<float*>(data);
    group.all_reduce(x, size_t(n));
    if (scale != 1.0f) cpu::scale_inplace(x, long(n), scale);
    return;
  }
  char* bytes = static_cast<char*>(data);
  for (int64_t k = 0; k < n; k += staging.numel()) {
    const int64_t len = std::min(staging.numel(), n - k);
    void* at = bytes + size_t(k) * dtype_size(type);
    cpu::to_f32(at, type, staging.f32(), long(len));
    group.all_reduce(staging.f32(), size_t(len));
    if (scale != 1.0f) cpu::scale_inplace(staging.f32(), long(len), scale);
    cpu::from_f32(staging.f32(), at, type, long(len));
  }
}

}  // namespace loom
