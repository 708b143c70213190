#pragma once
// This rank's part of the model: the whole GPT, one pipeline stage, or its virtual stages (chunks), with
// the parameters stored as mixed precision and ZeRO ask.
#include <memory>
#include <vector>

#include "loom/layers/param_store.h"
#include "loom/models/decoder_model.h"
#include "loom/train/pipeline_runner.h"

namespace loom {

struct RankPrinter;
struct TrainArgs;
namespace parallel {
class ProcessGrid;
}

// The dtype the weights are stored in: --fp16, --bf16 or fp32.
DType param_dtype(const TrainArgs& a);

// Megatron's layout of the blocks over pipeline stages and virtual chunks (--pipeline-split even):
// the chunks of pipeline rank `pp_rank`.
std::vector<StageSpec> megatron_stage_specs(const TrainArgs& a, const ModelConfig& cfg, int pp_rank);

// The chunks of this rank: Megatron's layout, or with --pipeline-split cost one contiguous run of blocks
// per stage balanced by measured (--pipeline-split-costs) or modelled costs, the split printed.
std::vector<StageSpec> rank_stage_specs(const TrainArgs& a, const ModelConfig& cfg, const PipelineLayout& pl,
                                        const RankPrinter& out);

// How the parameters are held (see ParamStorage): half-precision weights, the gradient dtype, ZeRO's
// sharding over the data-parallel group.
ParamStorage param_storage(const TrainArgs& a, const parallel::ProcessGrid& grid);

// One model per chunk, each with activations for the micro-batches its pipeline schedule keeps in flight.
std::vector<std::unique_ptr<DecoderModel>> build_model_chunks(const TrainArgs& a, const ModelConfig& cfg,
                                                          const std::vector<StageSpec>& specs,
                                                          const PipelineLayout& pl, const TensorParallel& tp,
                                                          const ParamStorage& storage);

}  // namespace loom
