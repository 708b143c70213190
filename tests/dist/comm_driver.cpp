// Multi-process checks of loom::dist and the process grid, run under mpirun by ctest (label "dist").
//   comm_driver collectives          every collective, every type, against values each rank can compute
//   comm_driver overlap              non-blocking collectives overlapped with work and with each other
//   comm_driver ring                 send/recv around a ring, blocking and non-blocking
//   comm_driver grid TP CP PP        the process grid's groups reduce and gather over the right ranks
//   comm_driver mismatch             check_same_across_ranks with rank 2 (or the last) differing
//   comm_driver timeout              the last rank never joins an all_reduce: the others must time out
//   comm_driver self-timeout         a recv nobody sends (singleton): must time out
//   comm_driver loop SECONDS         all_reduce in a loop (prints "rank R pid P" first), for kill tests
//   comm_driver bench                all_reduce bandwidth (64 MB fp32) and 8-byte latency
// Exit 0 when every check passes; 1 with "comm_driver: FAIL ..." lines otherwise.
// Only the C API: skip the deprecated C++ bindings (faster to compile, no libmpi_cxx symbols needed).
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "loom/core/dtype.h"
#include "loom/core/error.h"
#include "loom/dist/communicator.h"
#include "loom/parallel/process_grid.h"

using loom::dist::Communicator;
using loom::dist::DType;
using loom::dist::ReduceOp;
using loom::dist::Request;

namespace {

int g_failures = 0;
int g_checks = 0;

void expect(bool ok, const std::string& what) {
  ++g_checks;
  if (!ok) {
    ++g_failures;
    if (g_failures <= 20)
      std::fprintf(stderr, "comm_driver: FAIL rank %d: %s\n", Communicator::world()->rank(), what.c_str());
  }
}

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

// Each rank's contribution: small integers, exact in every type (sums over 16 ranks stay below 2^8, which
// bf16 holds exactly) and different across ranks and elements.
double contribution(int rank, size_t i) { return double(int((rank * 7 + i * 3 + (i >> 4)) % 11) - 5); }

// Elements of one type, stored and compared through double.
struct TypeOps {
  DType dtype;
  size_t size;
  std::function<void(void*, size_t, double)> store;
  std::function<double(const void*, size_t)> load;
};

template <class T>
TypeOps plain(DType dt) {
  return {dt, sizeof(T), [](void* p, size_t i, double v) { static_cast<T*>(p)[i] = T(v); },
          [](const void* p, size_t i) { return double(static_cast<const T*>(p)[i]); }};
}

std::vector<TypeOps> all_types() {
  return {plain<float>(DType::F32),
          plain<double>(DType::F64),
          plain<int64_t>(DType::I64),
          plain<int32_t>(DType::I32),
          {DType::BF16, 2, [](void* p, size_t i, double v) { static_cast<uint16_t*>(p)[i] = loom::f32_to_bf16(float(v)); },
           [](const void* p, size_t i) { return double(loom::bf16_to_f32(static_cast<const uint16_t*>(p)[i])); }},
          {DType::F16, 2, [](void* p, size_t i, double v) { static_cast<uint16_t*>(p)[i] = loom::f32_to_f16(float(v)); },
           [](const void* p, size_t i) { return double(loom::f16_to_f32(static_cast<const uint16_t*>(p)[i])); }}};
}

double combine(ReduceOp op, double a, double b) {
  switch (op) {
    case ReduceOp::Sum: return a + b;
    case ReduceOp::Max: return std::max(a, b);
    case ReduceOp::Min: return std::min(a, b);
  }
  return 0;
}

// The reduction over all ranks of the group of element i (ranks given by their world rank, as the
// contributions are keyed by world rank).
double expected_reduce(const std::vector<int>& ranks, size_t i, ReduceOp op) {
  double acc = contribution(ranks[0], i);
  for (size_t k = 1; k < ranks.size(); ++k) acc = combine(op, acc, contribution(ranks[k], i));
  return acc;
}

struct Buffer {
  const TypeOps& t;
  std::vector<unsigned char> bytes;
  Buffer(const TypeOps& type, size_t n) : t(type), bytes(n * type.size + 1) {}
  void* data() { return bytes.data(); }
  void set(size_t i, double v) { t.store(bytes.data(), i, v); }
  double get(size_t i) const { return t.load(bytes.data(), i); }
};

std::string label(const Communicator& c, const TypeOps& t, const char* what, size_t n, const char* op = "") {
  return std::string(what) + " " + loom::dist::dtype_name(t.dtype) + " n=" + std::to_string(n) + " " + op +
         " on " + c.name() + " (size " + std::to_string(c.size()) + ")";
}

// Every collective on `comm`, whose members have the given world ranks (in group-rank order).
// light: only f32 and bf16, only sums, only root 0 (for large counts).
void check_collectives(Communicator& comm, const std::vector<int>& ranks, const std::vector<size_t>& counts,
                       bool light = false) {
  const int me = Communicator::world()->rank();
  const int n = comm.size();
  const int r = comm.rank();
  std::vector<ReduceOp> ops = {ReduceOp::Sum, ReduceOp::Max, ReduceOp::Min};
  if (light) ops.resize(1);
  for (const TypeOps& t : all_types()) {
    if (light && t.dtype != DType::F32 && t.dtype != DType::BF16) continue;
    for (size_t count : counts) {
      for (ReduceOp op : ops) {
        // all_reduce, blocking and non-blocking.
        for (bool nonblocking : {false, true}) {
          Buffer b(t, count);
          for (size_t i = 0; i < count; ++i) b.set(i, contribution(me, i));
          if (nonblocking) {
            Request req = comm.iall_reduce(b.data(), count, t.dtype, op);
            req.wait();
          } else {
            comm.all_reduce(b.data(), count, t.dtype, op);
          }
          bool ok = true;
          for (size_t i = 0; i < count && ok; ++i) ok = b.get(i) == expected_reduce(ranks, i, op);
          expect(ok, label(comm, t, nonblocking ? "iall_reduce" : "all_reduce", count, loom::dist::reduce_op_name(op)));
        }
        // reduce_scatter, out of place and in place.
        for (bool in_place : {false, true}) {
          Buffer in(t, count * size_t(n)), out(t, count);
          // Element j of the full input: contribution at index j.
          for (size_t j = 0; j < count * size_t(n); ++j) in.set(j, contribution(me, j));
          if (in_place) {
            comm.reduce_scatter(in.data(), in.data(), count, t.dtype, op);
          } else {
            comm.reduce_scatter(in.data(), out.data(), count, t.dtype, op);
          }
          const Buffer& res = in_place ? in : out;
          bool ok = true;
          for (size_t i = 0; i < count && ok; ++i) ok = res.get(i) == expected_reduce(ranks, size_t(r) * count + i, op);
          expect(ok, label(comm, t, in_place ? "reduce_scatter(in place)" : "reduce_scatter", count,
                           loom::dist::reduce_op_name(op)));
        }
      }
      // all_gather, out of place and in place.
      for (bool in_place : {false, true}) {
        Buffer in(t, count), out(t, count * size_t(n));
        for (size_t i = 0; i < count; ++i) in.set(i, contribution(me, i));
        if (in_place) {
          for (size_t i = 0; i < count; ++i) out.set(size_t(r) * count + i, contribution(me, i));
          void* mine = out.bytes.data() + size_t(r) * count * t.size;
          comm.all_gather(mine, out.data(), count, t.dtype);
        } else {
          comm.all_gather(in.data(), out.data(), count, t.dtype);
        }
        bool ok = true;
        for (int k = 0; k < n && ok; ++k)
          for (size_t i = 0; i < count && ok; ++i)
            ok = out.get(size_t(k) * count + i) == contribution(ranks[size_t(k)], i);
        expect(ok, label(comm, t, in_place ? "all_gather(in place)" : "all_gather", count));
      }
      // broadcast from every root.
      for (int root = 0; root < (light ? 1 : n); ++root) {
        Buffer b(t, count);
        for (size_t i = 0; i < count; ++i) b.set(i, contribution(me, i));
        comm.broadcast(b.data(), count, t.dtype, root);
        bool ok = true;
        for (size_t i = 0; i < count && ok; ++i) ok = b.get(i) == contribution(ranks[size_t(root)], i);
        expect(ok, label(comm, t, "broadcast", count) + " root " + std::to_string(root));
      }
    }
  }
  comm.barrier();
}

std::vector<int> iota(int n) {
  std::vector<int> v(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) v[size_t(i)] = i;
  return v;
}

void run_collectives() {
  auto w = Communicator::world();
  check_collectives(*w, iota(w->size()), {1, 7, 1000});
  // One large size per floating type exercises the segmented/pipelined algorithms.
  auto big = w->split(0, 0, "world-copy");
  check_collectives(*big, iota(w->size()), {size_t(1) << 18}, /*light=*/true);
  // Reversed order within a split: group rank k is world rank size-1-k.
  auto rev = w->split(0, w->size() - w->rank(), "reversed");
  std::vector<int> ranks(size_t(w->size()));
  for (int k = 0; k < w->size(); ++k) ranks[size_t(k)] = w->size() - 1 - k;
  check_collectives(*rev, ranks, {5});
  // Even and odd world ranks.
  auto parity = w->split(w->rank() % 2, w->rank(), "parity");
  std::vector<int> same;
  for (int k = w->rank() % 2; k < w->size(); k += 2) same.push_back(k);
  expect(parity->size() == int(same.size()), "parity split size");
  check_collectives(*parity, same, {3});
  // check_same_across_ranks passes when all agree.
  loom::dist::check_same_across_ranks("the flag list", "--num-layers 2 --hidden-size 64");
}

void run_overlap() {
  auto w = Communicator::world();
  const int me = w->rank();
  const size_t n = size_t(1) << 20;  // 4 MB of fp32
  std::vector<float> a(n), g(8 * size_t(w->size()));
  for (size_t i = 0; i < n; ++i) a[i] = float(contribution(me, i));
  std::vector<float> mine(8);
  for (size_t i = 0; i < 8; ++i) mine[i] = float(contribution(me, i));
  // Two outstanding collectives on one communicator (started in the same order everywhere) plus work.
  Request r1 = w->iall_reduce(a.data(), n, DType::F32);
  Request r2 = w->iall_gather(mine.data(), g.data(), 8, DType::F32);
  double work = 0;
  int polls = 0;
  for (int i = 0; i < 2000000; ++i) {
    work += std::sqrt(double(i));
    if (i % 10000 == 0) {
      r1.test();
      ++polls;
    }
  }
  r2.wait();
  r1.wait();
  expect(work > 0 && polls > 0, "work ran");
  const std::vector<int> all = iota(w->size());
  bool ok = true;
  for (size_t i = 0; i < n && ok; ++i) ok = a[i] == float(expected_reduce(all, i, ReduceOp::Sum));
  expect(ok, "iall_reduce overlapped with work");
  ok = true;
  for (int k = 0; k < w->size() && ok; ++k)
    for (size_t i = 0; i < 8 && ok; ++i) ok = g[size_t(k) * 8 + i] == float(contribution(k, i));
  expect(ok, "iall_gather outstanding with iall_reduce");
  // Waiting in the opposite order of completion, and wait_all.
  std::vector<double> x = {double(me)}, y = {double(me)};
  Request reqs[] = {w->iall_reduce(x.data(), 1, DType::F64, ReduceOp::Max),
                    w->iall_reduce(y.data(), 1, DType::F64, ReduceOp::Min)};
  Request::wait_all(reqs);
  expect(x[0] == w->size() - 1 && y[0] == 0, "wait_all of two all_reduces");
}

void run_ring() {
  auto w = Communicator::world();
  const int me = w->rank(), n = w->size();
  const int next = (me + 1) % n, prev = (me + n - 1) % n;
  // Non-blocking: every rank sends its contribution right and receives from the left.
  std::vector<int64_t> out(100), in(100, -1);
  for (size_t i = 0; i < out.size(); ++i) out[i] = int64_t(contribution(me, i)) * 1000 + me;
  Request reqs[] = {w->irecv(in.data(), in.size(), DType::I64, prev, 11),
                    w->isend(out.data(), out.size(), DType::I64, next, 11)};
  Request::wait_all(reqs);
  bool ok = true;
  for (size_t i = 0; i < in.size() && ok; ++i) ok = in[i] == int64_t(contribution(prev, i)) * 1000 + prev;
  expect(ok, "isend/irecv ring");
  // Blocking: a token passed around the ring, each rank adding its rank; even ranks send first.
  for (int round = 0; round < 3; ++round) {
    std::vector<double> token(1 << 16, 0.0);  // 512 KB: beyond the eager limit
    if (me == 0) {
      token[0] = 0;
      w->send(token.data(), token.size(), DType::F64, next, 20 + round);
      w->recv(token.data(), token.size(), DType::F64, prev, 20 + round);
      expect(token[0] == double(n * (n - 1) / 2) && token.back() == double(n - 1) * n / 2,
             "token ring round " + std::to_string(round));
    } else {
      w->recv(token.data(), token.size(), DType::F64, prev, 20 + round);
      token[0] += me;
      token.back() += me;
      w->send(token.data(), token.size(), DType::F64, next, 20 + round);
    }
  }
  // bf16 payloads travel untouched.
  std::vector<uint16_t> h = {loom::f32_to_bf16(float(me) + 0.5f)}, hin(1);
  Request hr[] = {w->irecv(hin.data(), 1, DType::BF16, prev, 30), w->isend(h.data(), 1, DType::BF16, next, 30)};
  Request::wait_all(hr);
  expect(loom::bf16_to_f32(hin[0]) == float(prev) + 0.5f, "bf16 send/recv");
}

void run_grid(int tp, int cp, int pp) {
  auto w = Communicator::world();
  loom::parallel::ProcessGrid grid(w, tp, cp, pp);
  if (w->rank() == 0) std::printf("%s\n", grid.describe().c_str());
  const loom::parallel::GridLayout& layout = grid.layout();
  expect(grid.rank() == w->rank(), "grid rank");
  expect(layout.rank_of(grid.coord()) == w->rank(), "grid coordinates");
  for (loom::parallel::GroupKind kind : loom::parallel::kAllGroupKinds) {
    const auto& comm = grid.group(kind);
    const std::vector<int>& ranks = grid.group_ranks(kind);
    const std::string name = loom::parallel::group_name(kind);
    if (!comm) {
      expect(ranks.empty() && !layout.membership(kind, w->rank()).member(), name + ": missing group");
      continue;
    }
    expect(comm->name() == name, name + ": name");
    expect(comm->size() == int(ranks.size()), name + ": size");
    expect(ranks.at(size_t(comm->rank())) == w->rank(), name + ": group rank is Megatron's position");
    // Gathering world ranks gives the group's members in Megatron's order.
    std::vector<int32_t> got(ranks.size());
    int32_t mine = w->rank();
    comm->all_gather(&mine, got.data(), 1, DType::I32);
    expect(std::vector<int>(got.begin(), got.end()) == ranks, name + ": members");
    // A reduction covers exactly the group.
    int64_t sum = w->rank();
    comm->all_reduce(&sum, 1);
    int64_t expected = 0;
    for (int k : ranks) expected += k;
    expect(sum == expected, name + ": all_reduce over the group");
    check_collectives(*comm, ranks, {3});
  }
  // The sizes the grid reports.
  expect(grid.tensor()->size() == tp && grid.context()->size() == cp && grid.pipeline()->size() == pp &&
             grid.data()->size() == layout.dp() && grid.data_with_context()->size() == cp * layout.dp() &&
             grid.model()->size() == tp * pp,
         "group sizes");
  expect((grid.embedding() != nullptr) == (grid.is_first_stage() || grid.is_last_stage()), "embedding membership");
  expect((grid.position_embedding() != nullptr) == grid.is_first_stage(), "position-embedding membership");
}

int run_mismatch() {
  auto w = Communicator::world();
  const int odd = std::min(2, w->size() - 1);
  std::string flags = "--num-layers 2 --hidden-size 64 --lr 0.001";
  if (w->rank() == odd) flags = "--num-layers 2 --hidden-size 128 --lr 0.001";
  try {
    loom::dist::check_same_across_ranks("the flag list", flags);
  } catch (const loom::UserError& e) {
    std::fprintf(stderr, "loom: error: %s\n", e.what());
    return 2;
  }
  std::fprintf(stderr, "comm_driver: FAIL rank %d: mismatch not detected\n", w->rank());
  return 1;
}

void run_timeout() {
  auto w = Communicator::world();
  w->barrier();
  if (w->rank() == w->size() - 1) {
    std::fprintf(stderr, "rank %d: not joining the all_reduce\n", w->rank());
    std::this_thread::sleep_for(std::chrono::seconds(120));  // mpirun kills us when the others abort
    return;
  }
  float x = 1;
  w->all_reduce(&x, 1);
  std::fprintf(stderr, "comm_driver: FAIL rank %d: all_reduce returned without the last rank\n", w->rank());
  std::exit(1);
}

void run_self_timeout() {
  auto w = Communicator::world();
  float x = 0;
  w->recv(&x, 1, DType::F32, w->rank(), 99);  // nobody sends
  std::fprintf(stderr, "comm_driver: FAIL: recv returned\n");
  std::exit(1);
}

void run_loop(double seconds) {
  auto w = Communicator::world();
  std::fprintf(stderr, "rank %d pid %d\n", w->rank(), int(getpid()));
  w->barrier();
  if (w->rank() == 0) {
    std::printf("ready\n");
    std::fflush(stdout);
  }
  const double end = now() + seconds;
  std::vector<float> v(1024);
  while (now() < end) {
    w->all_reduce(v.data(), v.size());
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  std::fprintf(stderr, "comm_driver: FAIL rank %d: loop ended without the job being torn down\n", w->rank());
  std::exit(1);
}

void run_bench() {
  auto w = Communicator::world();
  const size_t n = size_t(16) << 20;  // 64 MB fp32
  std::vector<float> big(n, 1.0f);
  auto time_it = [&](const std::function<void()>& f, int iters) {
    f();  // warm-up
    w->barrier();
    double t0 = now();
    for (int i = 0; i < iters; ++i) f();
    double t = (now() - t0) / iters;
    double worst = t;
    w->all_reduce(&worst, 1, ReduceOp::Max);
    return worst;
  };
  const int p = w->size();
  // Bus bandwidth as nccl-tests defines it: bytes * 2 (p-1)/p / time.
  const double bytes = double(n) * 4;
  double t_loom = time_it([&] { w->all_reduce(big.data(), n); }, 10);
  double t_mpi = time_it([&] { MPI_Allreduce(MPI_IN_PLACE, big.data(), int(n), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD); }, 10);
  double small[1] = {1.0};
  double l_loom = time_it([&] { w->all_reduce(small, 1); }, 2000);
  double l_mpi = time_it([&] { MPI_Allreduce(MPI_IN_PLACE, small, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD); }, 2000);
  if (w->rank() == 0) {
    const double bus = 2.0 * (p - 1) / p;
    std::printf("all_reduce 64 MB fp32, np %d: loom %.1f ms = %.2f GB/s algbw, %.2f GB/s busbw; "
                "blocking MPI_Allreduce %.1f ms = %.2f GB/s algbw\n",
                p, t_loom * 1e3, bytes / t_loom / 1e9, bytes * bus / t_loom / 1e9, t_mpi * 1e3, bytes / t_mpi / 1e9);
    std::printf("all_reduce 8 B, np %d: loom %.2f us, blocking MPI_Allreduce %.2f us\n", p, l_loom * 1e6, l_mpi * 1e6);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: comm_driver collectives|overlap|ring|grid TP CP PP|mismatch|timeout|self-timeout|loop S|bench\n");
    return 2;
  }
  const std::string what = argv[1];
  try {
    auto w = Communicator::world();
    if (what == "collectives") run_collectives();
    else if (what == "overlap") run_overlap();
    else if (what == "ring") run_ring();
    else if (what == "grid" && argc == 5) run_grid(std::atoi(argv[2]), std::atoi(argv[3]), std::atoi(argv[4]));
    else if (what == "mismatch") return run_mismatch();
    else if (what == "timeout") run_timeout();
    else if (what == "self-timeout") run_self_timeout();
    else if (what == "loop" && argc == 3) run_loop(std::atof(argv[2]));
    else if (what == "bench") run_bench();
    else {
      std::fprintf(stderr, "comm_driver: unknown scenario '%s'\n", what.c_str());
      return 2;
    }
    w->barrier();
    if (w->rank() == 0)
      std::printf("comm_driver %s: %d checks on rank 0, %s\n", what.c_str(), g_checks, g_failures ? "FAILED" : "ok");
  } catch (const loom::UserError& e) {
    std::fprintf(stderr, "loom: error: %s\n", e.what());
    return 2;
  }
  return g_failures ? 1 : 0;
}
