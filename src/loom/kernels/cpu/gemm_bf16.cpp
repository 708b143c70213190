#include "loom/kernels/cpu/gemm_bf16.h"

#include <oneapi/dnnl/dnnl.hpp>
#include <omp.h>

#include <cstdlib>
#include <map>
#include <memory>
#include <tuple>
#include <vector>

#include "loom/kernels/cpu/gemm.h"
#include "loom/kernels/cpu/gemm_grid.h"
#include "loom/kernels/cpu/precision.h"

namespace loom::cpu {

namespace {

using detail::Split;

// oneDNN picks the best bf16 kernels the CPU has: AVX-512 BF16 (AMD Zen 4, Intel Cooper Lake) or AMX
// (Intel Sapphire Rapids and later, 4-6x the AVX-512 BF16 rate on a linear layer's GEMMs). The two round
// differently, so bf16 results are bitwise reproducible on one kind of CPU, not across kinds (as PyTorch's
// bf16 matmuls). DNNL_MAX_CPU_ISA (or ONEDNN_MAX_CPU_ISA) in the environment caps the choice, e.g.
// AVX512_CORE_BF16 to compute on an AMX machine what a Zen 4 computes.
bool hardware_bf16() {
  static const bool yes = dnnl::get_effective_cpu_isa() >= dnnl::cpu_isa::avx512_core_bf16;
  return yes;
}
bool g_allowed = true;

// One oneDNN matmul per block shape, per thread: the primitive (JIT-compiled once), memory objects
// re-pointed at each call and the thread's scratchpad. Built on a shape's first use (the first training
// step); later calls allocate nothing. Executed through the C API with a fixed argument array (the C++
// execute() takes a hash map).
struct Matmul {
  dnnl::matmul prim;
  dnnl::memory src, weights, dst, scratch;
};
using Key = std::tuple<bool, bool, int, int, int, int, int, int, bool, float>;

struct ThreadState {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
  std::map<Key, std::unique_ptr<Matmul>> cache;
  std::vector<char> scratch;
};

ThreadState& thread_state() {
  thread_local ThreadState s;
  return s;
}

// Dense row-major [rows, cols] with row stride ld, or its transpose viewed as [cols, rows].
dnnl::memory::desc matrix(int rows, int cols, int ld, bool transposed, dnnl::memory::data_type t) {
  using dims = dnnl::memory::dims;
  return transposed ? dnnl::memory::desc(dims{rows, cols}, t, dims{1, ld})
                    : dnnl::memory::desc(dims{rows, cols}, t, dims{ld, 1});
}

// C[M, N] = alpha op(A) op(B) (+ C when accumulate) on one thread.
// oneDNN sizes a matmul's work split (with AMX, also over K, whose partial sums it then adds) by
// omp_get_max_threads() when the primitive is created, and inside a parallel region that still answers the
// team's size although the call runs on one thread: a primitive created there rounds differently from one
// created outside. Each block is one thread's work, so oneDNN is told so while it builds and runs.
class OneOmpThread {
 public:
  OneOmpThread() : saved_(omp_get_max_threads()) {
    if (saved_ != 1) omp_set_num_threads(1);
  }
  ~OneOmpThread() {
    if (saved_ != 1) omp_set_num_threads(saved_);
  }
  OneOmpThread(const OneOmpThread&) = delete;
  OneOmpThread& operator=(const OneOmpThread&) = delete;

 private:
  int saved_;
};

void matmul_block(bool ta, bool tb, int M, int N, int K, float alpha, const uint16_t* A, int lda, const uint16_t* B,
                  int ldb, bool accumulate, float* C, int ldc) {
  const OneOmpThread one_thread;
  ThreadState& ts = thread_state();
  const Key key{ta, tb, M, N, K, lda, ldb, ldc, accumulate, alpha};
  auto& slot = ts.cache[key];
  if (!slot) {
    using dt = dnnl::memory::data_type;
    const auto a = matrix(M, K, lda, ta, dt::bf16), b = matrix(K, N, ldb, tb, dt::bf16);
    const auto c = matrix(M, N, ldc, false, dt::f32);
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    if (alpha != 1.0f) attr.set_output_scales(0, {alpha});
    if (accumulate) {
      dnnl::post_ops po;
      po.append_sum(1.0f);
      attr.set_post_ops(po);
    }
    const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a, b, c), attr, ts.engine);
    const size_t need = pd.scratchpad_desc().get_size();
    if (ts.scratch.size() < need) ts.scratch.resize(need);
    slot = std::make_unique<Matmul>(Matmul{dnnl::matmul(pd), dnnl::memory(a, ts.engine, nullptr),
                                           dnnl::memory(b, ts.engine, nullptr), dnnl::memory(c, ts.engine, nullptr),
                                           dnnl::memory(pd.scratchpad_desc(), ts.engine, nullptr)});
  }
  Matmul& m = *slot;
  m.src.set_data_handle(const_cast<uint16_t*>(A));
  m.weights.set_data_handle(const_cast<uint16_t*>(B));
  m.dst.set_data_handle(C);
  m.scratch.set_data_handle(ts.scratch.data());
  const dnnl_exec_arg_t args[] = {{DNNL_ARG_SRC, m.src.get()},
                                  {DNNL_ARG_WEIGHTS, m.weights.get()},
                                  {DNNL_ARG_DST, m.dst.get()},
                                  {DNNL_ARG_SCRATCHPAD, m.scratch.get()}};
  if (dnnl_primitive_execute(m.prim.get(), ts.stream.get(), 4, args) != dnnl_success)
    throw std::runtime_error("oneDNN bf16 matmul failed");
  ts.stream.wait();
}

void block(bool ta, bool tb, int M, int N, int K, float alpha, const uint16_t* A, int lda, const uint16_t* B, int ldb,
           float beta, float* C, int ldc, const Split& s, int i) {
  const int b0 = s.begin(i), b1 = s.begin(i + 1);
  if (b1 <= b0) return;
  int m = M, n = N;
  if (s.along_n) {
    B = tb ? B + size_t(b0) * ldb : B + b0;
    C += b0;
    n = b1 - b0;
  } else {
    A = ta ? A + b0 : A + size_t(b0) * lda;
    C += size_t(b0) * ldc;
    m = b1 - b0;
  }
  if (beta != 0.0f && beta != 1.0f) detail::scale_c(m, n, beta, C, ldc);
  matmul_block(ta, tb, m, n, K, alpha, A, lda, B, ldb, beta != 0.0f, C, ldc);
}

// The fallback: widen the stored operands and multiply in fp32.
void widened_gemm(bool ta, bool tb, int M, int N, int K, float alpha, const uint16_t* A, int lda, const uint16_t* B,
                  int ldb, float beta, float* C, int ldc) {
  thread_local std::vector<float> a, b;
  const int a_rows = ta ? K : M, b_rows = tb ? N : K;
  a.resize(size_t(a_rows) * lda);
  b.resize(size_t(b_rows) * ldb);
  to_f32(A, DType::BF16, a.data(), long(a.size()));
  to_f32(B, DType::BF16, b.data(), long(b.size()));
  gemm(ta, tb, M, N, K, alpha, a.data(), lda, b.data(), ldb, beta, C, ldc);
}

}  // namespace

bool bf16_gemm_native() { return g_allowed && hardware_bf16(); }
void set_bf16_gemm_native(bool allowed) { g_allowed = allowed; }

void gemm_bf16(bool ta, bool tb, int M, int N, int K, float alpha, const uint16_t* A, int lda, const uint16_t* B,
               int ldb, float beta, float* C, int ldc) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0 || alpha == 0.0f) {
    detail::scale_c(M, N, beta, C, ldc);
    return;
  }
  if (!bf16_gemm_native()) {
    widened_gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  const Split s = detail::split_for(M, N, K);
  if (s.blocks == 1 || omp_in_parallel() || omp_get_max_threads() == 1) {
    for (int i = 0; i < s.blocks; i++) block(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, s, i);
    return;
  }
#pragma omp parallel for schedule(dynamic, 1)
  for (int i = 0; i < s.blocks; i++) block(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, s, i);
}

void to_bf16_rows(const float* src, int rows, int cols, int ld, uint16_t* dst) {
  if (ld == cols) {
    from_f32(src, dst, DType::BF16, long(rows) * cols);
    return;
  }
#pragma omp parallel for schedule(static) if (long(rows) * cols > (1 << 16))
  for (int r = 0; r < rows; r++) from_f32(src + size_t(r) * ld, dst + size_t(r) * cols, DType::BF16, cols);
}

}  // namespace loom::cpu
