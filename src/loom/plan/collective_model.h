#pragma once
// Cost of the collectives Loom (and NCCL/MPI) run, by the ring algorithm: what each rank sends, and the
// time alpha-beta gives it (steps x latency + bytes sent / link bandwidth). `bytes` is always the size
// of the whole tensor being reduced or gathered (not one rank's shard).
//   all-reduce       2 (n - 1) / n x bytes   in 2 (n - 1) steps (reduce-scatter, then all-gather)
//   reduce-scatter   (n - 1) / n x bytes     in n - 1 steps
//   all-gather       (n - 1) / n x bytes     in n - 1 steps
//   send/recv        bytes                   in 1 step
#include <cstdint>

namespace loom {

struct Link {
  double bandwidth = 0;  // bytes/s per rank and direction (the all-reduce's)
  double latency = 0;    // s per step
  // The bandwidth all-gathers and reduce-scatters reach, as a fraction of the all-reduce's (1 for the
  // ring; a calibrated machine measures them: MPI's non-blocking reduce-scatter reduces through one rank).
  double all_gather_factor = 1.0, reduce_scatter_factor = 1.0;
};

double all_reduce_bytes_sent(double bytes, int n);
double reduce_scatter_bytes_sent(double bytes, int n);
double all_gather_bytes_sent(double bytes, int n);

double all_reduce_time(double bytes, int n, const Link& link);
double reduce_scatter_time(double bytes, int n, const Link& link);
double all_gather_time(double bytes, int n, const Link& link);
double send_recv_time(double bytes, const Link& link);

}  // namespace loom
