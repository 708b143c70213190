#pragma once
// Internal helpers for the CPU kernels: per-thread scratch that is allocated once and reused, and
// fixed (thread-count independent) partitions for deterministic reductions.
#include <omp.h>

#include <algorithm>
#include <cstddef>
#include <vector>

namespace loom::cpu::detail {

// A thread-local float buffer of at least n elements that grows and is never shrunk, so steady-state
// calls do not allocate. `slot` distinguishes independent buffers used at the same time by one thread.
// Storage is 64-byte aligned.
inline float* scratch_floats(size_t n, int slot = 0) {
  struct Buf {
    std::vector<float> v;
  };
  constexpr int kSlots = 4;
  thread_local Buf bufs[kSlots];
  std::vector<float>& v = bufs[slot].v;
  if (v.size() < n + 16) v.resize(n + 16);
  float* p = v.data();
  size_t mis = (reinterpret_cast<size_t>(p) / sizeof(float)) & 15;
  return mis ? p + (16 - mis) : p;
}

inline double* scratch_doubles(size_t n) {
  thread_local std::vector<double> v;
  if (v.size() < n + 8) v.resize(n + 8);
  double* p = v.data();
  size_t mis = (reinterpret_cast<size_t>(p) / sizeof(double)) & 7;
  return mis ? p + (8 - mis) : p;
}

// Number of row chunks used for a column reduction over N rows. It depends only on N (never on the
// thread count), so partial sums and their fixed-order combination give bitwise identical results for
// any number of threads.
inline int reduction_chunks(long N, long min_rows_per_chunk = 16, int max_chunks = 64) {
  long c = (N + min_rows_per_chunk - 1) / min_rows_per_chunk;
  return int(std::max(1L, std::min<long>(c, max_chunks)));
}
inline long chunk_begin(long N, int chunks, int i) { return N * i / chunks; }

// out[c] += sum over chunks ch = 0, 1, ... (in this order) of part[ch * stride + offset + c], c < C.
// out may be null (nothing to accumulate).
inline void reduce_partials(const float* part, int chunks, long stride, int C, float* out, long offset) {
  if (!out) return;
  constexpr int kCols = 256;
  for (int cb = 0; cb < C; cb += kCols) {
    const int n = std::min(kCols, C - cb);
    float acc[kCols];
    for (int c = 0; c < n; c++) acc[c] = 0.0f;
    for (int ch = 0; ch < chunks; ch++) {
      const float* p = part + ch * stride + offset + cb;
#pragma omp simd
      for (int c = 0; c < n; c++) acc[c] += p[c];
    }
#pragma omp simd
    for (int c = 0; c < n; c++) out[cb + c] += acc[c];
  }
}

// Whether a loop of `work` elementwise operations is worth a parallel region.
inline bool worth_parallel(long work) { return work >= 32768 && omp_get_max_threads() > 1; }

// Runs fn(r, acc) for every row r < N, in parallel, where acc (C floats) is a column accumulator that
// fn adds row r's contribution to (acc is null when colsum is null: nothing to sum). Rows are grouped
// in reduction_chunks(N) fixed chunks with one accumulator each; the accumulators are then added to
// colsum in chunk order, so colsum is bitwise the same for any number of threads.
template <class RowFn>
inline void rows_with_column_sum(int N, int C, float* colsum, RowFn&& fn) {
  if (N <= 0 || C <= 0) return;
  const bool par = worth_parallel(long(N) * C);
  if (!colsum) {
#pragma omp parallel for schedule(static) if (par)
    for (int r = 0; r < N; r++) fn(r, static_cast<float*>(nullptr));
    return;
  }
  const int chunks = reduction_chunks(N);
  float* part = scratch_floats(size_t(chunks) * C, 3);
#pragma omp parallel for schedule(static) if (par)
  for (int ch = 0; ch < chunks; ch++) {
    float* acc = part + size_t(ch) * C;
    for (int c = 0; c < C; c++) acc[c] = 0.0f;
    const int rb = int(chunk_begin(N, chunks, ch)), re = int(chunk_begin(N, chunks, ch + 1));
    for (int r = rb; r < re; r++) fn(r, acc);
  }
  reduce_partials(part, chunks, C, C, colsum, 0);
}

}  // namespace loom::cpu::detail
