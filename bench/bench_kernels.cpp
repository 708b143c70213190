// Timings of the CPU kernels (plain main, std::chrono). Runs on 2 threads unless OMP_NUM_THREADS says
// otherwise. Each figure is the best of several runs. Lines starting with RESULT are machine-readable (bench/attention_torch.py reads them).
//   bench_kernels [attention|ce|norm|llama|all]   (default all)
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
#include "loom/kernels/cpu/rmsnorm.h"
#include "loom/kernels/cpu/rope.h"

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

// The Llama kernels: RMSNorm, SwiGLU, RoPE on a GQA qkv, and GQA / bidirectional / cross attention at the
// attention benchmark's size (B4 T256 H12 D64; 4 key/value groups).
void bench_llama() {
  const int N = 1024;
  for (int C : {768, 2048}) {
    const size_t n = size_t(N) * C;
    auto x = randv(n, 5), w = randv(C, 6), dy = randv(n, 8);
    std::vector<float> y(n), rstd(N), dx(n, 0.0f), dw(C, 0.0f);
    const double gb = double(n) * 4 * 1e-9;
    const double f = time_it([&] { loom::cpu::rmsnorm_forward(x.data(), w.data(), y.data(), rstd.data(), N, C, 1e-5f); }, 50);
    const double b = time_it(
        [&] { loom::cpu::rmsnorm_backward(dy.data(), x.data(), w.data(), rstd.data(), dx.data(), dw.data(), N, C); }, 50);
    std::printf("rmsnorm %dx%d: fwd %.3f ms (%.1f GB/s), bwd %.3f ms (%.1f GB/s)\n", N, C, f * 1e3, 2 * gb / f, b * 1e3,
                4 * gb / b);
  }
  {
    const int F = 2048;
    const size_t n = size_t(N) * F;
    auto x = randv(2 * n, 9), dy = randv(n, 10);
    std::vector<float> y(n), dx(2 * n);
    const double gb = double(n) * 4 * 1e-9;
    const double f = time_it([&] { loom::cpu::bias_swiglu_forward(x.data(), nullptr, y.data(), N, F); }, 50);
    const double b = time_it([&] { loom::cpu::bias_swiglu_backward(dy.data(), x.data(), nullptr, dx.data(), nullptr, N, F); }, 50);
    const double ef = time_it([&] { loom::cpu::bias_gelu_exact_forward(x.data(), nullptr, dx.data(), N, 2 * F); }, 50);
    const double eb = time_it(
        [&] { loom::cpu::bias_gelu_exact_backward(x.data(), x.data(), nullptr, dx.data(), nullptr, N, 2 * F); }, 50);
    std::printf("bias_swiglu %dx(2x%d): fwd %.3f ms (%.1f GB/s), bwd %.3f ms (%.1f GB/s)\n", N, F, f * 1e3, 3 * gb / f,
                b * 1e3, 5 * gb / b);
    std::printf("bias_gelu_exact %dx%d: fwd %.3f ms (%.1f GB/s), bwd %.3f ms (%.1f GB/s)\n", N, 2 * F, ef * 1e3,
                4 * gb / ef, eb * 1e3, 6 * gb / eb);
  }
  const int B = 4, T = 256, H = 12, G = 4, D = 64, hpg = H / G;
  const long ld = long(H + 2 * G) * D;
  auto qkv = randv(size_t(B) * T * ld, 11), dout = randv(size_t(B) * T * H * D, 12);
  {
    const loom::cpu::RopeTable t = loom::cpu::make_rope_table(D, T, loom::cpu::rope_inv_freq(D, 500000.0, nullptr));
    std::vector<int32_t> pos(size_t(B) * T);
    for (int r = 0; r < B * T; r++) pos[r] = r % T;
    const double f = time_it(
        [&] {
          for (int g = 0; g < G; g++)
            loom::cpu::rope_forward(qkv.data() + size_t(g) * (hpg + 2) * D, B * T, ld, hpg + 1, D, D, pos.data(), t,
                                    false);
        },
        50);
    std::printf("rope q+k B=%d T=%d H=%d G=%d D=%d: %.3f ms\n", B, T, H, G, D, f * 1e3);
  }
  std::vector<float> out(dout.size()), lse(size_t(B) * H * T), dqkv(qkv.size());
  for (bool causal : {true, false}) {
    loom::cpu::AttentionShape s{B, T, H, D};
    s.groups = G;
    s.causal = causal;
    const double tf = time_it([&] { loom::cpu::attention_forward(qkv.data(), out.data(), lse.data(), s, 0.0f, 7); }, 10);
    const double tb = time_it(
        [&] { loom::cpu::attention_backward(dout.data(), qkv.data(), out.data(), lse.data(), dqkv.data(), s, 0.0f, 7); },
        10);
    std::printf("attention GQA B=%d T=%d H=%d G=%d D=%d %s: fwd %.2f ms, bwd %.2f ms\n", B, T, H, G, D,
                causal ? "causal" : "bidirectional", tf * 1e3, tb * 1e3);
  }
  {
    const int Tq = 64, Tk = 256;  // cross attention: 64 queries over 256 keys, MHA
    auto q = randv(size_t(B) * Tq * H * D, 13), kv = randv(size_t(B) * Tk * 2 * H * D, 14);
    std::vector<float> o(q.size()), l(size_t(B) * H * Tq), dq(q.size()), dkv(kv.size());
    loom::cpu::AttentionShape s{B, Tq, H, D};
    s.causal = false;
    const float* v = kv.data() + size_t(H) * D;
    const double tf = time_it(
        [&] { loom::cpu::attention_forward_qkv(q.data(), H * D, kv.data(), v, 2 * H * D, o.data(), l.data(), s, Tk, 0.0f, 7); },
        10);
    const double tb = time_it(
        [&] {
          loom::cpu::attention_backward_qkv(q.data(), q.data(), H * D, kv.data(), v, 2 * H * D, o.data(), l.data(), dq.data(),
                                            dkv.data(), dkv.data() + size_t(H) * D, s, Tk, 0.0f, 7);
        },
        10);
    std::printf("attention cross B=%d T=%d Tk=%d H=%d D=%d: fwd %.2f ms, bwd %.2f ms\n", B, Tq, Tk, H, D, tf * 1e3, tb * 1e3);
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
  if (what == "all" || what == "llama") bench_llama();
  return 0;
}
