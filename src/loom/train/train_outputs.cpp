#include "loom/train/train_outputs.h"

#include <string>

#include "loom/core/error.h"
#include "loom/dist/communicator.h"
#include "loom/parallel/process_grid.h"
#include "loom/train/arguments.h"
#include "loom/util/output_path.h"

namespace loom {

void check_train_outputs(const TrainArgs& a, const parallel::ProcessGrid& grid) {
  // Same verdict on every rank: a trace of one stage would hold nothing (the schedule runs only with a pipeline).
  require(a.pipeline_trace.empty() || grid.pp_size() > 1,
          "--pipeline-trace needs a pipeline (--pipeline-model-parallel-size 2 or more): without one there is "
          "no schedule to trace");
  std::string problem;
  auto check = [&](bool writes_here, const std::string& flag, const std::string& path, bool directory) {
    if (!problem.empty() || !writes_here || path.empty()) return;
    const std::string why = directory ? output_dir_problem(path) : output_file_problem(path);
    if (!why.empty()) problem = flag + " " + path + ": " + why;
  };
  const bool first_replica = grid.dp_rank() == 0 && grid.cp_rank() == 0;
  // Rank 0 makes the iteration directories; each model-parallel rank of the first replica writes its shard.
  check(grid.world()->rank() == 0 || first_replica, "--save", a.save, true);
  // Both files are gathered onto the first pipeline stage of the first replica and written there.
  const bool first_stage_writer = first_replica && grid.tp_rank() == 0 && grid.pp_rank() == 0;
  check(first_stage_writer, "--pipeline-trace", a.pipeline_trace, false);
  check(first_stage_writer, "--profile-layers-output", a.profile_layers_output, false);
  check(a.offload_optimizer == "nvme", "--offload-path", a.offload_path, true);
  dist::fail_if_any_rank(*grid.world(), problem);
}

}  // namespace loom
