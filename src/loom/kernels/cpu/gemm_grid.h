#pragma once
// The fixed block grid shared by the fp32 and bf16 GEMMs: a GEMM is cut into column (or row) blocks that
// depend only on (M, N, K), each computed by one single-threaded call, so results are bitwise the same for
// any number of threads (see gemm.cpp).
#include <algorithm>
#include <cstring>

namespace loom::cpu::detail {

struct Split {
  int blocks;
  bool along_n;  // blocks of columns of C (else of rows)
  int dim;
  int begin(int i) const { return i == 0 ? 0 : i == blocks ? dim : int((long(dim) * i / blocks) & ~15L); }
};

inline Split split_for(int M, int N, int K) {
  const double flops = 2.0 * M * N * K;
  Split s;
  s.along_n = N >= M;
  s.dim = s.along_n ? N : M;
  // Enough work per block (32 MFLOP) and wide blocks (>= 256: each block re-packs the other operand);
  // a power of two (<= 8) so that 2, 4 or 8 threads share the blocks evenly.
  const int cap = int(std::min({8.0, flops / 32e6, double(s.dim) / 256}));
  s.blocks = 1;
  while (s.blocks * 2 <= cap) s.blocks *= 2;
  return s;
}

// C = beta C over M x N (beta 0 writes zeros, whatever C held).
inline void scale_c(int M, int N, float beta, float* C, int ldc) {
  for (int i = 0; i < M; i++) {
    float* c = C + size_t(i) * ldc;
    if (beta == 0.0f) {
      std::memset(c, 0, size_t(N) * sizeof(float));
    } else if (beta != 1.0f) {
      for (int j = 0; j < N; j++) c[j] *= beta;
    }
  }
}

}  // namespace loom::cpu::detail
