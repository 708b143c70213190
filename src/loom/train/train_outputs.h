#pragma once
// Every path `loom train` will write (--save, --pipeline-trace, --profile-layers-output, --offload-path),
// checked before the data and the model are built, on each rank that will write it: the right kind
// (a directory or a file), an existing parent, writable. A problem on any rank is one `loom: error:` line
// for the whole job (exit 2), instead of a failure after the last iteration.
namespace loom {

struct TrainArgs;
namespace parallel {
class ProcessGrid;
}

// Collective over the world.
void check_train_outputs(const TrainArgs& a, const parallel::ProcessGrid& grid);

}  // namespace loom
