#include "loom/train/run_logging.h"

#include <strings.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>

#include "loom/ckpt/safetensors.h"
#include "loom/core/allocator.h"
#include "loom/core/error.h"
#include "loom/dist/communicator.h"
#include "loom/models/decoder_model.h"
#include "loom/optim/adamw.h"
#include "loom/parallel/process_grid.h"
#include "loom/train/arguments.h"
#include "loom/train/log_format.h"
#include "loom/train/megatron_compat.h"
#include "loom/train/trainer.h"
#include "loom/util/system_memory.h"

namespace loom {

namespace {

void print_line(const std::string& line) {
  std::fputs(line.c_str(), stdout);
  std::fputs("\n", stdout);
  std::fflush(stdout);
}

}  // namespace

std::pair<double, double> resident_mb() {
  const double now = double(resident_bytes()) / 1048576.0;
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return {now, std::max(now, double(ru.ru_maxrss) / 1024.0)};
}

void RankPrinter::print_rank_0(const std::string& line) const {
  if (rank == 0) print_line(line);
}

void RankPrinter::print_rank_last(const std::string& line) const {
  if (rank == world - 1) print_line(line);
}

void print_setup_lines(const RankPrinter& out, const ArgParser& p, const TrainArgs& a,
                       const parallel::ProcessGrid& grid, const ModelConfig& cfg) {
  out.print_rank_0(grid.layout().describe());
  out.print_rank_0(std::string("using ") + (a.fp16 ? "float16" : a.bf16 ? "bfloat16" : "float32") + " for parameters ...");
  auto dump = p.dump();
  show_megatron_derived_values(dump, a, cfg.head_dim(), grid.tp_size());
  dump.push_back({"data_parallel_size", std::to_string(grid.dp_size())});
  dump.push_back({"world_size", std::to_string(grid.world_size())});
  dump.push_back({"padded_vocab_size", std::to_string(cfg.padded_vocab_size)});
  dump.push_back({"params_dtype", a.fp16 ? "torch.float16" : a.bf16 ? "torch.bfloat16" : "torch.float32"});
  // Megatron's derived values (printed before a checkpoint is loaded, so the counters show 0).
  dump.push_back({"rank", "0"});
  dump.push_back({"consumed_train_samples", "0"});
  dump.push_back({"consumed_valid_samples", "0"});
  dump.push_back({"encoder_seq_length", std::to_string(a.seq_length)});
  dump.push_back({"transformer_pipeline_model_parallel_size", std::to_string(grid.pp_size())});
  std::stable_sort(dump.begin(), dump.end(), [](auto& x, auto& y) {
    return strcasecmp(x.first.c_str(), y.first.c_str()) < 0;
  });
  if (out.rank == 0) std::fputs(format_arguments(dump).c_str(), stdout);
  for (const std::string& line : a.batch_rampup().setup_lines()) out.print_rank_0(line);
  if (a.compat.sample_based()) out.print_rank_0("setting training iterations to " + std::to_string(a.train_iters));
  out.print_rank_0("> building " + a.tokenizer_type + " tokenizer ...");
  out.print_rank_0(" > padded vocab (size: " + std::to_string(cfg.vocab_size) + ") with " +
                   std::to_string(cfg.padded_vocab_size - cfg.vocab_size) + " dummy tokens (new size: " +
                   std::to_string(cfg.padded_vocab_size) + ")");
  out.print_rank_0("> setting random seeds to " + std::to_string(a.seed) + " ...");
}

void IntervalStats::add(const StepResult& r, int64_t iteration) {
  iterations++;
  params_norm = r.params_norm;
  if (r.skipped) {
    skipped++;
    if (!std::isfinite(r.loss)) nan_iterations++;
  } else {
    loss_sum += r.loss;
    stepped++;
    grad_norm = r.grad_norm;
    num_zeros = r.num_zeros;
    if (!std::isfinite(r.loss)) fail("loss is " + std::to_string(r.loss) + " at iteration " + std::to_string(iteration));
  }
}

double IntervalStats::elapsed_ms_per_iteration() const {
  return std::chrono::duration<double, std::milli>(Clock::now() - began).count() / double(iterations);
}

void IntervalStats::restart() {
  loss_sum = 0;
  samples = 0;
  flops = 0;
  iterations = 0;
  skipped = nan_iterations = stepped = 0;
  restart_clock();
}

std::string interval_iteration_line(const IntervalStats& s, const TrainArgs& a, const IterationFigures& f) {
  // The interval's batches (a ramp-up changes them); the configured one when none was counted.
  const int64_t gbs = s.last_batch > 0 ? s.last_batch : *a.global_batch_size;
  const double batch = s.iterations > 0 && s.samples > 0 ? double(s.samples) / s.iterations : double(gbs);
  const double elapsed = f.elapsed_ms;
  IterationLog l;
  l.timestamp = now_timestamp();
  l.iteration = f.iteration;
  l.train_iters = a.train_iters;
  l.consumed_samples = f.consumed_samples;
  l.skipped_samples = f.skipped_samples;
  l.elapsed_ms = elapsed;
  l.tflops = f.flops_per_iteration / (elapsed / 1000.0) / 1e12;
  // Per process, as Megatron's "per GPU" figures.
  l.tokens_per_s = batch * double(a.seq_length) / (elapsed / 1000.0) / f.world;
  l.tflops /= f.world;
  l.learning_rate = f.learning_rate;  // as Megatron: the rate after this iteration's scheduler step
  l.global_batch_size = gbs;
  l.has_loss = s.stepped > 0;
  l.lm_loss = s.stepped ? s.loss_sum / s.stepped : 0.0;
  l.has_grad_norm = s.stepped > 0;
  l.grad_norm = s.grad_norm;
  // Megatron prints them with the grad norm, i.e. when an update happened in the interval.
  if (s.stepped > 0) l.num_zeros = s.num_zeros;
  l.params_norm = s.params_norm;
  l.loss_scale = f.loss_scale;
  l.skipped = s.skipped;
  l.nan_iterations = s.nan_iterations;
  return format_iteration_line(l);
}

void print_memory_lines(int rank, int64_t iteration, bool first_replica, const std::vector<DecoderModel*>& chunks,
                        const std::vector<AdamW*>& opts) {
  const MemoryStats m = memory_stats();
  auto [rss, max_rss] = resident_mb();
  if (first_replica)
    std::printf("%s\n", format_memory_line(rank, iteration, double(m.allocated) / 1048576.0,
                                          double(m.max_allocated) / 1048576.0, rss, max_rss)
                            .c_str());
  // The model states, every rank (ZeRO makes them differ from the replica's first rank's).
  double w = 0, g = 0, o = 0, work = 0;
  for (size_t c = 0; c < chunks.size(); c++) {
    w += double(chunks[c]->params().weight_bytes());
    g += double(chunks[c]->params().grad_bytes());
    work += double(chunks[c]->params().working_bytes() + chunks[c]->gemm_operand_bytes());
    o += double(opts[c]->state_bytes());
  }
  std::printf("%s\n",
              format_model_states_line(rank, w / 1048576.0, g / 1048576.0, o / 1048576.0, work / 1048576.0).c_str());
  double act = 0;
  int in_flight = 0;
  for (DecoderModel* c : chunks) act += double(c->activation_bytes()), in_flight = std::max(in_flight, c->slots());
  std::printf("%s\n", format_activations_line(rank, in_flight, act / 1048576.0).c_str());
}

void LayerProfile::report(int64_t step, const std::vector<DecoderModel*>& chunks) {
  if (!enabled_) return;
  std::string text;
  char line[160];
  std::snprintf(line, sizeof line, "[rank:%d stage:%d] transformer-block(module) forward time (no send/recv) - step %lld\n",
                rank_, grid_.pp_rank(), (long long)step);
  text += line;
  for (DecoderModel* m : chunks)
    for (const auto& t : m->take_profile()) {
      if (!t.calls) continue;
      const bool block = t.label != "embed" && t.label != "lm_head";
      const int ops = t.calls * (block ? block_modules_ : 1);
      std::snprintf(line, sizeof line, "  layer[%s]: total=%.3fms, ops=%d, avg/op=%.3fms\n", t.label.c_str(),
                    t.total_ms, ops, t.total_ms / ops);
      text += line;
      sum_[t.label].first += t.total_ms;
      sum_[t.label].second += t.calls;
    }
  if (grid_.dp_rank() == 0 && grid_.tp_rank() == 0) {
    std::fputs(text.c_str(), stdout);
    std::fflush(stdout);
  }
}

void LayerProfile::write_costs(const std::string& path) const {
  if (path.empty() || grid_.dp_rank() != 0 || grid_.tp_rank() != 0) return;
  std::string mine;
  for (const auto& [label, v] : sum_)
    mine += (mine.empty() ? "" : ",") + ("\"" + label + "\": " + std::to_string(v.first / std::max(1, v.second)));
  const auto parts = dist::gather_strings(*grid_.pipeline(), mine, 0);
  if (grid_.pp_rank() == 0) {
    std::string all;
    for (const auto& part : parts)
      if (!part.empty()) all += (all.empty() ? "" : ",\n  ") + part;
    write_file_atomic(path, "{\n  " + all + "\n}\n");
    std::printf(" > per-layer forward costs written to %s\n", path.c_str());
  }
}

void write_pipeline_trace(Trainer& trainer, const parallel::ProcessGrid& grid, const std::string& path) {
  if (path.empty() || !trainer.pipeline() || grid.dp_rank() != 0 || grid.tp_rank() != 0) return;
  trainer.pipeline()->write_trace(path);
  const std::vector<double> idle = trainer.pipeline()->idle_fractions();
  if (grid.pp_rank() == 0) {
    std::printf(" > pipeline trace written to %s\n", path.c_str());
    std::printf(" > pipeline idle fraction per stage (of each training step after the first):");
    for (size_t s = 0; s < idle.size(); s++) std::printf(" %zu: %.3f", s, idle[s]);
    std::printf("\n");
    std::fflush(stdout);
  }
}

}  // namespace loom
