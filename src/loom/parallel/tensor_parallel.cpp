#include "loom/parallel/tensor_parallel.h"

#include <cstring>

#include "loom/dist/communicator.h"

namespace loom {

void TensorParallel::all_reduce(float* data, long n) const {
  if (size > 1) comm->all_reduce(data, size_t(n));
}

void TensorParallel::all_gather_rows(const float* local, float* full, long local_rows, long cols) const {
  const size_t count = size_t(local_rows) * size_t(cols);
  if (size == 1) {
    if (full != local) std::memcpy(full, local, count * sizeof(float));
    return;
  }
  comm->all_gather(local, full, count);
}

void TensorParallel::reduce_scatter_rows(const float* full, float* local, long local_rows, long cols) const {
  const size_t count = size_t(local_rows) * size_t(cols);
  if (size == 1) {
    if (full != local) std::memcpy(local, full, count * sizeof(float));
    return;
  }
  comm->reduce_scatter(full, local, count);
}

}  // namespace loom
