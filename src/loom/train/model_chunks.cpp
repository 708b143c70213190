#include "loom/train/model_chunks.h"

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "loom/core/error.h"
#include "loom/models/family.h"
#include "loom/parallel/process_grid.h"
#include "loom/train/arguments.h"
#include "loom/train/run_logging.h"

namespace loom {

namespace {

// Costs per layer [embed, 0 .. L-1, lm_head] from a --profile-layers-output file.
std::vector<double> read_layer_costs(const std::string& path, int num_layers) {
  std::ifstream f(path);
  if (!f) fail("cannot open " + path + " (--pipeline-split-costs)");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(f);
  } catch (const nlohmann::json::exception& e) {
    fail(path + ": malformed JSON: " + e.what());
  }
  std::vector<double> costs;
  auto get = [&](const std::string& key) {
    if (!j.contains(key) || !j[key].is_number()) fail(path + ": no cost for layer '" + key + "' (a profile of another model?)");
    costs.push_back(j[key].get<double>());
  };
  get("embed");
  for (int i = 0; i < num_layers; i++) get(std::to_string(i));
  get("lm_head");
  return costs;
}

}  // namespace

DType param_dtype(const TrainArgs& a) { return a.fp16 ? DType::F16 : a.bf16 ? DType::BF16 : DType::F32; }

std::vector<StageSpec> megatron_stage_specs(const TrainArgs& a, const ModelConfig& cfg, int pp_rank) {
  return decoder_pipeline_chunks(cfg.num_layers, a.pipeline_model_parallel_size, a.virtual_pipeline_size(), pp_rank,
                             a.decoder_first_pipeline_num_layers, a.decoder_last_pipeline_num_layers);
}

std::vector<StageSpec> rank_stage_specs(const TrainArgs& a, const ModelConfig& cfg, const PipelineLayout& pl,
                                        const RankPrinter& out) {
  if (a.pipeline_split == "even") return megatron_stage_specs(a, cfg, pl.rank);
  const ModelFamily& family = model_family(a.model);
  // simple: equal counts of modules per stage, as the pipeline splitter of reference log 003 (cut at block
  // boundaries); cost: measured (--pipeline-split-costs) or modelled per-layer costs.
  const std::vector<double> costs = a.pipeline_split == "simple"   ? module_counts(family, cfg)
                                    : a.pipeline_split_costs.empty() ? family.layer_costs(cfg)
                                                                     : read_layer_costs(a.pipeline_split_costs, cfg.num_layers);
  // With virtual stages the P x V virtual stages are split (Megatron's order: chunk c of rank r is
  // virtual stage c x P + r), so each chunk, and so each rank, gets its share.
  const int stages = pl.size * pl.virtual_size;
  const std::vector<int> counts = split_by_cost(costs, stages);
  std::vector<StageSpec> specs;
  std::string plan;
  int first = 0;
  for (int s = 0; s < stages; s++) {
    if (s % pl.size == pl.rank) specs.push_back({first, counts[size_t(s)], s == 0, s == stages - 1});
    first += counts[size_t(s)];
    plan += (s ? ", " : "") + std::to_string(counts[size_t(s)]);
  }
  if (pl.virtual_size > 1) plan = "virtual stages: " + plan;
  if (a.pipeline_split == "simple")
    out.print_rank_0("> pipeline split by module count (" + std::to_string(family.block_modules) +
                     " per block, 1 each for the embedding and output layer): blocks per stage [" + plan + "]");
  else
    out.print_rank_0("> pipeline split by cost (" +
                     std::string(a.pipeline_split_costs.empty() ? "FLOP model" : a.pipeline_split_costs) +
                     "): blocks per stage [" + plan + "]");
  return specs;
}

ParamStorage param_storage(const TrainArgs& a, const parallel::ProcessGrid& grid) {
  ParamStorage storage;
  storage.weights = param_dtype(a);
  // Megatron: bf16 always accumulates in fp32; fp16 unless --accumulate-allreduce-grads-in-fp32.
  storage.grads = a.fp16 && !a.accumulate_allreduce_grads_in_fp32 ? DType::F16 : DType::F32;
  if (a.zero_stage >= 1 && grid.dp_size() > 1) {
    storage.zero_group = grid.data();
    storage.shard_grads = a.zero_stage >= 2;
    storage.shard_weights = a.zero_stage >= 3;
  }
  return storage;
}

std::vector<std::unique_ptr<DecoderModel>> build_model_chunks(const TrainArgs& a, const ModelConfig& cfg,
                                                          const std::vector<StageSpec>& specs,
                                                          const PipelineLayout& pl, const TensorParallel& tp,
                                                          const ParamStorage& storage) {
  // A ramp-up runs fewer micro-batches early on: the slots hold what the most demanding count needs.
  const std::vector<int> counts = a.batch_rampup().micro_batch_counts();
  std::vector<std::unique_ptr<DecoderModel>> models;
  for (size_t c = 0; c < specs.size(); c++) {
    int slots = 1;
    if (pl.size > 1)
      for (int M : counts) slots = std::max(slots, PipelineRunner::slots_needed(pl, M, int(c)));
    StageSpec spec = specs[c];
    spec.defer_weight_grads = PipelineRunner::splits_backward(pl);
    models.push_back(std::make_unique<DecoderModel>(cfg, a.micro_batch_size, a.seq_length, slots, tp, spec, storage));
  }
  return models;
}

}  // namespace loom
