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
  double bandwidth = 0;  // bytes/s per rank and direction
  double latency = 0;    // s per step
};

double all_reduce_bytes_sent(double bytes, int n);
double reduce_scatter_bytes_sent(double bytes, int n);
double all_gather_bytes_sent(double bytes, int n);

double all_reduce_time(double bytes, int n, const Link& link);
double reduce_scatter_time(double bytes, int n, const Link& link);
double all_gather_time(double bytes, int n, const Link& link);
double send_recv_time(double bytes, const Link& link);

}  // namespace loom
