#include "loom/dist/communicator.h"

// Only the C API: skip the deprecated C++ bindings (faster to compile, no libmpi_cxx symbols needed).
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <vector>

#include "loom/core/dtype.h"
#include "loom/core/error.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#endif

namespace loom::dist {

namespace {

// Open MPI allocates inside calls (at start-up, on first contact with a peer, for schedules) and frees some
// of it only in plugins it unloads at MPI_Finalize, which LeakSanitizer then reports as leaks it cannot even
// name. MPI calls therefore run with leak checking off for this thread; our own allocations stay outside.
// (Allocations on Open MPI's progress threads are not covered: under mpirun a sanitizer build still reports
// ~32 bytes per peer from PMIx. Singleton runs, as in the unit tests, are clean.)
struct LsanOff {
#if defined(__SANITIZE_ADDRESS__)
  LsanOff() { __lsan_disable(); }
  ~LsanOff() { __lsan_enable(); }
#else
  LsanOff() {}  // user-provided, so an unused instance does not warn
#endif
  LsanOff(const LsanOff&) = delete;
  LsanOff& operator=(const LsanOff&) = delete;
};

}  // namespace

// ---------------------------------------------------------------------------------------------------
// Element types and reduction operators.

size_t dtype_size(DType t) {
  switch (t) {
    case DType::F32: case DType::I32: return 4;
    case DType::F64: case DType::I64: return 8;
    case DType::BF16: case DType::F16: return 2;
    case DType::U8: return 1;
  }
  return 0;
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "f32";
    case DType::F64: return "f64";
    case DType::BF16: return "bf16";
    case DType::F16: return "f16";
    case DType::I32: return "i32";
    case DType::I64: return "i64";
    case DType::U8: return "u8";
  }
  return "?";
}

const char* reduce_op_name(ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum: return "sum";
    case ReduceOp::Max: return "max";
    case ReduceOp::Min: return "min";
  }
  return "?";
}

namespace {

MPI_Datatype mpi_type(DType t) {
  switch (t) {
    case DType::F32: return MPI_FLOAT;
    case DType::F64: return MPI_DOUBLE;
    case DType::BF16: case DType::F16: return MPI_UINT16_T;
    case DType::I32: return MPI_INT32_T;
    case DType::I64: return MPI_INT64_T;
    case DType::U8: return MPI_UINT8_T;
  }
  return MPI_DATATYPE_NULL;
}

// bf16 / fp16: each reduction step converts both operands to fp32, combines them and rounds back to
// nearest even. A NaN operand gives NaN for every operator (so an overflow is never hidden by max/min).
template <float (*ToF32)(uint16_t), uint16_t (*FromF32)(float), int Op>
void reduce16(void* in, void* inout, int* len, MPI_Datatype*) {
  const uint16_t* a = static_cast<const uint16_t*>(in);
  uint16_t* b = static_cast<uint16_t*>(inout);
  const int n = *len;
  for (int i = 0; i < n; ++i) {
    float x = ToF32(a[i]), y = ToF32(b[i]), r;
    if constexpr (Op == 0) {
      r = x + y;
    } else if (std::isnan(x) || std::isnan(y)) {
      r = x + y;
    } else if constexpr (Op == 1) {
      r = x > y ? x : y;
    } else {
      r = x < y ? x : y;
    }
    b[i] = FromF32(r);
  }
}

struct Runtime {
  bool initialized_here = false;
  int world_rank = 0;
  int world_size = 1;
  // A duplicate of the world for fault handling (exit_after_error), so its messages never match the
  // training's own; MPI_COMM_NULL in a world of one.
  MPI_Comm fault = MPI_COMM_NULL;
  // Open MPI's libnbc iallreduce algorithm, switched per call through MPI_T (see iall_reduce).
  bool tools_initialized = false;
  bool nbc_algorithm_settable = false;
  MPI_T_cvar_handle nbc_algorithm{};
  int nbc_algorithm_value = 0;
  MPI_Op half_ops[2][3] = {{MPI_OP_NULL, MPI_OP_NULL, MPI_OP_NULL}, {MPI_OP_NULL, MPI_OP_NULL, MPI_OP_NULL}};
};
Runtime g_runtime;

MPI_Op mpi_op(DType t, ReduceOp op) {
  if (t == DType::BF16 || t == DType::F16) return g_runtime.half_ops[t == DType::F16][int(op)];
  switch (op) {
    case ReduceOp::Sum: return MPI_SUM;
    case ReduceOp::Max: return MPI_MAX;
    case ReduceOp::Min: return MPI_MIN;
  }
  return MPI_OP_NULL;
}

// Open MPI's libnbc (which runs every non-blocking collective) picks a binomial tree for an in-place
// MPI_Iallreduce, and for any on fewer than 4 ranks: everything is reduced onto one rank and broadcast
// back, so each byte crosses twice and one rank does all the arithmetic. For large messages its ring
// (reduce-scatter then all-gather) is about twice as fast here. The choice is an MCA variable that the MPI
// tools interface can change between calls; it depends only on (count, type, group size), so every rank
// of a group makes the same one. Skipped when the variable is absent (another MPI) or the user set it.
constexpr int kNbcDefault = 0, kNbcRing = 1;
constexpr size_t kRingMinBytes = size_t(512) << 10;

void setup_nbc_algorithm() {
  if (std::getenv("OMPI_MCA_coll_libnbc_iallreduce_algorithm")) return;
  int provided = 0, index = -1, count = 0;
  if (MPI_T_init_thread(MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) return;
  g_runtime.tools_initialized = true;
  if (MPI_T_cvar_get_index("coll_libnbc_iallreduce_algorithm", &index) != MPI_SUCCESS) return;
  if (MPI_T_cvar_handle_alloc(index, nullptr, &g_runtime.nbc_algorithm, &count) != MPI_SUCCESS) return;
  int value = -1;
  if (count != 1 || MPI_T_cvar_read(g_runtime.nbc_algorithm, &value) != MPI_SUCCESS || value != kNbcDefault) {
    MPI_T_cvar_handle_free(&g_runtime.nbc_algorithm);
    return;
  }
  g_runtime.nbc_algorithm_settable = true;
}

void select_nbc_allreduce(size_t count, size_t bytes, int group_size) {
  if (!g_runtime.nbc_algorithm_settable) return;
  const int want = bytes >= kRingMinBytes && count >= size_t(group_size) && group_size > 1 ? kNbcRing : kNbcDefault;
  if (want == g_runtime.nbc_algorithm_value) return;
  if (MPI_T_cvar_write(g_runtime.nbc_algorithm, &want) == MPI_SUCCESS) g_runtime.nbc_algorithm_value = want;
}

bool mpi_live() {
  int init = 0, fin = 0;
  MPI_Initialized(&init);
  MPI_Finalized(&fin);
  return init && !fin;
}

// ---------------------------------------------------------------------------------------------------
// Timeout.

std::atomic<double> g_timeout_set{300.0};

// LOOM_COMM_TIMEOUT, parsed once; <= 0 when unset.
double env_timeout() {
  static const double value = [] {
    const char* s = std::getenv("LOOM_COMM_TIMEOUT");
    if (!s || !*s) return 0.0;
    char* end = nullptr;
    double v = std::strtod(s, &end);
    if (*end != '\0' || !(v > 0) || !std::isfinite(v))
      fail(std::string("LOOM_COMM_TIMEOUT must be a positive number of seconds, got '") + s + "'");
    return v;
  }();
  return value;
}

std::string format_seconds(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", s);
  return buf;
}

}  // namespace

void set_timeout(double seconds) {
  require(seconds > 0 && std::isfinite(seconds),
          "the communication timeout must be a positive number of seconds, got " + format_seconds(seconds));
  g_timeout_set.store(seconds);
}

double timeout() {
  double env = env_timeout();
  return env > 0 ? env : g_timeout_set.load();
}

// ---------------------------------------------------------------------------------------------------
// Communicator state and fatal errors.

struct CommState {
  MPI_Comm comm = MPI_COMM_NULL;
  std::string name;
  int rank = 0;
  int size = 1;
  bool owned = false;  // freed on destruction (not MPI_COMM_WORLD)

  ~CommState() {
    LsanOff off;
    if (owned && comm != MPI_COMM_NULL && mpi_live()) MPI_Comm_free(&comm);
  }
};

namespace {

enum class OpKind { AllReduce, ReduceScatter, AllGather, Broadcast, Barrier, Send, Recv, Split, Finalize };

// What an operation was, for error lines (formatted only when something goes wrong).
struct OpInfo {
  OpKind kind = OpKind::Barrier;
  size_t count = 0;
  DType dtype = DType::F32;
  ReduceOp op = ReduceOp::Sum;
  int peer = -1;  // send/recv peer, broadcast root
  int tag = 0;

  size_t bytes() const { return count * dtype_size(dtype); }

  std::string describe() const {
    std::string c = std::to_string(count) + " x " + dtype_name(dtype);
    switch (kind) {
      case OpKind::AllReduce: return "all_reduce (" + c + ", " + reduce_op_name(op) + ")";
      case OpKind::ReduceScatter: return "reduce_scatter (" + c + " per rank, " + reduce_op_name(op) + ")";
      case OpKind::AllGather: return "all_gather (" + c + " per rank)";
      case OpKind::Broadcast: return "broadcast (" + c + " from rank " + std::to_string(peer) + ")";
      case OpKind::Barrier: return "barrier";
      case OpKind::Send: return "send (" + c + " to rank " + std::to_string(peer) + ", tag " + std::to_string(tag) + ")";
      case OpKind::Recv: return "recv (" + c + " from rank " + std::to_string(peer) + ", tag " + std::to_string(tag) + ")";
      case OpKind::Split: return "split";
      case OpKind::Finalize: return "barrier at exit";
    }
    return "?";
  }
};

// A world of one has no peer to stop: it exits without MPI_Abort, whose banner would otherwise follow
// (and bury) the error line.
[[noreturn]] void die(const std::string& line, int code = 1) {
  std::fprintf(stderr, "loom: error: rank %d: %s\n", g_runtime.world_rank, line.c_str());
  std::fflush(stderr);
  std::fflush(stdout);
  if (mpi_live() && g_runtime.world_size > 1) MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);
}

std::string where(const CommState& c, const OpInfo& info) {
  return info.describe() + " on group '" + c.name + "' (size " + std::to_string(c.size) + ")";
}

std::string mpi_error_string(int code) {
  char buf[MPI_MAX_ERROR_STRING + 1] = {};
  int len = 0;
  if (MPI_Error_string(code, buf, &len) != MPI_SUCCESS) return "MPI error " + std::to_string(code);
  return std::string(buf, size_t(len));
}

[[noreturn]] void die_mpi(const CommState& c, const OpInfo& info, int code) {
  die(where(c, info) + " failed: " + mpi_error_string(code));
}

void check(int rc, const CommState& c, const OpInfo& info) {
  if (rc != MPI_SUCCESS) die_mpi(c, info, rc);
}

int checked_count(size_t count, const CommState& c, const OpInfo& info) {
  if (count > size_t(INT_MAX)) die(where(c, info) + ": count exceeds MPI's limit of " + std::to_string(INT_MAX) + " elements");
  return int(count);
}

// Who is still there. A waiting rank answers pings on the fault communicator (answer_pings, polled while
// it sleeps between tests), so when a wait times out the rank reporting it can name the peers that stopped
// answering: stopped (SIGSTOP), spinning outside MPI, or gone, rather than blaming itself.
constexpr int kPingTag = 32001, kPongTag = 32002;
constexpr double kPingSeconds = 2.0;

void answer_pings() {
  if (g_runtime.fault == MPI_COMM_NULL) return;
  LsanOff off;
  for (;;) {
    int flag = 0;
    MPI_Status st;
    if (MPI_Iprobe(MPI_ANY_SOURCE, kPingTag, g_runtime.fault, &flag, &st) != MPI_SUCCESS || !flag) return;
    int32_t from = 0;
    MPI_Recv(&from, 1, MPI_INT32_T, st.MPI_SOURCE, kPingTag, g_runtime.fault, MPI_STATUS_IGNORE);
    MPI_Request req;
    if (MPI_Isend(&g_runtime.world_rank, 1, MPI_INT32_T, st.MPI_SOURCE, kPongTag, g_runtime.fault, &req) == MPI_SUCCESS)
      MPI_Request_free(&req);
  }
}

// The world ranks of `c`'s other members that do not answer a ping within kPingSeconds ("" if all do).
std::string silent_peers(const CommState& c) {
  if (g_runtime.fault == MPI_COMM_NULL || c.size < 2) return "";
  LsanOff off;
  MPI_Group group, world;
  MPI_Comm_group(c.comm, &group);
  MPI_Comm_group(MPI_COMM_WORLD, &world);
  std::vector<int> local(size_t(c.size)), global(size_t(c.size));
  for (int i = 0; i < c.size; i++) local[size_t(i)] = i;
  MPI_Group_translate_ranks(group, c.size, local.data(), world, global.data());
  MPI_Group_free(&group);
  MPI_Group_free(&world);
  std::vector<int> peers;
  for (int r : global)
    if (r != g_runtime.world_rank && r != MPI_UNDEFINED) peers.push_back(r);
  std::vector<MPI_Request> reqs(peers.size() * 2, MPI_REQUEST_NULL);
  std::vector<int32_t> pongs(peers.size());
  for (size_t i = 0; i < peers.size(); i++) {
    MPI_Isend(&g_runtime.world_rank, 1, MPI_INT32_T, peers[i], kPingTag, g_runtime.fault, &reqs[2 * i]);
    MPI_Irecv(&pongs[i], 1, MPI_INT32_T, peers[i], kPongTag, g_runtime.fault, &reqs[2 * i + 1]);
  }
  std::vector<bool> answered(peers.size(), false);
  const auto t0 = std::chrono::steady_clock::now();
  size_t left = peers.size();
  while (left > 0 && std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() < kPingSeconds) {
    answer_pings();  // peers that time out at the same moment ping us too
    for (size_t i = 0; i < peers.size(); i++) {
      int flag = 0;
      if (answered[i] || MPI_Test(&reqs[2 * i + 1], &flag, MPI_STATUS_IGNORE) != MPI_SUCCESS || !flag) continue;
      answered[i] = true;
      left--;
    }
    timespec ts{0, 1000000L};
    nanosleep(&ts, nullptr);
  }
  std::string out;
  int n = 0;
  for (size_t i = 0; i < peers.size(); i++)
    if (!answered[i]) {
      out += (out.empty() ? "" : ", ") + std::to_string(peers[i]);
      n++;
    }
  return out.empty() ? "" : (n == 1 ? "rank " : "ranks ") + out;
}

// Poll until all requests complete or the deadline passes. Spins on MPI_Test briefly (small messages
// finish in microseconds), then yields the core for a window that grows with the message size (MPI only
// makes progress inside MPI calls, so a large transfer needs frequent polls), then sleeps with an
// exponential back-off capped at 1 ms (an idle wait then costs about 2% of a core).
void wait_requests(MPI_Request* reqs, int n, const CommState& c, const OpInfo& info, MPI_Status* statuses,
                   size_t bytes) {
  constexpr int kSpinPolls = 256;
  constexpr double kMinYieldSeconds = 2e-3;
  constexpr double kYieldBytesPerSecond = 0.5e9;
  const double limit = timeout();
  const double yield_window = std::max(kMinYieldSeconds, double(bytes) / kYieldBytesPerSecond);
  const auto t0 = std::chrono::steady_clock::now();
  long sleep_ns = 2000;
  for (int polls = 0;; ++polls) {
    int flag = 0;
    int rc;
    {
      LsanOff off;
      rc = MPI_Testall(n, reqs, &flag, statuses);
    }
    if (rc == MPI_ERR_IN_STATUS) {
      for (int i = 0; i < n; ++i)
        if (statuses[i].MPI_ERROR != MPI_SUCCESS && statuses[i].MPI_ERROR != MPI_ERR_PENDING)
          die_mpi(c, info, statuses[i].MPI_ERROR);
    }
    check(rc, c, info);
    if (flag) return;
    if (polls < kSpinPolls) continue;
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (elapsed > limit) {
      const std::string silent = silent_peers(c);
      die(where(c, info) + " timed out after " + format_seconds(limit) + " s waiting for peers; " +
          (silent.empty() ? std::string("a peer process may have died")
                          : silent + " stopped answering (stopped, stuck outside MPI, or dead)"));
    }
    if (polls % 64 == 0) answer_pings();
    if (elapsed < yield_window) {
      sched_yield();
      continue;
    }
    timespec ts{0, sleep_ns};
    nanosleep(&ts, nullptr);
    sleep_ns = std::min(sleep_ns * 2, 1000000L);
  }
}

void finalize_at_exit() {
  if (!g_runtime.initialized_here || !mpi_live()) return;
  LsanOff off;
  // A rank that finishes while a peer is stuck would otherwise hang in MPI_Finalize.
  CommState world_view;
  world_view.comm = MPI_COMM_WORLD;
  world_view.name = "world";
  MPI_Comm_size(MPI_COMM_WORLD, &world_view.size);
  world_view.rank = g_runtime.world_rank;
  OpInfo info;
  info.kind = OpKind::Finalize;
  MPI_Request req;
  check(MPI_Ibarrier(MPI_COMM_WORLD, &req), world_view, info);  // within `off` above
  MPI_Status st;
  wait_requests(&req, 1, world_view, info, &st, 0);
  for (auto& row : g_runtime.half_ops)
    for (MPI_Op& op : row)
      if (op != MPI_OP_NULL) MPI_Op_free(&op);
  if (g_runtime.fault != MPI_COMM_NULL) MPI_Comm_free(&g_runtime.fault);
  if (g_runtime.nbc_algorithm_settable) MPI_T_cvar_handle_free(&g_runtime.nbc_algorithm);
  if (g_runtime.tools_initialized) MPI_T_finalize();
  MPI_Finalize();
}

}  // namespace

[[noreturn]] void abort_job(const std::string& message) { die(message); }

void exit_after_error(const std::string& message, int code) {
  if (!mpi_live() || g_runtime.world_size == 1) {
    // MPI not started (an error while parsing flags): under mpirun every rank reached the same verdict
    // and rank 0 speaks for the job.
    const char* rank = std::getenv("OMPI_COMM_WORLD_RANK");
    if (mpi_live() || !rank || std::strcmp(rank, "0") == 0) std::fprintf(stderr, "loom: error: %s\n", message.c_str());
    return;
  }
  // Every failing rank enters this barrier. It completes only if all ranks failed: then the error is
  // the job's (a bad flag or file, the same verdict everywhere) and rank 0 prints it once. Otherwise
  // the peers are computing or waiting for this rank, and would wait until LOOM_COMM_TIMEOUT: this rank
  // prints its own line and aborts the job.
  const double grace = std::min(kErrorGraceSeconds, timeout());
  bool all_failed = false;
  {
    LsanOff off;
    MPI_Request req;
    if (MPI_Ibarrier(g_runtime.fault, &req) == MPI_SUCCESS) {
      const auto t0 = std::chrono::steady_clock::now();
      for (;;) {
        int flag = 0;
        if (MPI_Test(&req, &flag, MPI_STATUS_IGNORE) != MPI_SUCCESS) break;
        if (flag) {
          all_failed = true;
          break;
        }
        if (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() > grace) break;
        timespec ts{0, 1000000L};
        nanosleep(&ts, nullptr);
      }
    }
  }
  if (all_failed) {
    if (g_runtime.world_rank == 0) std::fprintf(stderr, "loom: error: %s\n", message.c_str());
    return;
  }
  die(message, code);
}

// ---------------------------------------------------------------------------------------------------
// Request.

struct Request::Impl {
  MPI_Request req = MPI_REQUEST_NULL;
  std::shared_ptr<CommState> comm;
  OpInfo info;
  bool done = false;

  void finish(const MPI_Status& st) {
    done = true;
    if (info.kind == OpKind::Recv) {
      int got = 0;
      MPI_Get_count(&st, mpi_type(info.dtype), &got);
      if (size_t(got) != info.count)
        die(where(*comm, info) + " received " + std::to_string(got) + " elements, expected " +
            std::to_string(info.count));
    }
  }
};

Request::Request() = default;
Request::Request(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Request::~Request() {
  if (active()) wait();
}
Request::Request(Request&&) noexcept = default;
Request& Request::operator=(Request&& other) noexcept {
  if (this != &other) {
    if (active()) wait();
    impl_ = std::move(other.impl_);
  }
  return *this;
}

bool Request::active() const { return impl_ && !impl_->done; }

void Request::wait() {
  if (!active()) return;
  MPI_Status st;
  wait_requests(&impl_->req, 1, *impl_->comm, impl_->info, &st, impl_->info.bytes());
  impl_->finish(st);
}

bool Request::test() {
  if (!active()) return true;
  int flag = 0;
  MPI_Status st;
  int rc;
  {
    LsanOff off;
    rc = MPI_Test(&impl_->req, &flag, &st);
  }
  check(rc, *impl_->comm, impl_->info);
  if (flag) impl_->finish(st);
  return flag != 0;
}

void Request::wait_all(std::span<Request> requests) {
  std::vector<MPI_Request> reqs;
  std::vector<Impl*> impls;
  for (Request& r : requests)
    if (r.active()) {
      reqs.push_back(r.impl_->req);
      impls.push_back(r.impl_.get());
    }
  if (reqs.empty()) return;
  // Errors and timeouts name the first pending operation.
  size_t bytes = 0;
  for (Impl* i : impls) bytes += i->info.bytes();
  std::vector<MPI_Status> st(reqs.size());
  wait_requests(reqs.data(), int(reqs.size()), *impls.front()->comm, impls.front()->info, st.data(), bytes);
  for (size_t i = 0; i < impls.size(); ++i) {
    impls[i]->req = MPI_REQUEST_NULL;
    impls[i]->finish(st[i]);
  }
}

// ---------------------------------------------------------------------------------------------------
// Communicator.

Communicator::Communicator(std::shared_ptr<CommState> state) : state_(std::move(state)) {}
Communicator::~Communicator() = default;

std::shared_ptr<Communicator> Communicator::world() {
  static std::shared_ptr<Communicator> w = [] {
    int init = 0;
    MPI_Initialized(&init);
    if (!init) {
      // Started without a launcher, Open MPI forks a helper daemon for the singleton (needed only for
      // MPI_Comm_spawn); isolated mode skips it and starts faster. A user's setting wins.
      if (!std::getenv("OMPI_COMM_WORLD_SIZE") && !std::getenv("PMIX_RANK") && !std::getenv("PMI_RANK"))
        setenv("OMPI_MCA_ess_singleton_isolated", "1", 0);
      int provided = 0;
      int rc;
      {
        LsanOff off;
        rc = MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
      }
      if (rc != MPI_SUCCESS) {
        std::fprintf(stderr, "loom: error: MPI_Init_thread failed\n");
        std::exit(1);
      }
      g_runtime.initialized_here = true;
      if (provided < MPI_THREAD_FUNNELED) {
        std::fprintf(stderr, "loom: error: MPI provides thread level %d, need MPI_THREAD_FUNNELED\n", provided);
        MPI_Abort(MPI_COMM_WORLD, 1);
      }
    }
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_runtime.world_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_runtime.world_size);
    if (g_runtime.world_size > 1) {
      LsanOff off;
      MPI_Comm_dup(MPI_COMM_WORLD, &g_runtime.fault);
      MPI_Comm_set_errhandler(g_runtime.fault, MPI_ERRORS_RETURN);
    }
    MPI_Op_create(&reduce16<bf16_to_f32, f32_to_bf16, 0>, 1, &g_runtime.half_ops[0][0]);
    MPI_Op_create(&reduce16<bf16_to_f32, f32_to_bf16, 1>, 1, &g_runtime.half_ops[0][1]);
    MPI_Op_create(&reduce16<bf16_to_f32, f32_to_bf16, 2>, 1, &g_runtime.half_ops[0][2]);
    MPI_Op_create(&reduce16<f16_to_f32, f32_to_f16, 0>, 1, &g_runtime.half_ops[1][0]);
    MPI_Op_create(&reduce16<f16_to_f32, f32_to_f16, 1>, 1, &g_runtime.half_ops[1][1]);
    MPI_Op_create(&reduce16<f16_to_f32, f32_to_f16, 2>, 1, &g_runtime.half_ops[1][2]);
    {
      LsanOff off;
      setup_nbc_algorithm();
    }
    timeout();  // a malformed LOOM_COMM_TIMEOUT fails here, at start-up, on every rank
    std::atexit(finalize_at_exit);
    auto s = std::make_shared<CommState>();
    s->comm = MPI_COMM_WORLD;
    s->name = "world";
    s->rank = g_runtime.world_rank;
    MPI_Comm_size(MPI_COMM_WORLD, &s->size);
    return std::shared_ptr<Communicator>(new Communicator(std::move(s)));
  }();
  return w;
}

int Communicator::rank() const { return state_->rank; }
int Communicator::size() const { return state_->size; }
int Communicator::world_rank() const { return g_runtime.world_rank; }
const std::string& Communicator::name() const { return state_->name; }

std::shared_ptr<Communicator> Communicator::split(int color, int key, std::string name) const {
  OpInfo info;
  info.kind = OpKind::Split;
  // MPI_Comm_split has no non-blocking form: meet in a bounded barrier first, so a missing peer shows up
  // as a timeout here rather than a hang inside the split.
  MPI_Request req;
  MPI_Status st;
  int rc;
  {
    LsanOff off;
    rc = MPI_Ibarrier(state_->comm, &req);
  }
  check(rc, *state_, info);
  wait_requests(&req, 1, *state_, info, &st, 0);
  MPI_Comm out = MPI_COMM_NULL;
  {
    LsanOff off;
    rc = MPI_Comm_split(state_->comm, color < 0 ? MPI_UNDEFINED : color, key, &out);
  }
  check(rc, *state_, info);
  if (out == MPI_COMM_NULL) return nullptr;
  auto s = std::make_shared<CommState>();
  s->comm = out;
  s->owned = true;
  s->name = std::move(name);
  MPI_Comm_set_errhandler(out, MPI_ERRORS_RETURN);
  MPI_Comm_rank(out, &s->rank);
  MPI_Comm_size(out, &s->size);
  return std::shared_ptr<Communicator>(new Communicator(std::move(s)));
}

// Starts `call` (which sets req_) and wraps the request.
#define LOOM_START(info, call)                                                                   \
  do {                                                                                           \
    MPI_Request req_ = MPI_REQUEST_NULL;                                                         \
    int rc_;                                                                                     \
    {                                                                                            \
      LsanOff off_;                                                                              \
      rc_ = (call);                                                                              \
    }                                                                                            \
    check(rc_, *state_, info);                                                                   \
    return Request(std::unique_ptr<Request::Impl>(new Request::Impl{req_, state_, info, false})); \
  } while (0)

Request Communicator::iall_reduce(void* data, size_t count, DType dtype, ReduceOp op) {
  OpInfo info{OpKind::AllReduce, count, dtype, op};
  int n = checked_count(count, *state_, info);
  select_nbc_allreduce(count, info.bytes(), state_->size);
  LOOM_START(info, MPI_Iallreduce(MPI_IN_PLACE, data, n, mpi_type(dtype), mpi_op(dtype, op), state_->comm, &req_));
}

Request Communicator::ireduce_scatter(const void* in, void* out, size_t count_per_rank, DType dtype, ReduceOp op) {
  OpInfo info{OpKind::ReduceScatter, count_per_rank, dtype, op};
  int n = checked_count(count_per_rank * size_t(state_->size), *state_, info) / state_->size;
  const void* send = in == out ? MPI_IN_PLACE : in;
  LOOM_START(info, MPI_Ireduce_scatter_block(send, out, n, mpi_type(dtype), mpi_op(dtype, op), state_->comm, &req_));
}

Request Communicator::iall_gather(const void* in, void* out, size_t count_per_rank, DType dtype) {
  OpInfo info{OpKind::AllGather, count_per_rank, dtype};
  int n = checked_count(count_per_rank * size_t(state_->size), *state_, info) / state_->size;
  const char* mine = static_cast<const char*>(out) + size_t(state_->rank) * count_per_rank * dtype_size(dtype);
  const void* send = in == mine ? MPI_IN_PLACE : in;
  LOOM_START(info, MPI_Iallgather(send, n, mpi_type(dtype), out, n, mpi_type(dtype), state_->comm, &req_));
}

Request Communicator::ibroadcast(void* data, size_t count, DType dtype, int root) {
  OpInfo info{OpKind::Broadcast, count, dtype, ReduceOp::Sum, root};
  int n = checked_count(count, *state_, info);
  LOOM_START(info, MPI_Ibcast(data, n, mpi_type(dtype), root, state_->comm, &req_));
}

Request Communicator::ibarrier() {
  OpInfo info{OpKind::Barrier};
  LOOM_START(info, MPI_Ibarrier(state_->comm, &req_));
}

Request Communicator::isend(const void* data, size_t count, DType dtype, int dst, int tag) {
  OpInfo info{OpKind::Send, count, dtype, ReduceOp::Sum, dst, tag};
  int n = checked_count(count, *state_, info);
  LOOM_START(info, MPI_Isend(data, n, mpi_type(dtype), dst, tag, state_->comm, &req_));
}

Request Communicator::irecv(void* data, size_t count, DType dtype, int src, int tag) {
  OpInfo info{OpKind::Recv, count, dtype, ReduceOp::Sum, src, tag};
  int n = checked_count(count, *state_, info);
  LOOM_START(info, MPI_Irecv(data, n, mpi_type(dtype), src, tag, state_->comm, &req_));
}

#undef LOOM_START

void Communicator::all_reduce(void* data, size_t count, DType dtype, ReduceOp op) {
  iall_reduce(data, count, dtype, op).wait();
}
void Communicator::reduce_scatter(const void* in, void* out, size_t count_per_rank, DType dtype, ReduceOp op) {
  ireduce_scatter(in, out, count_per_rank, dtype, op).wait();
}
void Communicator::all_gather(const void* in, void* out, size_t count_per_rank, DType dtype) {
  iall_gather(in, out, count_per_rank, dtype).wait();
}
void Communicator::broadcast(void* data, size_t count, DType dtype, int root) {
  ibroadcast(data, count, dtype, root).wait();
}
void Communicator::barrier() { ibarrier().wait(); }
void Communicator::send(const void* data, size_t count, DType dtype, int dst, int tag) {
  isend(data, count, dtype, dst, tag).wait();
}
void Communicator::recv(void* data, size_t count, DType dtype, int src, int tag) {
  irecv(data, count, dtype, src, tag).wait();
}

void Communicator::broadcast(std::string& s, int root) {
  int64_t len = int64_t(s.size());
  broadcast(&len, 1, root);
  s.resize(size_t(len));
  if (len > 0) broadcast(s.data(), size_t(len), DType::U8, root);
}

void reduce_local(const void* in, void* inout, size_t count, DType dtype, ReduceOp op) {
  auto w = Communicator::world();
  if (count == 0) return;
  if (count > size_t(INT_MAX)) die("reduce_local: count exceeds MPI's limit of " + std::to_string(INT_MAX) + " elements");
  int rc;
  {
    LsanOff off;
    rc = MPI_Reduce_local(in, inout, int(count), mpi_type(dtype), mpi_op(dtype, op));
  }
  if (rc != MPI_SUCCESS) die("reduce_local (" + std::to_string(count) + " x " + dtype_name(dtype) + ") failed: " + mpi_error_string(rc));
}

// ---------------------------------------------------------------------------------------------------
// Start-up consistency.

namespace {

std::string excerpt(const std::string& s, size_t at) {
  size_t begin = at > 20 ? at - 20 : 0;
  std::string out = begin > 0 ? "..." : "";
  for (size_t i = begin; i < s.size() && i < begin + 60; ++i) {
    char c = s[i];
    if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (static_cast<unsigned char>(c) < 0x20) out += '?';
    else out += c;
  }
  if (begin + 60 < s.size()) out += "...";
  return out;
}

}  // namespace

void check_same_across_ranks(Communicator& comm, const std::string& what, const std::string& value) {
  std::string reference = value;
  comm.broadcast(reference, 0);
  int32_t first = reference == value ? comm.size() : comm.rank();
  comm.all_reduce(&first, 1, ReduceOp::Min);
  if (first == comm.size()) return;
  std::string theirs = value;
  comm.broadcast(theirs, first);
  size_t at = 0;
  while (at < reference.size() && at < theirs.size() && reference[at] == theirs[at]) ++at;
  std::string group = comm.name() == "world" ? "" : " of group '" + comm.name() + "'";
  fail(what + " differs across ranks: rank " + std::to_string(first) + group + " has '" + excerpt(theirs, at) +
       "' where rank 0 has '" + excerpt(reference, at) + "' (first difference at character " +
       std::to_string(at) + ")");
}

void check_same_across_ranks(const std::string& what, const std::string& value) {
  check_same_across_ranks(*Communicator::world(), what, value);
}

void fail_if_any_rank(Communicator& comm, const std::string& problem) {
  int32_t first = problem.empty() ? comm.size() : comm.rank();
  if (comm.size() > 1) comm.all_reduce(&first, 1, ReduceOp::Min);
  if (first == comm.size()) return;
  std::string message = problem;
  if (comm.size() > 1) comm.broadcast(message, first);
  fail(first == 0 ? message : "rank " + std::to_string(first) + ": " + message);
}

std::vector<std::string> gather_strings(Communicator& comm, const std::string& mine, int root) {
  constexpr int kLengthTag = 31001, kDataTag = 31002;
  if (comm.rank() != root) {
    int64_t n = int64_t(mine.size());
    comm.send(&n, 1, root, kLengthTag);
    comm.send(reinterpret_cast<const uint8_t*>(mine.data()), mine.size(), root, kDataTag);
    return {};
  }
  std::vector<std::string> all(size_t(comm.size()));
  for (int r = 0; r < comm.size(); r++) {
    if (r == root) {
      all[size_t(r)] = mine;
      continue;
    }
    int64_t n = 0;
    comm.recv(&n, 1, r, kLengthTag);
    all[size_t(r)].resize(size_t(n));
    comm.recv(reinterpret_cast<uint8_t*>(all[size_t(r)].data()), size_t(n), r, kDataTag);
  }
  return all;
}

}  // namespace loom::dist
