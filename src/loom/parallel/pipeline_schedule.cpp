#include "loom/parallel/pipeline_schedule.h"

#include <algorithm>

#include "loom/core/error.h"

namespace loom {

PipelineSchedule parse_pipeline_schedule(const std::string& name) {
  if (name == "gpipe") return PipelineSchedule::GPipe;
  if (name == "1f1b") return PipelineSchedule::OneFOneB;
  if (name == "interleaved") return PipelineSchedule::Interleaved;
  if (name == "dynamic") return PipelineSchedule::Dynamic;
  if (name == "zero-bubble") return PipelineSchedule::ZeroBubble;
  fail("unknown pipeline schedule '" + name + "' (gpipe, 1f1b, interleaved, dynamic or zero-bubble)");
}

namespace {

// ZB-H1 (see the header): F, B and W of one stage, each kind in micro-batch order.
std::vector<PipeOp> zero_bubble_h1_ops(int P, int rank, int M) {
  std::vector<PipeOp> ops;
  int f = 0, b = 0, w = 0;
  auto F = [&] { ops.push_back({true, f++, 0}); };
  auto B = [&] { ops.push_back({false, b++, 0}); };
  auto W = [&] { ops.push_back({false, w++, 0, true}); };
  for (int i = 0; i < P - rank - 1 && f < M; i++) F();
  for (int i = 0; i < rank && f < M; i++) F(), B();
  while (f < M) F(), B(), W();
  while (b < M) B(), W();
  while (w < M) W();
  return ops;
}

}  // namespace

std::vector<PipeOp> pipeline_ops(PipelineSchedule kind, int P, int rank, int M, int V) {
  std::vector<PipeOp> ops;
  if (kind == PipelineSchedule::GPipe) {
    for (int m = 0; m < M; m++) ops.push_back({true, m, 0});
    for (int m = 0; m < M; m++) ops.push_back({false, m, 0});
    return ops;
  }
  if (kind == PipelineSchedule::ZeroBubble) return zero_bubble_h1_ops(P, rank, M);
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
  const bool has_w = std::any_of(ops.begin(), ops.end(), [](const PipeOp& op) { return op.weight; });
  int live = 0, most = 0;
  for (const auto& op : ops) {
    if (op.chunk != chunk) continue;
    live += op.forward ? 1 : (op.weight || !has_w) ? -1 : 0;
    most = std::max(most, live);
  }
  return most;
}

std::string describe(const std::vector<PipeOp>& ops) {
  std::string s;
  for (const auto& op : ops) {
    if (!s.empty()) s += ' ';
    s += (op.forward ? "F" : op.weight ? "W" : "B") + std::to_string(op.micro) + "." + std::to_string(op.chunk);
  }
  return s;
}

}  // namespace loom
