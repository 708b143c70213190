// gemm_bf16 against a double-precision reference on the same bf16 operands, for every transpose, alpha
// and beta, strided operands and shapes that split into blocks either way; the oneDNN path and the fp32
// fallback agree with it; results are bitwise independent of the thread count.
#include <gtest/gtest.h>
#include <omp.h>
#include <oneapi/dnnl/dnnl.hpp>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "loom/core/dtype.h"
#include "loom/core/rng.h"
#include "loom/kernels/cpu/gemm_bf16.h"

using namespace loom;

namespace {

struct Case {
  bool ta, tb;
  int M, N, K;
  float alpha, beta;
  int pad = 3;  // added to every leading dimension
};

std::vector<uint16_t> random_bf16(size_t n, uint64_t seed) {
  Rng r(seed);
  std::vector<uint16_t> v(n);
  for (auto& x : v) x = f32_to_bf16(r.normal());
  return v;
}

// Runs one case; returns C and checks it against the reference.
std::vector<float> run(const Case& c, bool check) {
  const int pad = c.pad;
  const int lda = (c.ta ? c.M : c.K) + pad, ldb = (c.tb ? c.K : c.N) + pad, ldc = c.N + pad;
  const auto A = random_bf16(size_t(c.ta ? c.K : c.M) * lda, 1);
  const auto B = random_bf16(size_t(c.tb ? c.N : c.K) * ldb, 2);
  Rng r(3);
  std::vector<float> C(size_t(c.M) * ldc);
  for (auto& x : C) x = r.normal();
  const std::vector<float> C0 = C;
  cpu::gemm_bf16(c.ta, c.tb, c.M, c.N, c.K, c.alpha, A.data(), lda, B.data(), ldb, c.beta, C.data(), ldc);
  if (check) {
    for (int i = 0; i < c.M; i++)
      for (int j = 0; j < c.N; j++) {
        double s = 0, abs_sum = 0;
        for (int k = 0; k < c.K; k++) {
          const double a = bf16_to_f32(c.ta ? A[size_t(k) * lda + i] : A[size_t(i) * lda + k]);
          const double b = bf16_to_f32(c.tb ? B[size_t(j) * ldb + k] : B[size_t(k) * ldb + j]);
          s += a * b;
          abs_sum += std::fabs(a * b);
        }
        const double want = c.alpha * s + (c.beta == 0.f ? 0.0 : double(c.beta) * C0[size_t(i) * ldc + j]);
        const double tol = 1e-6 * (std::fabs(c.alpha) * abs_sum + std::fabs(c.beta * C0[size_t(i) * ldc + j])) + 1e-6;
        EXPECT_NEAR(C[size_t(i) * ldc + j], want, tol) << i << "," << j << " ta " << c.ta << " tb " << c.tb << " M "
                                                        << c.M << " N " << c.N << " K " << c.K;
      }
    // Padding columns of C untouched.
    for (int i = 0; i < c.M; i++)
      for (int j = c.N; j < ldc; j++) EXPECT_EQ(C[size_t(i) * ldc + j], C0[size_t(i) * ldc + j]);
  }
  return C;
}

std::vector<Case> cases() {
  std::vector<Case> out;
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (auto [alpha, beta] : {std::pair{1.f, 0.f}, std::pair{1.f, 1.f}, std::pair{0.5f, 0.5f}}) {
        out.push_back({ta, tb, 37, 45, 29, alpha, beta});     // one block
        out.push_back({ta, tb, 96, 1100, 200, alpha, beta});  // blocks of columns
        out.push_back({ta, tb, 1100, 96, 200, alpha, beta});  // blocks of rows
      }
  return out;
}

}  // namespace

TEST(GemmBf16, MatchesDoubleReferenceOnBothPaths) {
  std::printf("[ info ] bf16 hardware path: %s\n", cpu::bf16_gemm_native() ? "oneDNN" : "not available");
  for (bool native : {true, false}) {
    cpu::set_bf16_gemm_native(native);
    for (const Case& c : cases()) run(c, true);
  }
  cpu::set_bf16_gemm_native(true);
}

TEST(GemmBf16, BitwiseIndependentOfThreadCount) {
  const int threads = omp_get_max_threads();
  for (const Case& c : cases()) {
    omp_set_num_threads(1);
    const auto one = run(c, false);
    omp_set_num_threads(2);
    const auto two = run(c, false);
    ASSERT_EQ(0, std::memcmp(one.data(), two.data(), one.size() * 4)) << c.M << "x" << c.N << "x" << c.K;
  }
  omp_set_num_threads(threads);
}

// Each case on fresh threads (a new std::thread brings its own OpenMP team, so no primitive is cached yet):
// one thread builds its primitives outside any parallel region, two inside one. On AMX, oneDNN sized a
// primitive built inside a region for the team: without the guard in gemm_bf16.cpp, 1024 x 768 x 1024 (NN, NT)
// and the weight-gradient form 256 x 256 x 1024 (TN) differed between one and two threads.
TEST(GemmBf16, BitwiseIndependentOfThreadCountOnFreshThreads) {
  std::printf("[ info ] oneDNN ISA %d (AMX from %d)\n", int(dnnl::get_effective_cpu_isa()),
              int(dnnl::cpu_isa::avx512_core_amx));
  std::vector<Case> shapes = cases();
  for (bool tb : {false, true}) shapes.push_back({false, tb, 1024, 768, 1024, 1.f, 0.f, 0});
  shapes.push_back({true, false, 256, 256, 1024, 1.f, 1.f, 0});
  for (const Case& c : shapes) {
    std::vector<float> one, two;
    std::thread([&] { omp_set_num_threads(1); one = run(c, false); }).join();
    std::thread([&] { omp_set_num_threads(2); two = run(c, false); }).join();
    ASSERT_EQ(0, std::memcmp(one.data(), two.data(), one.size() * 4)) << c.M << "x" << c.N << "x" << c.K;
  }
}

TEST(GemmBf16, ToBf16RowsRoundsEachRow) {
  Rng r(9);
  std::vector<float> src(7 * 13);
  for (auto& x : src) x = r.normal();
  std::vector<uint16_t> dst(7 * 10, 0);
  cpu::to_bf16_rows(src.data(), 7, 10, 13, dst.data());
  for (int i = 0; i < 7; i++)
    for (int j = 0; j < 10; j++) ASSERT_EQ(dst[size_t(i) * 10 + j], f32_to_bf16(src[size_t(i) * 13 + j]));
}
