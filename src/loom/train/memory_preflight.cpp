#include "loom/train/memory_preflight.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "loom/core/allocator.h"
#include "loom/core/error.h"
#include "loom/dist/communicator.h"
#include "loom/kernels/cpu/gemm_bf16.h"
#include "loom/models/decoder_model.h"
#include "loom/optim/adamw.h"
#include "loom/parallel/process_grid.h"
#include "loom/train/arguments.h"
#include "loom/train/model_chunks.h"
#include "loom/train/optimizer_setup.h"
#include "loom/train/pipeline_runner.h"
#include "loom/train/run_logging.h"
#include "loom/train/training_data.h"
#include "loom/util/system_memory.h"

namespace loom {

namespace {

// A node refuses a run whose prediction leaves it less than this share of its available memory: the
// prediction is within a few percent, and the kernel needs room for page tables and the page cache.
constexpr double kHeadroom = 0.95;

int64_t host_hash() {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (const char* c = host; *c; c++) h = (h ^ uint8_t(*c)) * 1099511628211ull;
  return int64_t(h >> 1);
}

std::string host_name() {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  return host;
}

// What a checkpoint save holds besides the tensors (CheckpointSaver::save): the moments gathered whole
// (std::vector, every rank), the fp32 main weights gathered when the stored weights are not them, and
// the writer's copies of everything it writes.
int64_t save_staging_bytes(const TrainArgs& a, const parallel::ProcessGrid& grid, const DecoderModel& m) {
  if (a.save.empty()) return 0;
  int64_t numel = 0;
  for (const auto& p : m.params().all()) numel += p.numel();
  const bool optim = !a.no_save_optim;
  int64_t bytes = (optim ? 8 : 0) * numel + (m.params().values_direct() ? 0 : 4 * numel);
  if (grid.dp_rank() == 0) bytes += (optim ? 12 : 4) * numel;
  return bytes;
}

// A bf16 run's GEMM library (oneDNN) maps its code and pools on first use: one tiny product before the
// baseline is read puts that into the baseline, where it belongs.
void warm_up_bf16_gemm() {
  const uint16_t one[16 * 16] = {};
  float c[16 * 16];
  cpu::gemm_bf16(false, true, 16, 16, 16, 1.f, one, 16, one, 16, 0.f, c, 16);
}

}  // namespace

int64_t RankMemoryPrediction::peak() const {
  const int64_t training = model_states() + activations + save_staging + library_buffers;
  return std::max(construction_peak, training) + index_maps + baseline_rss;
}

RankMemoryPrediction predict_rank_memory(const TrainArgs& a, const ModelConfig& cfg, const parallel::ProcessGrid& grid,
                                         const PipelineLayout& pl, const TensorParallel& tp) {
  RankMemoryPrediction m;
  if (cfg.activation_dtype == DType::BF16) warm_up_bf16_gemm();
  m.baseline_rss = resident_bytes();
  m.index_maps = predicted_index_map_bytes(a, grid.dp_size());
  const RankPrinter quiet{-1, 1};
  const std::vector<StageSpec> specs = rank_stage_specs(a, cfg, pl, quiet);
  {
    AddressSpaceOnly scope;  // every tensor below is mapped, none touched
    const int64_t before = memory_stats().allocated;
    reset_peak_memory();
    auto models = build_model_chunks(a, cfg, specs, pl, tp, param_storage(a, grid));
    std::vector<DecoderModel*> chunks;
    for (const auto& c : models) chunks.push_back(c.get());
    auto optimizers = build_optimizers(a, chunks, tp);
    for (size_t c = 0; c < chunks.size(); c++) {
      const DecoderModel& g = *chunks[c];
      m.weights += g.params().weight_bytes();
      m.grads += g.params().grad_bytes();
      m.working += g.params().working_bytes() + g.gemm_operand_bytes();
      // Without bf16 instructions gemm_bf16 widens both operands into fp32 vectors of its own: at most
      // the largest weight and input (the bf16 operand buffers, widened) or the output layer's logit
      // gradient chunk.
      if (g.gemm_operand_bytes() > 0 && !cpu::bf16_gemm_native())
        m.library_buffers = std::max(m.library_buffers, 2 * g.gemm_operand_bytes() + 4 * g.logit_chunk_numel());
      m.optimizer += optimizers[c]->state_bytes();
      m.activations += g.activation_bytes();
      m.in_flight = std::max(m.in_flight, g.slots());
      m.parameters += g.num_params_on_rank();
      m.save_staging += save_staging_bytes(a, grid, g);
    }
    m.construction_peak = memory_stats().max_allocated - before;
  }
  reset_peak_memory();  // the memory lines' "max allocated" is the real run's, not the preflight's
  return m;
}

int64_t predict_stage_activation_bytes(const TrainArgs& a, const ModelConfig& cfg, int pp_rank) {
  const PipelineLayout pl{nullptr, pp_rank, a.pipeline_model_parallel_size, a.virtual_pipeline_size(), a.schedule(),
                          int(a.pipeline_max_in_flight.value_or(0))};
  TensorParallel tp;
  tp.size = a.tensor_model_parallel_size;
  tp.sequence_parallel = a.sequence_parallel;
  ParamStorage storage;  // unsharded: ZeRO moves model states, not activations
  storage.weights = param_dtype(a);
  const RankPrinter quiet{-1, 1};
  const std::vector<StageSpec> specs = rank_stage_specs(a, cfg, pl, quiet);
  int64_t bytes = 0;
  {
    AddressSpaceOnly scope;  // mapped, never touched
    for (const auto& m : build_model_chunks(a, cfg, specs, pl, tp, storage)) bytes += m->activation_bytes();
  }
  reset_peak_memory();
  return bytes;
}

namespace {

struct NodeVerdict {
  bool fits = true;
  double needed = 0, available = 0;
  int ranks = 0;
  int largest_rank = 0;  // world rank with the largest prediction on the worst node
};

// The worst node of a world of per-rank peaks (identical on every rank: every input is all-gathered).
NodeVerdict judge(const std::vector<int64_t>& hosts, const std::vector<double>& peaks,
                  const std::vector<double>& available) {
  NodeVerdict worst;
  double worst_ratio = -1;
  for (size_t r = 0; r < hosts.size(); r++) {
    if (std::find(hosts.begin(), hosts.begin() + long(r), hosts[r]) != hosts.begin() + long(r)) continue;
    NodeVerdict v;
    v.available = available[r];
    double largest = -1;
    for (size_t q = r; q < hosts.size(); q++) {
      if (hosts[q] != hosts[r]) continue;
      v.needed += peaks[q];
      v.ranks++;
      if (peaks[q] > largest) largest = peaks[q], v.largest_rank = int(q);
    }
    v.fits = v.available <= 0 || v.needed <= kHeadroom * v.available;
    const double ratio = v.available > 0 ? v.needed / v.available : 0;
    if (ratio > worst_ratio) worst_ratio = ratio, worst = v;
  }
  return worst;
}

}  // namespace

RankMemoryPrediction check_memory_fits(const TrainArgs& a, const ModelConfig& cfg, const parallel::ProcessGrid& grid,
                                       const PipelineLayout& pl, const TensorParallel& tp) {
  const RankMemoryPrediction m = predict_rank_memory(a, cfg, grid, pl, tp);
  auto world = grid.world();
  const size_t n = size_t(world->size());
  std::vector<int64_t> hosts(n);
  std::vector<double> peaks(n), available(n);
  const int64_t host = host_hash();
  const double peak = double(m.peak()), avail = double(available_memory_bytes());
  world->all_gather(&host, hosts.data(), 1);
  world->all_gather(&peak, peaks.data(), 1);
  world->all_gather(&avail, available.data(), 1);
  const NodeVerdict v = judge(hosts, peaks, available);
  if (v.fits) return m;

  // What would fit: the same run with its states sharded, with full recompute, or both (each rank
  // predicts its own; every rank takes the same decision from the gathered figures).
  struct Variant {
    std::string flags;
    bool applies;
    TrainArgs args;
    ModelConfig cfg;
  };
  std::vector<Variant> variants;
  auto add = [&](const std::string& flags, bool applies, auto change) {
    Variant x{flags, applies, a, cfg};
    change(x.args, x.cfg);
    variants.push_back(std::move(x));
  };
  // In order of how little they change: a higher ZeRO stage (not always smaller here: sharded states
  // need fp32 working copies of the largest layer), full recompute, then both.
  const bool can_recompute = a.recompute_granularity != "full";
  auto full = [](TrainArgs& b, ModelConfig& c) {
    b.recompute_granularity = c.recompute_granularity = "full";
    b.recompute_method = c.recompute_method = "uniform";
  };
  for (int recompute = 0; recompute < 2; recompute++) {
    if (recompute && !can_recompute) break;
    if (recompute) add("--recompute-granularity full", true, [&](TrainArgs& b, ModelConfig& c) { full(b, c); });
    for (int z = a.zero_stage + 1; z <= 3 && grid.dp_size() > 1; z++)
      add("--zero-stage " + std::to_string(z) + (recompute ? " --recompute-granularity full" : ""), true,
          [&](TrainArgs& b, ModelConfig& c) {
            b.zero_stage = z;
            if (recompute) full(b, c);
          });
  }
  std::string suggestion;
  for (auto& x : variants) {
    if (!x.applies) continue;
    const double p = double(predict_rank_memory(x.args, x.cfg, grid, pl, tp).peak());
    world->all_gather(&p, peaks.data(), 1);
    const NodeVerdict w = judge(hosts, peaks, available);
    if (w.fits) {
      suggestion = x.flags + " (about " + human_bytes(w.needed) + ")";
      break;
    }
  }
  const int nodes = int(v.needed / (kHeadroom * v.available)) + 1;
  if (v.ranks >= nodes)
    suggestion += (suggestion.empty() ? "" : ", or ") + std::string("the same ranks spread over ") +
                  std::to_string(nodes) + " nodes of this size";

  // The one line, with the largest rank's parts so the user sees what dominates.
  std::vector<double> parts(n * 6);
  const double mine[6] = {double(m.model_states()), double(m.activations), double(m.save_staging),
                          double(m.index_maps), double(m.baseline_rss), double(m.peak())};
  world->all_gather(mine, parts.data(), 6);
  const double* big = &parts[size_t(v.largest_rank) * 6];
  std::string node;
  {
    std::string h = host_name();
    world->broadcast(h, v.largest_rank);
    node = h;
  }
  fail("this run needs about " + human_bytes(v.needed) + " of memory on node " + node + " (" +
       std::to_string(v.ranks) + (v.ranks == 1 ? " rank" : " ranks") + "; rank " + std::to_string(v.largest_rank) +
       ": model states " + human_bytes(big[0]) + ", activations " + human_bytes(big[1]) +
       (big[2] > 0 ? ", checkpoint staging " + human_bytes(big[2]) : std::string()) +
       (big[3] > 0 ? ", index maps " + human_bytes(big[3]) : std::string()) + ", process " + human_bytes(big[4]) +
       ") but the node has " + human_bytes(v.available) + " available" +
       (big[3] > 0.5 * big[5]  // the data's index maps dominate: more ranks would not help
            ? std::string(": train on fewer samples (--train-iters, --global-batch-size) or more data")
        : suggestion.empty() ? std::string(": use more ranks (data parallel with --zero-stage 3, or model parallel)")
                             : "; it would fit with " + suggestion));
}

std::string format_predicted_memory_line(int rank, const RankMemoryPrediction& m) {
  char buf[320];
  std::snprintf(buf, sizeof buf,
                "[Rank %d] predicted memory (MB) | model states: %.2f | activations: %.2f | micro-batches in flight: %d"
                " | checkpoint staging: %.2f | index maps: %.2f | process: %.2f | peak: %.2f",
                rank, double(m.model_states()) / 1048576.0, double(m.activations) / 1048576.0, m.in_flight,
                double(m.save_staging) / 1048576.0, double(m.index_maps) / 1048576.0,
                double(m.baseline_rss) / 1048576.0, double(m.peak()) / 1048576.0);
  return buf;
}

}  // namespace loom
