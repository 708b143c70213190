// `loom bench --calibrate`: measures this machine as `loom plan --hardware FILE.json` describes a device:
// GEMM rates by shape, dtype and form (a linear layer's forward, input gradient and weight gradient)
// through Loom's own kernels (kernels/cpu), the flash attention kernel, a memory-bound kernel's bandwidth, and (under mpirun) all-reduce, all-gather and send/recv between the
// ranks. Every rank measures at once, as training runs them, so shared cores and memory show in the
// figures. Takes about a minute at the default --seconds-per-kernel (120 GEMM and 12 attention samples).
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "commands.h"
#include "loom/core/error.h"
#include "loom/dist/communicator.h"
#include "loom/kernels/cpu/attention.h"
#include "loom/kernels/cpu/gemm.h"
#include "loom/kernels/cpu/gemm_bf16.h"
#include "loom/ckpt/safetensors.h"
#include "loom/plan/bench_args.h"
#include "loom/plan/collective_model.h"
#include "loom/plan/hardware.h"
#include "loom/util/output_path.h"

namespace loom::cmd {
namespace {

using Clock = std::chrono::steady_clock;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Seconds per call of fn: repeated until `budget` seconds have passed (at least three times, after one
// warm-up); the median repetition, so that a machine shared with other work is measured as training
// will find it (the fastest repetition would be the rate between interruptions).
template <class Fn>
double time_call(Fn&& fn, double budget) {
  fn();
  std::vector<double> t;
  double spent = 0;
  for (int i = 0; i < 3 || (spent < budget && i < 1000); i++) {
    const auto t0 = Clock::now();
    fn();
    t.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
    spent += t.back();
  }
  return median(t);
}

// As time_call, for a collective: every rank must make the same number of calls, so the count is agreed
// from the slowest rank's first call.
template <class Fn>
double time_collective(dist::Communicator& w, Fn&& fn, double budget) {
  fn();
  auto t0 = Clock::now();
  fn();
  double once = std::chrono::duration<double>(Clock::now() - t0).count();
  w.all_reduce(&once, 1, dist::DType::F64, dist::ReduceOp::Max);
  const int reps = int(std::clamp(budget / std::max(once, 1e-9), 3.0, 500.0));
  std::vector<double> t;
  for (int i = 0; i < reps; i++) {
    t0 = Clock::now();
    fn();
    t.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
  }
  return median(t);
}

// A linear layer: `tokens` rows through a weight of `out` x `in`.
struct LayerShape {
  int tokens, out, in;
};

// Layers Loom trains (tokens x width: the 16M and 124M GPTs' QKV, projection and MLP, vocabulary-wide
// output layers on 512-row chunks as kLmHeadChunkRows runs them), square ones, and skinny ones. The
// planner takes a measured shape's own rate and interpolates the others (hardware.h, gemm_rate).
const LayerShape kLayers[] = {{128, 128, 128},    {256, 256, 256},    {512, 512, 512},    {1024, 1024, 1024},
                              {2048, 2048, 2048}, {1024, 768, 256},   {1024, 256, 256},   {1024, 1024, 256},
                              {1024, 256, 1024},  {1024, 2304, 768},  {1024, 768, 768},   {1024, 3072, 768},
                              {1024, 768, 3072},  {512, 50304, 256},  {512, 32768, 512},  {512, 32768, 256},
                              {2048, 64, 2048},   {64, 2048, 2048},   {4096, 256, 256},   {512, 4096, 512}};

// A GEMM as a linear layer runs it (layers/linear.cpp): the forward NT, the input gradient NN, the weight
// gradient TN accumulating into the gradient.
struct GemmCall {
  GemmOp op;
  int m, n, k;
  bool ta, tb;
  float beta;
};

std::vector<GemmCall> layer_gemms(const LayerShape& s) {
  return {{GemmOp::kNT, s.tokens, s.out, s.in, false, true, 0.f},
          {GemmOp::kNN, s.tokens, s.in, s.out, false, false, 0.f},
          {GemmOp::kTN, s.out, s.in, s.tokens, true, false, 1.f}};
}

// Operands of C[m,n] = op(A) op(B), row-major: A is m x k (k x m transposed), B k x n (n x k transposed).
double gemm_fp32(const GemmCall& g, double budget) {
  std::vector<float> A(size_t(g.m) * g.k, 0.01f), B(size_t(g.k) * g.n, 0.02f), C(size_t(g.m) * g.n);
  const int lda = g.ta ? g.m : g.k, ldb = g.tb ? g.k : g.n;
  const double t = time_call(
      [&] { cpu::gemm(g.ta, g.tb, g.m, g.n, g.k, 1.f, A.data(), lda, B.data(), ldb, g.beta, C.data(), g.n); }, budget);
  return 2.0 * g.m * g.n * g.k / t;
}

// As Loom's bf16 linear layer runs it: both operands rounded to bf16, then the bf16 GEMM.
double gemm_bf16_rate(const GemmCall& g, double budget) {
  std::vector<float> A(size_t(g.m) * g.k, 0.01f), B(size_t(g.k) * g.n, 0.02f), C(size_t(g.m) * g.n);
  std::vector<uint16_t> a(A.size()), b(B.size());
  const int lda = g.ta ? g.m : g.k, ldb = g.tb ? g.k : g.n;
  const double t = time_call(
      [&] {
        cpu::to_bf16_rows(A.data(), g.ta ? g.k : g.m, lda, lda, a.data());
        cpu::to_bf16_rows(B.data(), g.tb ? g.n : g.k, ldb, ldb, b.data());
        cpu::gemm_bf16(g.ta, g.tb, g.m, g.n, g.k, 1.f, a.data(), lda, b.data(), ldb, g.beta, C.data(), g.n);
      },
      budget);
  return 2.0 * g.m * g.n * g.k / t;
}

// Useful causal FLOPs per second of the flash attention kernel, forward and backward.
// At T tokens per head (8 heads of 64, as many sequences as make 4096 tokens), causal or not.
std::pair<double, double> measure_attention(int T, bool causal, double budget) {
  cpu::AttentionShape s{std::max(1, 4096 / T), T, 8, 64};
  s.causal = causal;
  const size_t rows = size_t(s.B) * s.T;
  std::vector<float> qkv(rows * 3 * s.H * s.D, 0.01f), out(rows * s.H * s.D), lse(rows * s.H), dout(out.size(), 0.01f),
      dqkv(qkv.size());
  const double flops = 4.0 * s.B * s.H * double(s.T) * s.T * s.D * (causal ? 0.5 : 1.0);
  const double f = time_call([&] { cpu::attention_forward(qkv.data(), out.data(), lse.data(), s, 0.f, 1); }, budget);
  const double b = time_call(
      [&] { cpu::attention_backward(dout.data(), qkv.data(), out.data(), lse.data(), dqkv.data(), s, 0.f, 1); }, budget);
  return {flops / f, flops / b};
}

// Bytes per second of a threaded a = b + c over arrays far larger than the caches.
double memory_bandwidth(double budget) {
  const size_t n = size_t(16) << 20;  // 64 MB per array
  std::vector<float> a(n), b(n, 1.f), c(n, 2.f);
  const double t = time_call(
      [&] {
#pragma omp parallel for schedule(static)
        for (long i = 0; i < long(n); i++) a[size_t(i)] = b[size_t(i)] + c[size_t(i)];
      },
      budget);
  return 3.0 * 4.0 * double(n) / t;
}

// Latency and bandwidth of the ring model (collective_model.h) fitted to all-reduces of a small and a
// large message: t = 2 (n - 1) alpha + bytes sent / beta. The large one (64 MB) exceeds the caches, as
// gradient buckets and ZeRO's shards do (a 16 MB all-reduce ran twice as fast per byte here).
Link fit_all_reduce(dist::Communicator& w, double budget) {
  const int n = w.size();
  auto measure = [&](size_t floats) {
    std::vector<float> x(floats, 1.f);
    w.barrier();
    return time_collective(w, [&] { w.all_reduce(x.data(), x.size(), dist::DType::F32); }, budget);
  };
  const size_t small = 16, large = size_t(16) << 20;  // 64 B and 64 MB
  const double ts = measure(small), tl = measure(large);
  Link l;
  l.latency = ts / (2.0 * (n - 1));
  l.bandwidth = (all_reduce_bytes_sent(4.0 * large, n) - all_reduce_bytes_sent(4.0 * small, n)) / std::max(1e-9, tl - ts);
  return l;
}

}  // namespace

int bench(int argc, char** argv) {
  BenchArgs a;
  if (!parse_bench_args(argc, argv, a)) return 0;
  const double budget = a.seconds_per_kernel;
  const int largest = a.largest_gemm;
  auto world = dist::Communicator::world();
  const bool root = world->rank() == 0;
  // Fail before measuring when the file cannot be written; the check creates nothing.
  {
    std::string problem;
    if (root) {
      const std::string why = output_file_problem(a.output);
      if (!why.empty()) problem = "--output " + a.output + ": " + why;
    }
    dist::fail_if_any_rank(*world, problem);
  }

  Hardware h;
  h.name = a.name;
  h.gemm_efficiency = 1.0, h.memory_efficiency = 1.0, h.link_efficiency = 1.0;
  for (const LayerShape& s : kLayers) {
    if (double(s.tokens) * s.out * s.in > double(largest) * largest * largest) continue;
    for (const GemmCall& g : layer_gemms(s)) {
      // Every rank measures the same kernel at the same time, as data-parallel ranks run their steps
      // (unsynchronised, one rank's vocabulary-wide GEMM met another's cache-sized one: +-15% per sample).
      world->barrier();
      const double r32 = gemm_fp32(g, budget);
      world->barrier();
      const double r16 = gemm_bf16_rate(g, budget);
      // Loom's --fp16 computes its GEMMs in fp32 (only --bf16 has bf16 GEMMs), so fp16 samples are fp32's.
      h.gemm_table.push_back({g.m, g.n, g.k, ComputeDType::kFp32, r32, g.op});
      h.gemm_table.push_back({g.m, g.n, g.k, ComputeDType::kFp16, r32, g.op});
      h.gemm_table.push_back({g.m, g.n, g.k, ComputeDType::kBf16, r16, g.op});
      h.peak_fp32 = std::max(h.peak_fp32, r32), h.peak_bf16 = std::max(h.peak_bf16, r16);
      if (root)
        std::printf(" > gemm %s %5d x %5d x %5d | fp32: %8.2f GFLOP/s | bf16: %8.2f GFLOP/s\n", gemm_op_name(g.op), g.m,
                    g.n, g.k, r32 / 1e9, r16 / 1e9);
    }
  }
  h.peak_fp16 = h.peak_fp32;
  h.peak_tf32 = 0;
  // The flash kernel by sequence length, causal and not (short heads run it well below its long-sequence
  // rate); the 512-token causal rates also set the single efficiency older readers use.
  double af = 0, ab = 0;
  for (bool causal : {true, false})
    for (int T : {32, 64, 128, 256, 512, 1024}) {
      world->barrier();
      const auto [f, b] = measure_attention(T, causal, budget);
      h.attention_table.push_back({T, causal, f, b});
      if (causal && T == 512) af = f, ab = b;
      if (root)
        std::printf(" > attention (%s, 8 heads x %4d x 64) | forward: %.2f GFLOP/s | backward: %.2f GFLOP/s\n",
                    causal ? "causal" : "full", T, f / 1e9, b / 1e9);
    }
  h.attention_efficiency = af / h.peak_fp32;
  h.attention_backward_ratio = af / ab;
  h.fused_attention = true;
  h.memory_bandwidth = memory_bandwidth(budget);
  h.host_bandwidth = h.memory_bandwidth / 2;  // offload on a CPU is a copy within host memory
  h.host_memory_bandwidth = h.memory_bandwidth;
  if (root) {
    std::printf(" > memory-bound a = b + c | %.2f GB/s\n", h.memory_bandwidth / 1e9);
  }
  // Memory a rank may use: the machine's, shared by the ranks.
  double mem_kb = 0;
  {
    std::ifstream mi("/proc/meminfo");
    std::string key;
    while (mi >> key) {
      if (key == "MemTotal:") { mi >> mem_kb; break; }
      mi.ignore(1 << 10, '\n');
    }
  }
  h.memory_bytes = std::max(1.0, mem_kb * 1024.0 / world->size());
  h.gpus_per_node = world->size();
  h.intra_node_link = "MPI shared memory";
  if (world->size() > 1) {
    const Link ar = fit_all_reduce(*world, budget);
    h.intra_node_bandwidth = ar.bandwidth, h.intra_node_latency = ar.latency;
    // All-gather and reduce-scatter of the same 64 MB (the whole tensor), as fractions of the fitted
    // all-reduce bandwidth; send/recv reported beside them.
    const int n = world->size();
    std::vector<float> out(size_t(16) << 20, 1.f), in(out.size() / size_t(n), 1.f);
    const double bytes = 4.0 * double(in.size()) * n;
    world->barrier();
    const double tg =
        time_collective(*world, [&] { world->all_gather(in.data(), out.data(), in.size(), dist::DType::F32); }, budget);
    world->barrier();
    const double trs = time_collective(
        *world, [&] { world->reduce_scatter(out.data(), in.data(), in.size(), dist::DType::F32); }, budget);
    auto factor = [&](double t) {
      const double rate = all_gather_bytes_sent(bytes, n) / std::max(1e-9, t - (n - 1) * ar.latency);
      return std::clamp(rate / ar.bandwidth, 1e-3, 1e3);
    };
    h.all_gather_factor = factor(tg), h.reduce_scatter_factor = factor(trs);
    std::vector<float> buf(size_t(4) << 20, 1.f);
    world->barrier();
    // Ping-pong between ranks 0 and 1 (the others idle through the same number of rounds).
    const int r = world->rank(), peer = 1 - r;
    const double tp = time_collective(
                          *world,
                          [&] {
                            if (r == 0) {
                              world->send(buf.data(), buf.size(), dist::DType::F32, peer, 7);
                              world->recv(buf.data(), buf.size(), dist::DType::F32, peer, 8);
                            } else if (r == 1) {
                              world->recv(buf.data(), buf.size(), dist::DType::F32, peer, 7);
                              world->send(buf.data(), buf.size(), dist::DType::F32, peer, 8);
                            }
                          },
                          budget) /
                      2.0;
    world->barrier();
    if (root) {
      std::printf(" > all-reduce over %d ranks | latency: %.2f us | bandwidth: %.2f GB/s\n", world->size(),
                  ar.latency * 1e6, ar.bandwidth / 1e9);
      std::printf(" > all-gather over %d ranks, 64 MB | %.2f ms | bandwidth: %.2f GB/s (%.2f x the all-reduce's)\n", n,
                  tg * 1e3, h.all_gather_factor * ar.bandwidth / 1e9, h.all_gather_factor);
      std::printf(" > reduce-scatter over %d ranks, 64 MB | %.2f ms | bandwidth: %.2f GB/s (%.2f x the all-reduce's)\n",
                  n, trs * 1e3, h.reduce_scatter_factor * ar.bandwidth / 1e9, h.reduce_scatter_factor);
      std::printf(" > send/recv 16 MB | %.2f GB/s\n", 4.0 * double(buf.size()) / tp / 1e9);
    }
  } else {
    // One process: no link to measure; a copy through memory stands in.
    h.intra_node_bandwidth = h.memory_bandwidth / 2, h.intra_node_latency = 1e-6;
  }
  h.inter_node_bandwidth = h.intra_node_bandwidth, h.inter_node_latency = h.intra_node_latency;
  if (root) {
    write_file_atomic(a.output, hardware_to_json(h));
    std::printf(" > wrote %s (%d threads per rank)\n", a.output.c_str(), omp_get_max_threads());
  }
  return 0;
}

}  // namespace loom::cmd
