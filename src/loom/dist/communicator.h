#pragma once
// Communicators over MPI: collectives, point-to-point and their non-blocking forms, with a deadline on
// every wait so that a dead or stuck peer never hangs the job.
//
// <mpi.h> stays out of this header (the MPI handles live in the .cpp), so most of the code base does not
// include it.
//
// Fault handling. Every blocking operation is its non-blocking form plus a wait that polls MPI_Test
// against a deadline (spinning briefly, then yielding, then sleeping with a growing back-off so an idle
// wait does not burn a core). When the deadline passes the rank prints one line
//   loom: error: rank R: <op> on group '<name>' (size N) timed out after T s waiting for peers; a peer
//   process may have died
// and calls MPI_Abort(MPI_COMM_WORLD, 1). MPI errors are returned (MPI_ERRORS_RETURN on every
// communicator) and reported the same way, as one line naming the rank and operation, then MPI_Abort.
// The timeout defaults to 300 s; set_timeout() changes it; LOOM_COMM_TIMEOUT (seconds) overrides both.
//
// Threading: MPI is initialised with MPI_THREAD_FUNNELED; call communicators from the main thread only.
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace loom::dist {

// Element types. BF16 and F16 are 16-bit payloads (uint16_t); they reduce by converting to fp32, reducing,
// and rounding back to nearest even at each step.
enum class DType { F32, F64, BF16, F16, I32, I64, U8 };
enum class ReduceOp { Sum, Max, Min };

size_t dtype_size(DType t);
const char* dtype_name(DType t);  // "f32", "bf16", ...
const char* reduce_op_name(ReduceOp op);

template <class T> struct dtype_of;
template <> struct dtype_of<float> { static constexpr DType value = DType::F32; };
template <> struct dtype_of<double> { static constexpr DType value = DType::F64; };
template <> struct dtype_of<int32_t> { static constexpr DType value = DType::I32; };
template <> struct dtype_of<int64_t> { static constexpr DType value = DType::I64; };
template <> struct dtype_of<uint8_t> { static constexpr DType value = DType::U8; };
// Element types with a fixed DType (bf16/fp16 payloads are uint16_t and must name their DType).
template <class T>
concept Element = requires { dtype_of<T>::value; };

// The wait deadline, in seconds, for every blocking operation and Request::wait().
void set_timeout(double seconds);
double timeout();  // LOOM_COMM_TIMEOUT if set, else the last set_timeout(), else 300

struct CommState;  // the MPI handle and the group's name, shared by a communicator and its requests

// A non-blocking operation in flight. Move-only. wait() blocks with the deadline above; test() polls once.
// A request still active when destroyed is waited for (its buffers may be in use until then).
class Request {
 public:
  Request();
  ~Request();
  Request(Request&&) noexcept;
  Request& operator=(Request&&) noexcept;
  Request(const Request&) = delete;
  Request& operator=(const Request&) = delete;

  void wait();
  bool test();  // true once complete (then wait() returns at once)
  bool active() const;

  // Waits for all (one deadline for the lot); the usual way to finish a send/recv pair.
  static void wait_all(std::span<Request> requests);

  struct Impl;

 private:
  friend class Communicator;
  explicit Request(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

class Communicator {
 public:
  // MPI_COMM_WORLD, named "world". Initialises MPI on first call (MPI_Init_thread, FUNNELED) unless it
  // already is, and finalises it at exit (after a barrier bounded by the timeout, so a rank that finishes
  // while a peer is stuck still ends). Without mpirun this is a singleton world of size 1.
  static std::shared_ptr<Communicator> world();

  // Colour used by ranks that are in no group of a split; split() then returns nullptr on those ranks.
  static constexpr int kNoGroup = -1;

  ~Communicator();
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  int rank() const;
  int size() const;
  int world_rank() const;            // this process's rank in MPI_COMM_WORLD
  const std::string& name() const;   // "world", "tensor-model-parallel", ...

  // MPI_Comm_split: ranks with equal colour form a group, ordered by key (ties by rank). Collective over
  // this communicator. colour kNoGroup: not in any group, returns nullptr.
  std::shared_ptr<Communicator> split(int color, int key, std::string name) const;

  // Blocking collectives. Counts are elements. Buffers may be the same pointer where MPI allows in place:
  //   all_reduce         in place.
  //   reduce_scatter     `in` has size()*count_per_rank elements, `out` count_per_rank; in == out means
  //                      in place: the input is `out`'s size()*count_per_rank elements and the result
  //                      lands in its first count_per_rank.
  //   all_gather         `out` has size()*count_per_rank; in == out + rank()*count_per_rank is in place.
  void all_reduce(void* data, size_t count, DType dtype, ReduceOp op = ReduceOp::Sum);
  void reduce_scatter(const void* in, void* out, size_t count_per_rank, DType dtype, ReduceOp op = ReduceOp::Sum);
  void all_gather(const void* in, void* out, size_t count_per_rank, DType dtype);
  void broadcast(void* data, size_t count, DType dtype, int root);
  void barrier();
  void send(const void* data, size_t count, DType dtype, int dst, int tag);
  void recv(void* data, size_t count, DType dtype, int src, int tag);  // exactly `count` elements

  // Non-blocking forms: the buffers must stay alive and untouched until the request completes.
  Request iall_reduce(void* data, size_t count, DType dtype, ReduceOp op = ReduceOp::Sum);
  Request ireduce_scatter(const void* in, void* out, size_t count_per_rank, DType dtype,
                          ReduceOp op = ReduceOp::Sum);
  Request iall_gather(const void* in, void* out, size_t count_per_rank, DType dtype);
  Request ibroadcast(void* data, size_t count, DType dtype, int root);
  Request ibarrier();
  Request isend(const void* data, size_t count, DType dtype, int dst, int tag);
  Request irecv(void* data, size_t count, DType dtype, int src, int tag);

  // Typed conveniences (float, double, int32_t, int64_t, uint8_t).
  template <Element T> void all_reduce(T* data, size_t n, ReduceOp op = ReduceOp::Sum) {
    all_reduce(data, n, dtype_of<T>::value, op);
  }
  template <Element T> void reduce_scatter(const T* in, T* out, size_t n_per_rank, ReduceOp op = ReduceOp::Sum) {
    reduce_scatter(in, out, n_per_rank, dtype_of<T>::value, op);
  }
  template <Element T> void all_gather(const T* in, T* out, size_t n_per_rank) {
    all_gather(in, out, n_per_rank, dtype_of<T>::value);
  }
  template <Element T> void broadcast(T* data, size_t n, int root) { broadcast(data, n, dtype_of<T>::value, root); }
  template <Element T> void send(const T* data, size_t n, int dst, int tag) { send(data, n, dtype_of<T>::value, dst, tag); }
  template <Element T> void recv(T* data, size_t n, int src, int tag) { recv(data, n, dtype_of<T>::value, src, tag); }
  template <Element T> Request iall_reduce(T* data, size_t n, ReduceOp op = ReduceOp::Sum) {
    return iall_reduce(data, n, dtype_of<T>::value, op);
  }

  // Broadcast a string from root (lengths need not be known on the other ranks).
  void broadcast(std::string& s, int root);

 private:
  explicit Communicator(std::shared_ptr<CommState> state);
  std::shared_ptr<CommState> state_;
};

// All ranks of `comm` (default: world) must hold the same `value` (e.g. the canonical flag list).
// Collective. On a mismatch every rank throws loom::UserError with one line naming `what`, the first rank
// whose value differs from rank 0's, and where they first differ.
void check_same_across_ranks(const std::string& what, const std::string& value);
void check_same_across_ranks(Communicator& comm, const std::string& what, const std::string& value);

// Collective: when `problem` is non-empty on any rank, every rank throws loom::UserError with the problem
// of the lowest such rank (prefixed "rank R: " when that is not rank 0 and the world has several), so a
// check that only some ranks can fail (a file only they write) still ends every rank with one line.
void fail_if_any_rank(Communicator& comm, const std::string& problem);

// Collective: every rank's string, in rank order, on `root` (empty vector elsewhere).
std::vector<std::string> gather_strings(Communicator& comm, const std::string& mine, int root = 0);

// inout[i] = inout[i] <op> in[i], combining two contributions exactly as the collectives do (for bf16/fp16:
// via fp32, rounded to nearest even). Local; initialises MPI like world().
void reduce_local(const void* in, void* inout, size_t count, DType dtype, ReduceOp op = ReduceOp::Sum);

// Prints `loom: error: rank R: <message>` to stderr and aborts the whole job (MPI_Abort, exit code 1).
// For failures that leave the ranks out of step, where a thrown error would leave peers waiting.
[[noreturn]] void abort_job(const std::string& message);

// How long exit_after_error waits for the other ranks to fail too.
constexpr double kErrorGraceSeconds = 5.0;

// The end of a command that failed with `message` (the `loom: error:` line is printed here; the caller
// then exits with `code`). Without MPI, or in a world of one, prints the line (under mpirun, before MPI
// starts, only rank 0 does: every rank parsed the same flags). Under mpirun, when every rank fails
// within kErrorGraceSeconds (or the timeout, if shorter) the error is the job's: rank 0 prints it once
// and all return. When some rank does not fail, this rank's error is its own and its peers would wait
// for it: it prints `loom: error: rank R: <message>` and aborts the job (MPI_Abort with `code`).
void exit_after_error(const std::string& message, int code);

}  // namespace loom::dist
