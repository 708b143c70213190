// Timings of the CPU kernels (plain main, std::chrono). Runs on 2 threads unless OMP_NUM_THREADS says
// otherwise. Each figure is the best of several runs. Lines starting with RESULT are machine-readable (bench/attention_torch.py reads them).
//   bench_kernels [attention|ce|norm|all]   (default all)
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "loom/core/rng.h"
#include "loom/kernels/cpu/activation.h"
#include "loom/kernels/cpu/attention.h"
#include "loom/kernels/cpu/cross_entropy.h"
#include "loom/kernels/cpu/gemm.h"
#include "loom/kernels/cpu/layernorm.h"

namespace {

using clk = std::chrono::steady_clock;

std::vector<float> randv(size_t n, uint64_t seed, float amp = 1.0f) {
  loom::Rng r(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = amp * (2.0f * r.uniform() - 1.0f);
  return v;
}

// Best (minimum) seconds of `reps` runs after one warm-up: the machine may be shared, and the minimum
// is the figure least disturbed by other processes.
double time_it(const std::function<void()>& f, int reps) {
  f();
  std::vector<double> t;
  for (int i = 0; i < reps; i++) {
    auto t0 = clk::now();
    f();
    t.push_back(std::chrono::duration<double>(clk::now() - t0).count());
  }
  return *std::min_element(t.begin(), t.end());
}

void bench_attention() {
  const loom::cpu::AttentionShape s{4, 256, 12, 64};
  const size_t nqkv = size_t(s.B) * s.T * 3 * s.H * s.D, no = size_t(s.B) * s.T * s.H * s.D;
  auto qkv = randv(nqkv, 1), dout = randv(no, 2);
  std::vector<float> out(no), lse(size_t(s.B) * s.H * s.T), dqkv(nqkv);
  // Useful (causal) FLOPs: forward 2 GEMMs, backward 4, each 2*T*(T+1)/2*D per head (+ the recomputed
  // scores in the backward are not counted).
  const double pairs = double(s.T) * (s.T + 1) / 2;
  const double flops = 6.0 * 2.0 * pairs * s.D * s.B * s.H;
  for (float p : {0.0f, 0.1f}) {
    const double tf = time_it([&] { loom::cpu::attention_forward(qkv.data(), out.data(), lse.data(), s, p, 7); }, 20);
    const double tb = time_it(
        [&] {
          loom::cpu::attention_backward(dout.data(), qkv.data(), out.data(), lse.data(), dqkv.data(), s, p, 7);
        },
        20);
    std::printf("attention B=%d T=%d H=%d D=%d p=%.1f: fwd %.2f ms, bwd %.2f ms, fwd+bwd %.2f ms (%.1f GFLOP/s causal)\n",
                s.B, s.T, s.H, s.D, p, tf * 1e3, tb * 1e3, (tf + tb) * 1e3, flops / (tf + tb) * 1e-9);
    std::printf("RESULT attention_fwd_bwd_ms_p%.1f %.3f\n", p, (tf + tb) * 1e3);
  }
}

void bench_ce() {
  const int N = 1024, V = 50304, C = 768;
  auto x = randv(size_t(N) * C, 3), W = randv(size_t(V) * C, 4, 0.05f);
  std::vector<int32_t> labels(N);
  for (int i = 0; i < N; i++) labels[i] = (i * 7919) % V;
  std::vector<float> scale(N, 1.0f / N), loss(N), dx(size_t(N) * C), dW(size_t(V) * C, 0.0f);
  const double flops = 3.0 * 2.0 * N * double(V) * C;
  for (int chunk : {256, 1024}) {
    std::vector<float> logits(size_t(chunk) * V);
    const double t = time_it(
        [&] {
          loom::cpu::lm_head_cross_entropy(x.data(), W.data(), labels.data(), scale.data(), loss.data(), dx.data(),
                                           dW.data(), N, V, C, {logits.data(), chunk});
        },
        5);
    std::printf("lm_head_cross_entropy N=%d V=%d C=%d chunk=%d: %.1f ms, %.1f GFLOP/s\n", N, V, C, chunk, t * 1e3,
                flops / t * 1e-9);
    std::printf("RESULT ce_ms_chunk%d %.3f\n", chunk, t * 1e3);
  }
  // The same three GEMMs on the full N x V logits, plain OpenBLAS (its own threading).
  std::vector<float> logits(size_t(N) * V);
  const double tg = time_it(
      [&] {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, V, C, 1.0f, x.data(), C, W.data(), C, 0.0f,
                    logits.data(), V);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, C, V, 1.0f, logits.data(), V, W.data(), C, 0.0f,
                    dx.data(), C);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, V, C, N, 1.0f, logits.data(), V, x.data(), C, 1.0f,
                    dW.data(), C);
      },
      5);
  std::printf("plain cblas_sgemm, same 3 GEMMs (N x V logits):            %.1f ms, %.1f GFLOP/s\n", tg * 1e3,
              flops / tg * 1e-9);
  std::printf("RESULT sgemm3_ms %.3f\n", tg * 1e3);
}

void bench_norm() {
  for (int C : {768, 3072}) {
    const int N = 1024;
    const size_t n = size_t(N) * C;
    auto x = randv(n, 5), w = randv(C, 6), b = randv(C, 7), dy = randv(n, 8);
    std::vector<float> y(n), mean(N), rstd(N), dx(n, 0.0f), dw(C, 0.0f), db(C, 0.0f);
    const double gb = double(n) * 4 * 1e-9;
    const double lf = time_it(
        [&] {
          loom::cpu::layernorm_forward(x.data(), w.data(), b.data(), y.data(), mean.data(), rstd.data(), N, C, 1e-5f);
        },
        50);
    const double lb = time_it(
        [&] {
          loom::cpu::layernorm_backward(dy.data(), x.data(), w.data(), mean.data(), rstd.data(), dx.data(), dw.data(),
                                        db.data(), N, C);
        },
        50);
    const double gf = time_it([&] { loom::cpu::bias_gelu_forward(x.data(), b.data(), y.data(), N, C); }, 50);
    const double gbw = time_it(
        [&] { loom::cpu::bias_gelu_backward(dy.data(), x.data(), b.data(), dx.data(), db.data(), N, C); }, 50);
    // Bytes moved: layernorm fwd reads x, writes y; bwd reads dy, x, reads+writes dx. gelu fwd reads x,
    // writes y; bwd reads dy, x, writes dx.
    std::printf("layernorm %dx%d: fwd %.3f ms (%.1f GB/s), bwd %.3f ms (%.1f GB/s)\n", N, C, lf * 1e3, 2 * gb / lf,
                lb * 1e3, 4 * gb / lb);
    std::printf("bias_gelu %dx%d: fwd %.3f ms (%.1f GB/s), bwd %.3f ms (%.1f GB/s)\n", N, C, gf * 1e3, 2 * gb / gf,
                gbw * 1e3, 3 * gb / gbw);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (!std::getenv("OMP_NUM_THREADS")) omp_set_num_threads(2);
  const std::string what = argc > 1 ? argv[1] : "all";
  std::printf("threads: %d\n", omp_get_max_threads());
  if (what == "all" || what == "attention") bench_attention();
  if (what == "all" || what == "ce") bench_ce();
  if (what == "all" || what == "norm") bench_norm();
  return 0;
}
