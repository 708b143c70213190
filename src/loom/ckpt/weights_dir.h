#pragma once
// Megatron's checkpoint directory layout for model weights: DIR/iter_0000100/model.safetensors and
// DIR/latest_checkpointed_iteration.txt naming the newest, written last so a reader never sees a
// half-written iteration. (Full resumable checkpoints build on this layout.)
#include <cstdint>
#include <map>
#include <string>

#include "loom/layers/param_store.h"
#include "loom/parallel/tensor_parallel.h"

namespace loom {

std::string iteration_dir(const std::string& dir, int64_t iteration);  // DIR/iter_0000100
// Returns the path of the weights file written.
// Collective over `tp` (shards are gathered); tensor-parallel rank 0 writes.
std::string save_weights_dir(const std::string& dir, int64_t iteration, const ParamStore& params,
                             const std::map<std::string, std::string>& meta, const TensorParallel& tp = {});
// A .safetensors file as is, or the newest iteration of a checkpoint directory. UserError otherwise.
std::string resolve_weights(const std::string& path);

}  // namespace loom
