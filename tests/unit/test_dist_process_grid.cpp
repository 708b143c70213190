// Megatron's rank layout, computed for hypothetical world sizes (a pure function, no MPI), and the
// process grid on the singleton world. The expected listings were derived from Megatron-LM's
// megatron/core/parallel_state.py (RankGenerator, order "tp-cp-ep-dp-pp", default_embedding_ranks,
// default_position_embedding_ranks).
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "loom/core/error.h"
#include "loom/dist/communicator.h"
#include "loom/parallel/process_grid.h"

namespace loom::parallel {
namespace {

using Groups = std::vector<std::vector<int>>;

TEST(DistProcessGrid, Megatron8RanksTp2Pp2) {
  GridLayout g(8, /*tp=*/2, /*cp=*/1, /*pp=*/2);
  EXPECT_EQ(g.dp(), 2);
  EXPECT_EQ(g.groups(GroupKind::Tensor), (Groups{{0, 1}, {2, 3}, {4, 5}, {6, 7}}));
  EXPECT_EQ(g.groups(GroupKind::Context), (Groups{{0}, {1}, {2}, {3}, {4}, {5}, {6}, {7}}));
  EXPECT_EQ(g.groups(GroupKind::Data), (Groups{{0, 2}, {1, 3}, {4, 6}, {5, 7}}));
  EXPECT_EQ(g.groups(GroupKind::DataWithContext), (Groups{{0, 2}, {1, 3}, {4, 6}, {5, 7}}));
  EXPECT_EQ(g.groups(GroupKind::Pipeline), (Groups{{0, 4}, {1, 5}, {2, 6}, {3, 7}}));
  EXPECT_EQ(g.groups(GroupKind::Model), (Groups{{0, 1, 4, 5}, {2, 3, 6, 7}}));
  EXPECT_EQ(g.groups(GroupKind::Embedding), (Groups{{0, 4}, {1, 5}, {2, 6}, {3, 7}}));
  EXPECT_EQ(g.groups(GroupKind::PositionEmbedding), (Groups{{0}, {1}, {2}, {3}}));
  EXPECT_EQ(g.describe(),
            "using world size: 8, data-parallel size: 2, context-parallel size: 1, tensor-model-parallel size: 2, "
            "pipeline-model-parallel size: 2");
  EXPECT_EQ(g.coord(5), (GridLayout::Coord{1, 0, 0, 1}));
  EXPECT_EQ(g.coord(6), (GridLayout::Coord{0, 0, 1, 1}));
}

TEST(DistProcessGrid, Megatron16RanksTp2Cp2Pp2) {
  GridLayout g(16, 2, 2, 2);
  EXPECT_EQ(g.dp(), 2);
  EXPECT_EQ(g.groups(GroupKind::Tensor),
            (Groups{{0, 1}, {2, 3}, {4, 5}, {6, 7}, {8, 9}, {10, 11}, {12, 13}, {14, 15}}));
  EXPECT_EQ(g.groups(GroupKind::Context),
            (Groups{{0, 2}, {1, 3}, {4, 6}, {5, 7}, {8, 10}, {9, 11}, {12, 14}, {13, 15}}));
  EXPECT_EQ(g.groups(GroupKind::Data),
            (Groups{{0, 4}, {1, 5}, {2, 6}, {3, 7}, {8, 12}, {9, 13}, {10, 14}, {11, 15}}));
  EXPECT_EQ(g.groups(GroupKind::DataWithContext), (Groups{{0, 2, 4, 6}, {1, 3, 5, 7}, {8, 10, 12, 14}, {9, 11, 13, 15}}));
  EXPECT_EQ(g.groups(GroupKind::Pipeline),
            (Groups{{0, 8}, {1, 9}, {2, 10}, {3, 11}, {4, 12}, {5, 13}, {6, 14}, {7, 15}}));
  EXPECT_EQ(g.groups(GroupKind::Model), (Groups{{0, 1, 8, 9}, {2, 3, 10, 11}, {4, 5, 12, 13}, {6, 7, 14, 15}}));
  EXPECT_EQ(g.groups(GroupKind::Embedding),
            (Groups{{0, 8}, {1, 9}, {2, 10}, {3, 11}, {4, 12}, {5, 13}, {6, 14}, {7, 15}}));
  EXPECT_EQ(g.groups(GroupKind::PositionEmbedding), (Groups{{0}, {1}, {2}, {3}, {4}, {5}, {6}, {7}}));
  // rank = ((pp * dp + dp_rank) * cp + cp_rank) * tp + tp_rank
  EXPECT_EQ(g.coord(13), (GridLayout::Coord{1, 0, 1, 1}));
  EXPECT_EQ(g.rank_of({1, 0, 1, 1}), 13);
}

TEST(DistProcessGrid, EmbeddingGroupsAreFirstAndLastStage) {
  GridLayout g(8, 1, 1, 4);  // dp = 2
  EXPECT_EQ(g.groups(GroupKind::Pipeline), (Groups{{0, 2, 4, 6}, {1, 3, 5, 7}}));
  EXPECT_EQ(g.groups(GroupKind::Embedding), (Groups{{0, 6}, {1, 7}}));
  EXPECT_EQ(g.groups(GroupKind::PositionEmbedding), (Groups{{0}, {1}}));
  EXPECT_FALSE(g.membership(GroupKind::Embedding, 2).member());  // a middle stage
  EXPECT_FALSE(g.membership(GroupKind::PositionEmbedding, 6).member());
  GridLayout::Membership last = g.membership(GroupKind::Embedding, 7);
  EXPECT_EQ(last.index, 1);
  EXPECT_EQ(last.position, 1);
  EXPECT_EQ(last.ranks, (std::vector<int>{1, 7}));
  // pp == 1: the stage itself.
  GridLayout one(4, 2, 1, 1);
  EXPECT_EQ(one.groups(GroupKind::Embedding), (Groups{{0}, {1}, {2}, {3}}));
  EXPECT_EQ(one.groups(GroupKind::PositionEmbedding), (Groups{{0}, {1}, {2}, {3}}));
}

// Every rank is in exactly one group of each kind, at the position the membership reports, and the
// coordinates round-trip.
TEST(DistProcessGrid, MembershipIsConsistentForManyLayouts) {
  for (int w : {1, 2, 4, 6, 8, 12, 16, 24, 32})
    for (int tp = 1; tp <= w; ++tp)
      for (int cp = 1; cp <= w; ++cp)
        for (int pp = 1; pp <= w; ++pp) {
          if (w % (tp * cp * pp)) continue;
          GridLayout g(w, tp, cp, pp);
          EXPECT_EQ(g.tp() * g.cp() * g.dp() * g.pp(), w);
          for (int r = 0; r < w; ++r) ASSERT_EQ(g.rank_of(g.coord(r)), r);
          for (GroupKind kind : kAllGroupKinds) {
            Groups groups = g.groups(kind);
            std::multiset<int> seen;
            for (auto& grp : groups) seen.insert(grp.begin(), grp.end());
            const bool partial = kind == GroupKind::Embedding || kind == GroupKind::PositionEmbedding;
            if (!partial) {
              EXPECT_EQ(int(seen.size()), w);
            }
            for (int r = 0; r < w; ++r) {
              GridLayout::Membership m = g.membership(kind, r);
              EXPECT_LE(seen.count(r), 1u);
              if (!m.member()) {
                EXPECT_TRUE(partial);
                EXPECT_EQ(seen.count(r), 0u);
                continue;
              }
              ASSERT_LT(size_t(m.index), groups.size());
              EXPECT_EQ(groups[size_t(m.index)], m.ranks);
              EXPECT_EQ(m.ranks.at(size_t(m.position)), r);
            }
          }
          const std::pair<GroupKind, int> sizes[] = {{GroupKind::Tensor, tp},
                                                     {GroupKind::Context, cp},
                                                     {GroupKind::Data, g.dp()},
                                                     {GroupKind::DataWithContext, cp * g.dp()},
                                                     {GroupKind::Pipeline, pp},
                                                     {GroupKind::Model, tp * pp}};
          for (auto [kind, size] : sizes) EXPECT_EQ(g.membership(kind, 0).ranks.size(), size_t(size));
        }
}

TEST(DistProcessGrid, DivisibilityAndSizeErrors) {
  try {
    GridLayout(6, 4, 1, 1);
    FAIL() << "expected a UserError";
  } catch (const UserError& e) {
    EXPECT_STREQ(e.what(),
                 "world size (6) is not divisible by tensor parallel size (4) times pipeline parallel size (1) "
                 "times context parallel size (1); run a multiple of 4 processes or choose smaller sizes");
  }
  EXPECT_THROW(GridLayout(8, 2, 3, 1), UserError);
  EXPECT_THROW(GridLayout(8, 2, 2, 4), UserError);  // 16 does not divide 8
  EXPECT_THROW(GridLayout(8, 0, 1, 1), UserError);
  EXPECT_THROW(GridLayout(8, 1, 0, 1), UserError);
  EXPECT_THROW(GridLayout(8, 1, 1, -2), UserError);
  EXPECT_THROW(GridLayout(0, 1, 1, 1), UserError);
  EXPECT_THROW(GridLayout(8, 2, 1, 2).coord(8), UserError);
  // The grid checks before it communicates: on a world of 1, tp = 2 fails at once.
  EXPECT_THROW(ProcessGrid(dist::Communicator::world(), 2), UserError);
}

TEST(DistProcessGrid, FormatLine) {
  EXPECT_EQ(format_parallel_sizes(16, 2, 2, 2, 2),
            "using world size: 16, data-parallel size: 2, context-parallel size: 2, tensor-model-parallel size: 2, "
            "pipeline-model-parallel size: 2");
  EXPECT_STREQ(group_name(GroupKind::DataWithContext), "data-parallel-with-context");
  EXPECT_STREQ(group_name(GroupKind::Tensor), "tensor-model-parallel");
}

TEST(DistProcessGrid, SingletonGrid) {
  ProcessGrid grid(dist::Communicator::world(), 1, 1, 1);
  EXPECT_EQ(grid.world_size(), 1);
  EXPECT_EQ(grid.dp_size(), 1);
  EXPECT_TRUE(grid.is_first_stage());
  EXPECT_TRUE(grid.is_last_stage());
  for (GroupKind kind : kAllGroupKinds) {
    ASSERT_NE(grid.group(kind), nullptr) << group_name(kind);
    EXPECT_EQ(grid.group(kind)->size(), 1);
    EXPECT_EQ(grid.group(kind)->name(), group_name(kind));
    EXPECT_EQ(grid.group_ranks(kind), (std::vector<int>{0}));
  }
  std::vector<float> v = {4};
  grid.data()->all_reduce(v.data(), 1);
  grid.tensor()->all_reduce(v.data(), 1);
  EXPECT_EQ(v[0], 4.f);
  EXPECT_EQ(grid.describe(),
            "using world size: 1, data-parallel size: 1, context-parallel size: 1, tensor-model-parallel size: 1, "
            "pipeline-model-parallel size: 1");
}

}  // namespace
}  // namespace loom::parallel
