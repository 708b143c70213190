#pragma once
// When `loom train` stops before --train-iters: a termination signal (--exit-signal-handler: SIGTERM,
// SIGINT, SIGHUP, SIGUSR1), --exit-duration-in-mins since the command started, or --exit-interval. Signals and
// time are agreed over all ranks, so every rank stops after the same iteration.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

namespace loom {

struct TrainArgs;
namespace dist {
class Communicator;
}

class ExitConditions {
 public:
  using Clock = std::chrono::steady_clock;
  // Installs the signal handlers when --exit-signal-handler asks for them.
  ExitConditions(const TrainArgs& a, std::shared_ptr<dist::Communicator> world, Clock::time_point started);
  // The same conditions from their values (runs whose flags are not Megatron's: CoCa's).
  ExitConditions(bool signal_handler, double duration_in_mins, int64_t interval,
                 std::shared_ptr<dist::Communicator> world, Clock::time_point started);
  // Why to stop after `iteration`, or "" to go on. Collective over the world (one all-reduce) when it has
  // several ranks.
  std::string reason(int64_t iteration) const;

 private:
  std::shared_ptr<dist::Communicator> world_;
  Clock::time_point started_;
  double duration_in_mins_;
  int64_t interval_;
};

}  // namespace loom
