#pragma once
// Megatron's rank layout and the communicators for each kind of parallel group.
//
// Ranks are laid out in Megatron's default order "tp-cp-ep-dp-pp" (expert parallelism is 1 here): tensor
// parallel fastest, then context, data, pipeline:
//   rank = ((pp_rank * dp + dp_rank) * cp + cp_rank) * tp + tp_rank,   dp = world / (tp * cp * pp)
// Groups match megatron/core/parallel_state.py initialize_model_parallel(): each group lists its ranks in
// group-rank order and groups come in Megatron's enumeration order (RankGenerator.get_ranks).
//   Tensor             tp                    Context            cp
//   Data               dp                    DataWithContext    dp-cp (cp varies fastest within it)
//   Pipeline           pp                    Model              tp-pp
//   Embedding          first and last stage of each pipeline group (only the first when pp == 1)
//   PositionEmbedding  first stage of each pipeline group
// GridLayout is a pure function of (world size, tp, cp, pp); ProcessGrid builds the communicators.
#include <memory>
#include <string>
#include <vector>

namespace loom::dist {
class Communicator;
}

namespace loom::parallel {

enum class GroupKind { Tensor, Context, Data, DataWithContext, Pipeline, Model, Embedding, PositionEmbedding };
inline constexpr GroupKind kAllGroupKinds[] = {GroupKind::Tensor,          GroupKind::Context,  GroupKind::Data,
                                               GroupKind::DataWithContext, GroupKind::Pipeline, GroupKind::Model,
                                               GroupKind::Embedding,       GroupKind::PositionEmbedding};

// The communicator name: "tensor-model-parallel", "context-parallel", "data-parallel",
// "data-parallel-with-context", "pipeline-model-parallel", "model-parallel", "embedding",
// "position-embedding".
const char* group_name(GroupKind kind);

// Megatron's start-up line: "using world size: W, data-parallel size: D, context-parallel size: C,
// tensor-model-parallel size: T, pipeline-model-parallel size: P".
std::string format_parallel_sizes(int world_size, int dp, int cp, int tp, int pp);

class GridLayout {
 public:
  // Throws loom::UserError unless every size is >= 1 and tp * cp * pp divides world_size.
  GridLayout(int world_size, int tp, int cp, int pp);

  int world_size() const { return world_; }
  int tp() const { return tp_; }
  int cp() const { return cp_; }
  int pp() const { return pp_; }
  int dp() const { return dp_; }

  struct Coord {
    int tp = 0, cp = 0, dp = 0, pp = 0;
    bool operator==(const Coord&) const = default;
  };
  Coord coord(int rank) const;
  int rank_of(const Coord& c) const;

  // Every group of a kind, in Megatron's order, each listing global ranks in group-rank order.
  std::vector<std::vector<int>> groups(GroupKind kind) const;

  // The group `rank` is in: index among groups(kind) and position (its rank in the group); both -1 when
  // it is in none (embedding groups on middle pipeline stages).
  struct Membership {
    int index = -1;
    int position = -1;
    std::vector<int> ranks;  // the group's global ranks (empty when in none)
    bool member() const { return index >= 0; }
  };
  Membership membership(GroupKind kind, int rank) const;

  std::string describe() const;  // format_parallel_sizes(...) for this layout

 private:
  int world_, tp_, cp_, pp_, dp_;
};

class ProcessGrid {
 public:
  // Collective over `world`. Validates the sizes (UserError, before any communication), then splits
  // `world` once per GroupKind.
  ProcessGrid(std::shared_ptr<dist::Communicator> world, int tp, int cp = 1, int pp = 1);
  ~ProcessGrid();

  const GridLayout& layout() const { return layout_; }
  const GridLayout::Coord& coord() const { return coord_; }
  int rank() const { return rank_; }  // in world
  int world_size() const { return layout_.world_size(); }
  int tp_size() const { return layout_.tp(); }
  int cp_size() const { return layout_.cp(); }
  int dp_size() const { return layout_.dp(); }
  int pp_size() const { return layout_.pp(); }
  int tp_rank() const { return coord_.tp; }
  int cp_rank() const { return coord_.cp; }
  int dp_rank() const { return coord_.dp; }
  int pp_rank() const { return coord_.pp; }
  bool is_first_stage() const { return coord_.pp == 0; }
  bool is_last_stage() const { return coord_.pp == layout_.pp() - 1; }

  // nullptr where this rank is in no group of that kind (embedding groups on middle stages).
  const std::shared_ptr<dist::Communicator>& group(GroupKind kind) const;
  // Global ranks of this rank's group of that kind, in group-rank order (empty when in none).
  const std::vector<int>& group_ranks(GroupKind kind) const;

  const std::shared_ptr<dist::Communicator>& world() const { return world_; }
  const std::shared_ptr<dist::Communicator>& tensor() const { return group(GroupKind::Tensor); }
  const std::shared_ptr<dist::Communicator>& context() const { return group(GroupKind::Context); }
  const std::shared_ptr<dist::Communicator>& data() const { return group(GroupKind::Data); }
  const std::shared_ptr<dist::Communicator>& data_with_context() const { return group(GroupKind::DataWithContext); }
  const std::shared_ptr<dist::Communicator>& pipeline() const { return group(GroupKind::Pipeline); }
  const std::shared_ptr<dist::Communicator>& model() const { return group(GroupKind::Model); }
  const std::shared_ptr<dist::Communicator>& embedding() const { return group(GroupKind::Embedding); }
  const std::shared_ptr<dist::Communicator>& position_embedding() const {
    return group(GroupKind::PositionEmbedding);
  }

  std::string describe() const { return layout_.describe(); }

 private:
  static constexpr int kKinds = 8;
  std::shared_ptr<dist::Communicator> world_;
  GridLayout layout_;
  int rank_;
  GridLayout::Coord coord_;
  std::shared_ptr<dist::Communicator> groups_[kKinds];
  std::vector<int> ranks_[kKinds];
};

}  // namespace loom::parallel
