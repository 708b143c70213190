#include "loom/plan/collective_model.h"

namespace loom {

double all_reduce_bytes_sent(double bytes, int n) { return n <= 1 ? 0.0 : 2.0 * double(n - 1) / double(n) * bytes; }
double reduce_scatter_bytes_sent(double bytes, int n) { return n <= 1 ? 0.0 : double(n - 1) / double(n) * bytes; }
double all_gather_bytes_sent(double bytes, int n) { return reduce_scatter_bytes_sent(bytes, n); }

double all_reduce_time(double bytes, int n, const Link& l) {
  return n <= 1 ? 0.0 : 2.0 * double(n - 1) * l.latency + all_reduce_bytes_sent(bytes, n) / l.bandwidth;
}
double reduce_scatter_time(double bytes, int n, const Link& l) {
  return n <= 1 ? 0.0 : double(n - 1) * l.latency + reduce_scatter_bytes_sent(bytes, n) / (l.bandwidth * l.reduce_scatter_factor);
}
double all_gather_time(double bytes, int n, const Link& l) {
  return n <= 1 ? 0.0 : double(n - 1) * l.latency + all_gather_bytes_sent(bytes, n) / (l.bandwidth * l.all_gather_factor);
}
double send_recv_time(double bytes, const Link& l) { return l.latency + bytes / l.bandwidth; }

}  // namespace loom
