#include "loom/parallel/pipeline_schedule.h"

#include <algorithm>

#include "loom/core/error.h"

namespace loom {

PipelineSchedule parse_pipeline_schedule(const std::string& name) {
  if (name == "gpipe") return PipelineSchedule::GPipe;
  if (name == "1f1b") return PipelineSchedule::OneFOneB;
  if (name == "interleaved") return PipelineSchedule::Interleaved;
  if (name == "dynamic") return PipelineSchedule::Dynamic;
  fail("unknown pipeline schedule '" + name + "' (gpipe, 1f1b, interleaved or dynamic)");
}

std::vector<PipeOp> pipeline_ops(PipelineSchedule kind, int P, int rank, int M, int V) {
  std::vector<PipeOp> ops;
  if (kind == PipelineSchedule::GPipe) {
    for (int m = 0; m < M; m++) ops.push_back({true, m, 0});
    for (int m = 0; m < M; m++) ops.push_back({false, m, 0});
    return ops;
  }
  if (kind == PipelineSchedule::Dynamic) kind = V > 1 ? PipelineSchedule::Interleaved : PipelineSchedule::OneFOneB;
  if (kind == PipelineSchedule::OneFOneB) {
    const int warmup = std::min(P - rank - 1, M), remaining = M - warmup;
    for (int m = 0; m < warmup; m++) ops.push_back({true, m, 0});
    for (int i = 0; i < remaining; i++) {
      ops.push_back({true, warmup + i, 0});
      ops.push_back({false, i, 0});
    }
    for (int i = remaining; i < M; i++) ops.push_back({false, i, 0});
    return ops;
  }
  // Interleaved: virtual micro-batch k runs chunk get_model_chunk_id(k) on micro-batch
  // get_microbatch_id_in_model_chunk(k).
  const int total = M * V, group = P * V;
  auto chunk_of = [&](int k, bool forward) {
    const int c = (k % group) / P;
    return forward ? c : V - c - 1;
  };
  auto micro_of = [&](int k) { return (k / group) * P + k % P; };
  int warmup;
  if (M == P) {
    warmup = total;  // all forwards, then all backwards
  } else {
    warmup = std::min((P - rank - 1) * 2 + (V - 1) * P, total);
  }
  const int remaining = total - warmup;
  for (int k = 0; k < warmup; k++) ops.push_back({true, micro_of(k), chunk_of(k, true)});
  for (int k = 0; k < remaining; k++) {
    const int fk = k + warmup;
    ops.push_back({true, micro_of(fk), chunk_of(fk, true)});
    ops.push_back({false, micro_of(k), chunk_of(k, false)});
  }
  for (int k = remaining; k < total; k++) ops.push_back({false, micro_of(k), chunk_of(k, false)});
  return ops;
}

std::vector<PipeOp> pipeline_forward_ops(int P, int M, int V) {
  std::vector<PipeOp> ops;
  const int group = P * V;
  for (int k = 0; k < M * V; k++) ops.push_back({true, (k / group) * P + k % P, (k % group) / P});
  return ops;
}

int max_in_flight(const std::vector<PipeOp>& ops, int chunk) {
  int live = 0, most = 0;
  for (const auto& op : ops) {
    if (op.chunk != chunk) continue;
    live += op.forward ? 1 : -1;
    most = std::max(most, live);
  }
  return most;
}

std::string describe(const std::vector<PipeOp>& ops) {
  std::string s;
  for (const auto& op : ops) {
    if (!s.empty()) s += ' ';
    s += (op.forward ? "F" : "B") + std::to_string(op.micro) + "." + std::to_string(op.chunk);
  }
  return s;
}

}  // namespace loom
