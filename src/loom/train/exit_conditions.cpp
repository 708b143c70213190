#include "loom/train/exit_conditions.h"

#include <csignal>

#include "loom/dist/communicator.h"
#include "loom/train/arguments.h"
#include "loom/util/cli.h"

namespace loom {

namespace {

// --exit-signal-handler: SIGTERM, SIGINT and SIGHUP ask for a checkpoint at the end of the iteration; so
// does SIGUSR1, which mpirun forwards to the ranks without killing them a second later as it does after
// SIGTERM (scripts/loom-mpirun turns a SIGTERM to the job into it).
volatile std::sig_atomic_t g_exit_signal = 0;
void on_exit_signal(int) { g_exit_signal = 1; }
void install_exit_signal_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_exit_signal;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGUSR1}) sigaction(sig, &sa, nullptr);
}

}  // namespace

ExitConditions::ExitConditions(const TrainArgs& a, std::shared_ptr<dist::Communicator> world, Clock::time_point started)
    : ExitConditions(a.exit_signal_handler, a.exit_duration_in_mins, a.exit_interval, std::move(world), started) {}

ExitConditions::ExitConditions(bool signal_handler, double duration_in_mins, int64_t interval,
                               std::shared_ptr<dist::Communicator> world, Clock::time_point started)
    : world_(std::move(world)), started_(started), duration_in_mins_(duration_in_mins), interval_(interval) {
  if (signal_handler) install_exit_signal_handlers();
}

std::string ExitConditions::reason(int64_t iteration) const {
  const double ms = std::chrono::duration<double, std::milli>(Clock::now() - started_).count();
  int64_t flags[2] = {g_exit_signal ? 1 : 0, duration_in_mins_ > 0 && ms > duration_in_mins_ * 60000.0 ? 1 : 0};
  if (world_->size() > 1) world_->all_reduce(flags, 2, dist::ReduceOp::Max);
  if (flags[0]) return "after receiving a termination signal";
  if (flags[1]) return "after " + python_float(duration_in_mins_) + " minutes (--exit-duration-in-mins)";
  if (interval_ > 0 && iteration % interval_ == 0)
    return "at iteration " + std::to_string(iteration) + " (--exit-interval)";
  return "";
}

}  // namespace loom
