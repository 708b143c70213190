// This machine's measured SGEMM rate through Loom's BLAS (the OpenMP OpenBLAS), the yardstick for
// model TFLOP/s. Prints one JSON line with the best of several shapes typical of training.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "loom/kernels/cpu/gemm.h"

int main() {
  struct Shape {
    int M, N, K;
  };
  const Shape shapes[] = {{1024, 1024, 1024}, {1024, 3072, 768}, {1024, 768, 3072}, {256, 50304, 768}, {2048, 2048, 256}};
  double best = 0;
  std::printf("{\"threads\": %d, \"shapes\": [", omp_get_max_threads());
  bool first = true;
  for (const Shape& s : shapes) {
    std::vector<float> a(size_t(s.M) * s.K, 0.5f), b(size_t(s.K) * s.N, 0.25f), c(size_t(s.M) * s.N);
    loom::cpu::gemm(false, false, s.M, s.N, s.K, 1.f, a.data(), s.K, b.data(), s.N, 0.f, c.data(), s.N);
    double rate = 0;
    for (int rep = 0; rep < 3; rep++) {
      auto t0 = std::chrono::steady_clock::now();
      loom::cpu::gemm(false, false, s.M, s.N, s.K, 1.f, a.data(), s.K, b.data(), s.N, 0.f, c.data(), s.N);
      double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      rate = std::max(rate, 2.0 * s.M * s.N * double(s.K) / sec / 1e9);
    }
    best = std::max(best, rate);
    std::printf("%s{\"m\": %d, \"n\": %d, \"k\": %d, \"gflops\": %.1f}", first ? "" : ", ", s.M, s.N, s.K, rate);
    first = false;
  }
  std::printf("], \"best_gflops\": %.1f}\n", best);
  return 0;
}
