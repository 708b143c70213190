#include "loom/plan/layout_search.h"

#include <algorithm>
#include <cstdio>

#include "loom/core/error.h"

namespace loom {
namespace {

std::vector<int> divisors(int64_t n, int64_t cap) {
  std::vector<int> d;
  for (int64_t i = 1; i <= n && i <= cap; i++)
    if (n % i == 0) d.push_back(int(i));
  return d;
}

template <class T>
std::vector<T> fixed_or(const std::optional<T>& fixed, std::vector<T> all) {
  return fixed ? std::vector<T>{*fixed} : all;
}

// The schedules a layout of PP x VPP is tried with: the one fixed by --pipeline-schedule (interleaved stands
// for 1F1B without virtual stages), else interleaved with virtual stages, 1F1B and zero-bubble without.
std::vector<PipelineSchedule> schedules(const SearchSpace& sp, int pp, int vpp) {
  if (sp.schedule) {
    if (*sp.schedule == PipelineSchedule::Interleaved && vpp == 1) return {PipelineSchedule::OneFOneB};
    return {*sp.schedule};
  }
  if (vpp > 1) return {PipelineSchedule::Interleaved};
  if (pp > 1) return {PipelineSchedule::OneFOneB, PipelineSchedule::ZeroBubble};
  return {PipelineSchedule::OneFOneB};
}

std::string gib(double bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f GiB", bytes / 1073741824.0);
  return buf;
}

}  // namespace

SearchResult search_layouts(const ModelConfig& c, const SearchSpace& sp, const Hardware& hw) {
  require(sp.gpus > 0, "--gpus must be positive");
  SearchResult out;
  const double budget = hw.memory_bytes * sp.usable_fraction;
  const int64_t G = sp.base.global_batch;
  // TP stays within a node (Megatron's advice; across nodes its collectives dominate), unless fixed.
  for (int tp : fixed_or(sp.tp, divisors(sp.gpus, std::max(1, hw.gpus_per_node)))) {
    if (sp.gpus % tp) continue;
    for (int pp : fixed_or(sp.pp, divisors(sp.gpus / tp, c.num_layers))) {
      if ((sp.gpus / tp) % pp) continue;
      const int dp = sp.gpus / (tp * pp);
      std::vector<int> vpps{1};
      if (pp > 1)
        for (int v = 2; v <= c.num_layers / pp; v++)
          if (c.num_layers % (pp * v) == 0) vpps.push_back(v);
      for (int vpp : fixed_or(sp.vpp, vpps)) {
        if (G % dp) continue;
        for (int mb : fixed_or(sp.micro_batch, divisors(G / dp, 64))) {
          for (bool seq : fixed_or(sp.sequence_parallel, tp > 1 ? std::vector<bool>{false, true} : std::vector<bool>{false})) {
            for (RecomputeGranularity rc :
                 fixed_or(sp.recompute, {RecomputeGranularity::kNone, RecomputeGranularity::kSelective,
                                         RecomputeGranularity::kFull})) {
              for (int zero : fixed_or(sp.zero_stage, dp > 1 ? std::vector<int>{0, 1, 2, 3} : std::vector<int>{0}))
              for (PipelineSchedule sched : schedules(sp, pp, vpp)) {
                PlanLayout l = sp.base;
                l.tp = tp, l.pp = pp, l.vpp = vpp, l.dp = dp, l.micro_batch = mb;
                l.sequence_parallel = seq, l.recompute = rc, l.zero_stage = zero, l.schedule = sched;
                if (!layout_problem(c, l).empty()) continue;
                RankedLayout r{l, predict_step(c, l, hw)};
                out.evaluated++;
                if (r.prediction.peak_bytes() <= budget) out.fitting.push_back(r);
                else if (!out.smallest || r.prediction.peak_bytes() < out.smallest->prediction.peak_bytes())
                  out.smallest = r;
              }
            }
          }
        }
      }
    }
  }
  require(out.evaluated > 0, "no layout of " + std::to_string(sp.gpus) + " GPUs divides the model (" +
                                 std::to_string(c.num_layers) + " layers, " + std::to_string(c.num_attention_heads) +
                                 " heads, global batch " + std::to_string(G) + ") with the fixed flags");
  if (out.fitting.empty()) {
    const double need = out.smallest->prediction.peak_bytes();
    fail("the model fits on no layout of " + std::to_string(sp.gpus) + " x " + hw.name + ": the smallest (" +
         layout_flags(out.smallest->layout, c.num_layers) + ") needs " + gib(need) + " per GPU, " + gib(need - budget) +
         " more than the " + gib(budget) + " usable");
  }
  std::stable_sort(out.fitting.begin(), out.fitting.end(), [](const RankedLayout& a, const RankedLayout& b) {
    return a.prediction.step_seconds < b.prediction.step_seconds;
  });
  return out;
}

}  // namespace loom
