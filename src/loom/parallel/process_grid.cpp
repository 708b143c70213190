#include "loom/parallel/process_grid.h"

#include <array>

#include "loom/core/error.h"
#include "loom/dist/communicator.h"

namespace loom::parallel {

const char* group_name(GroupKind kind) {
  switch (kind) {
    case GroupKind::Tensor: return "tensor-model-parallel";
    case GroupKind::Context: return "context-parallel";
    case GroupKind::Data: return "data-parallel";
    case GroupKind::DataWithContext: return "data-parallel-with-context";
    case GroupKind::Pipeline: return "pipeline-model-parallel";
    case GroupKind::Model: return "model-parallel";
    case GroupKind::Embedding: return "embedding";
    case GroupKind::PositionEmbedding: return "position-embedding";
  }
  return "?";
}

std::string format_parallel_sizes(int world_size, int dp, int cp, int tp, int pp) {
  return "using world size: " + std::to_string(world_size) + ", data-parallel size: " + std::to_string(dp) +
         ", context-parallel size: " + std::to_string(cp) + ", tensor-model-parallel size: " + std::to_string(tp) +
         ", pipeline-model-parallel size: " + std::to_string(pp);
}

namespace {

// Dimensions in layout order, fastest first: tp, cp, dp, pp.
constexpr int kDims = 4;
using Mask = std::array<bool, kDims>;

Mask mask_of(GroupKind kind) {
  switch (kind) {
    case GroupKind::Tensor: return {true, false, false, false};
    case GroupKind::Context: return {false, true, false, false};
    case GroupKind::Data: return {false, false, true, false};
    case GroupKind::DataWithContext: return {false, true, true, false};
    case GroupKind::Model: return {true, false, false, true};
    case GroupKind::Pipeline:
    case GroupKind::Embedding:
    case GroupKind::PositionEmbedding: return {false, false, false, true};
  }
  return {};
}

}  // namespace

GridLayout::GridLayout(int world_size, int tp, int cp, int pp) : world_(world_size), tp_(tp), cp_(cp), pp_(pp) {
  require(world_size >= 1, "world size must be at least 1, got " + std::to_string(world_size));
  require(tp >= 1, "--tensor-model-parallel-size must be at least 1, got " + std::to_string(tp));
  require(cp >= 1, "--context-parallel-size must be at least 1, got " + std::to_string(cp));
  require(pp >= 1, "--pipeline-model-parallel-size must be at least 1, got " + std::to_string(pp));
  const long model = long(tp) * cp * pp;
  require(world_size % model == 0,
          "world size (" + std::to_string(world_size) + ") is not divisible by tensor parallel size (" +
              std::to_string(tp) + ") times pipeline parallel size (" + std::to_string(pp) +
              ") times context parallel size (" + std::to_string(cp) + "); run a multiple of " +
              std::to_string(model) + " processes or choose smaller sizes");
  dp_ = int(world_size / model);
}

GridLayout::Coord GridLayout::coord(int rank) const {
  require(rank >= 0 && rank < world_, "rank " + std::to_string(rank) + " is outside world size " + std::to_string(world_));
  Coord c;
  c.tp = rank % tp_;
  rank /= tp_;
  c.cp = rank % cp_;
  rank /= cp_;
  c.dp = rank % dp_;
  c.pp = rank / dp_;
  return c;
}

int GridLayout::rank_of(const Coord& c) const { return ((c.pp * dp_ + c.dp) * cp_ + c.cp) * tp_ + c.tp; }

std::string GridLayout::describe() const { return format_parallel_sizes(world_, dp_, cp_, tp_, pp_); }

// Megatron's generate_masked_orthogonal_rank_groups: the group index runs over the unmasked dimensions
// and the position over the masked ones, each as a mixed-radix number with the faster dimension first.
GridLayout::Membership GridLayout::membership(GroupKind kind, int rank) const {
  const Coord c = coord(rank);
  const std::array<int, kDims> size = {tp_, cp_, dp_, pp_};
  const std::array<int, kDims> idx = {c.tp, c.cp, c.dp, c.pp};
  const Mask mask = mask_of(kind);
  Membership m;
  int index = 0, index_scale = 1, position = 0, position_scale = 1;
  for (int d = 0; d < kDims; ++d) {
    if (mask[d]) {
      position += idx[d] * position_scale;
      position_scale *= size[d];
    } else {
      index += idx[d] * index_scale;
      index_scale *= size[d];
    }
  }
  // The full group, by walking the masked dimensions with the unmasked ones fixed.
  std::vector<int> ranks(static_cast<size_t>(position_scale));
  for (int p = 0; p < position_scale; ++p) {
    std::array<int, kDims> at = idx;
    int rest = p;
    for (int d = 0; d < kDims; ++d)
      if (mask[d]) {
        at[d] = rest % size[d];
        rest /= size[d];
      }
    ranks[size_t(p)] = rank_of(Coord{at[0], at[1], at[2], at[3]});
  }
  if (kind == GroupKind::Embedding || kind == GroupKind::PositionEmbedding) {
    // From each pipeline group: its first stage, and for Embedding also its last when pp > 1.
    std::vector<int> chosen = {ranks.front()};
    if (kind == GroupKind::Embedding && pp_ > 1) chosen.push_back(ranks.back());
    for (size_t i = 0; i < chosen.size(); ++i)
      if (chosen[i] == rank) {
        m.index = index;
        m.position = int(i);
        m.ranks = std::move(chosen);
        return m;
      }
    return m;
  }
  m.index = index;
  m.position = position;
  m.ranks = std::move(ranks);
  return m;
}

std::vector<std::vector<int>> GridLayout::groups(GroupKind kind) const {
  std::vector<std::vector<int>> out;
  for (int r = 0; r < world_; ++r) {
    Membership m = membership(kind, r);
    if (!m.member()) continue;
    if (size_t(m.index) >= out.size()) out.resize(size_t(m.index) + 1);
    if (out[size_t(m.index)].empty()) out[size_t(m.index)] = std::move(m.ranks);
  }
  return out;
}

ProcessGrid::ProcessGrid(std::shared_ptr<dist::Communicator> world, int tp, int cp, int pp)
    : world_(std::move(world)), layout_(world_->size(), tp, cp, pp), rank_(world_->rank()), coord_(layout_.coord(rank_)) {
  for (GroupKind kind : kAllGroupKinds) {
    const int k = int(kind);
    GridLayout::Membership m = layout_.membership(kind, rank_);
    groups_[k] = world_->split(m.member() ? m.index : dist::Communicator::kNoGroup, m.position, group_name(kind));
    ranks_[k] = std::move(m.ranks);
  }
}

ProcessGrid::~ProcessGrid() = default;

const std::shared_ptr<dist::Communicator>& ProcessGrid::group(GroupKind kind) const { return groups_[int(kind)]; }
const std::vector<int>& ProcessGrid::group_ranks(GroupKind kind) const { return ranks_[int(kind)]; }

}  // namespace loom::parallel
