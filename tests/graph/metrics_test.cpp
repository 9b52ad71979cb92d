// Metrics on a tiny hand-checked graph.
#include <gtest/gtest.h>

#include "bna/graph.hpp"

namespace bna::graph {
namespace {

TEST(Metrics, WorkedExampleByHand) {
  // T=6, perm [0,3,1,5,2,4], window 2, stride 2, self. Rows (from the reference):
  //  0: 3C 4C 0W           1: 3C 5C 0L 1W         2: 4C 5C 0L 1W 2W
  //  3: 0C 1C 2L 3W        4: 0C 2C 3W 4W         5: 1C 2C 3W 4L 0L 5W
  // (0 enters rows 1 and 2 as WINDOW and is upgraded to LANDMARK.)
  RowRules r{.T = 6, .window = 2, .landmark_stride = 2, .include_self = true};
  auto g = build_head(r, {{0, 3, 1, 5, 2, 4}});
  ASSERT_TRUE(g);
  const GraphMetrics m = metrics(*g, 1);
  EXPECT_EQ(m.heads, 1);
  EXPECT_EQ(m.tokens, 6);
  EXPECT_EQ(m.max_degree, 6);
  // Degrees 3,4,5,4,4,6.
  EXPECT_EQ(m.degree_min, 3);
  EXPECT_EQ(m.degree_max, 6);
  EXPECT_DOUBLE_EQ(m.degree_mean, 26.0 / 6.0);
  EXPECT_EQ(m.edge_type_counts[1], 12);  // 2 cycle entries per row
  // pad count: 6*6 - 26 = 10.
  EXPECT_EQ(m.edge_type_counts[0], 10);
  EXPECT_EQ(m.edge_type_counts[1] + m.edge_type_counts[2] + m.edge_type_counts[3] + m.edge_type_counts[4], 26);
  // Cycle entries with |j-i| <= 1: row 0 none; row 1: none (3,5); row 2: none (4,5); row 3: 2? no -> (0,1) none;
  // row 4: (0,2) none; row 5: (1,2) none; -> every cycle entry is a shortcut.
  EXPECT_DOUBLE_EQ(m.shortcut_rate, 1.0);
  // One hop: reach = 1 + (row length minus self).
  EXPECT_DOUBLE_EQ(m.reachability_proxy, (3 + 4 + 5 + 4 + 4 + 6) / 6.0);
  const GraphMetrics m0 = metrics(*g, 0);
  EXPECT_DOUBLE_EQ(m0.reachability_proxy, 1.0);
  const GraphMetrics m9 = metrics(*g, 9);
  EXPECT_DOUBLE_EQ(m9.reachability_proxy, 6.0);
}

TEST(Metrics, ShortcutRateCountsOnlyLongCycleEdges) {
  // Identity cycle over 5 nodes, no window: cycle pairs (0,1),(1,2),(2,3),(3,4) are local, (4,0) is not.
  RowRules r{.T = 5, .window = 0, .landmark_stride = 0, .include_self = false};
  auto g = build_head(r, {{0, 1, 2, 3, 4}});
  ASSERT_TRUE(g);
  const GraphMetrics m = metrics(*g);
  EXPECT_DOUBLE_EQ(m.shortcut_rate, 2.0 / 10.0);
  EXPECT_EQ(m.edge_type_counts[1], 10);
}

TEST(Metrics, SampledSourcesAreDeterministic) {
  RowRules r{.T = 300, .window = 3, .landmark_stride = 0, .include_self = true};
  std::vector<int32_t> perm(300);
  for (int i = 0; i < 300; ++i) perm[i] = i;
  auto g = build_head(r, {perm});
  ASSERT_TRUE(g);
  const GraphMetrics a = metrics(*g, 2, 16), b = metrics(*g, 2, 16);
  EXPECT_EQ(a.reachability_proxy, b.reachability_proxy);
  // Interior node, 2 hops over cycle(+-1) + window 3 (past) + self: nodes i-6..i+2 -> 9; boundary rows differ.
  EXPECT_GT(a.reachability_proxy, 5.0);
  EXPECT_LE(a.reachability_proxy, 9.0);
}

}  // namespace
}  // namespace bna::graph
