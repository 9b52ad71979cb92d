// Validation tests: one hand-broken graph per failure kind, each checking that the message names the
// head, row and column (or head/row for backbone failures).
#include <gtest/gtest.h>

#include <string>

#include "bna/graph.hpp"

namespace bna::graph {
namespace {

// Two heads over T=5 with the identity cycle (head 0) and perm 0,2,4,1,3 (head 1), window 1.
GraphAbi good_graph() {
  RowRules r{.T = 5, .window = 1, .landmark_stride = 0, .include_self = true};
  auto g = build_heads(r, {{{0, 1, 2, 3, 4}}, {{0, 2, 4, 1, 3}}});
  BNA_ASSERT(g.has_value());
  return *g;
}

int32_t& idx(GraphAbi& g, int64_t h, int64_t i, int64_t k) { return g.neigh_idx[(h * g.T + i) * g.D + k]; }
uint8_t& typ(GraphAbi& g, int64_t h, int64_t i, int64_t k) { return g.edge_type[(h * g.T + i) * g.D + k]; }

void expect_error(const GraphAbi& g, const std::string& needle, const ValidateOptions& opt = {}) {
  const Status s = validate(g, opt);
  ASSERT_FALSE(s.is_ok()) << "expected an error containing: " << needle;
  EXPECT_NE(s.message().find(needle), std::string::npos) << s.message();
}

TEST(Validate, GoodGraphPasses) {
  const GraphAbi g = good_graph();
  EXPECT_TRUE(validate(g).is_ok()) << validate(g).to_string();
  EXPECT_TRUE(validate(g, {.expect_heads = 2, .expect_tokens = 5}).is_ok());
}

TEST(Validate, ExpectedShape) {
  const GraphAbi g = good_graph();
  expect_error(g, "H=2, expected 3 heads", {.expect_heads = 3});
  expect_error(g, "T=5, expected 6 tokens", {.expect_tokens = 6});
}

TEST(Validate, EmptyAndInconsistentSizes) {
  GraphAbi g;
  expect_error(g, "T=0");
  GraphAbi h = good_graph();
  h.neigh_idx.pop_back();
  expect_error(h, "expected H*T*D");
}

TEST(Validate, BadEdgeCode) {
  GraphAbi g = good_graph();
  typ(g, 1, 3, 1) = 7;
  expect_error(g, "head 1 row 3 col 1: edge type 7");
}

TEST(Validate, IndexOutOfRange) {
  GraphAbi g = good_graph();
  idx(g, 0, 2, 0) = 5;
  expect_error(g, "head 0 row 2 col 0: index 5 out of range [0, 5)");
  GraphAbi n = good_graph();
  idx(n, 1, 4, 1) = -3;
  expect_error(n, "head 1 row 4 col 1: index -3 out of range");
}

TEST(Validate, PadMismatchBothWays) {
  GraphAbi g = good_graph();
  // Row 0 of head 0 is [1, 4, 0] (cycle 1,4; self) with D=4 -> col 3 is a pad.
  ASSERT_EQ(idx(g, 0, 0, 3), -1);
  typ(g, 0, 0, 3) = static_cast<uint8_t>(EdgeType::kWindow);
  expect_error(g, "head 0 row 0 col 3: index -1 with edge type 2 (window)");
  GraphAbi h = good_graph();
  typ(h, 0, 0, 2) = static_cast<uint8_t>(EdgeType::kPad);
  expect_error(h, "head 0 row 0 col 2: index 0 with edge type 0 (pad)");
}

TEST(Validate, PadInMiddle) {
  GraphAbi g = good_graph();
  idx(g, 1, 0, 1) = -1;
  typ(g, 1, 0, 1) = 0;
  expect_error(g, "head 1 row 0 col 2: neighbour");
}

TEST(Validate, DuplicateNeighbour) {
  GraphAbi g = good_graph();
  // Head 0 row 3: cycle 2,4; window 2 (already cycle); self 3 -> [2,4,3,pad]. Duplicate 2 in col 2.
  idx(g, 0, 3, 2) = 2;
  expect_error(g, "head 0 row 3 col 2: duplicate neighbour 2");
}

TEST(Validate, BackboneDegree) {
  GraphAbi g = good_graph();
  typ(g, 1, 2, 0) = static_cast<uint8_t>(EdgeType::kWindow);
  expect_error(g, "head 1 row 2: 1 CYCLE neighbours, expected >= 2");
  EXPECT_TRUE(validate(g, {.enforce_hamiltonian = false}).is_ok());
}

TEST(Validate, BackboneDisconnected) {
  // Two 3-cycles {0,1,2} and {3,4,5} typed CYCLE: every node has 2 CYCLE neighbours, not connected.
  GraphAbi g;
  g.H = 1;
  g.T = 6;
  g.D = 2;
  g.neigh_idx = {1, 2, 0, 2, 0, 1, 4, 5, 3, 5, 3, 4};
  g.edge_type.assign(12, static_cast<uint8_t>(EdgeType::kCycle));
  expect_error(g, "head 0: cycle backbone disconnected, node 3");
  EXPECT_TRUE(validate(g, {.enforce_hamiltonian = false}).is_ok());
}

TEST(Validate, FirstErrorInRowOrderWins) {
  // Errors in several rows far apart: the message names the first one regardless of threads.
  // Large enough (H*T*D >= 2^18) that rows are split across threads.
  RowRules r{.T = 60000, .window = 4, .landmark_stride = 0, .include_self = true};
  std::vector<int32_t> perm(60000);
  for (int i = 0; i < 60000; ++i) perm[i] = i;
  auto g = build_head(r, {perm});
  ASSERT_TRUE(g);
  ASSERT_GE(g->H * g->T * g->D, 1 << 18);
  g->neigh_idx[59000 * g->D] = 99999;
  g->neigh_idx[1234 * g->D + 1] = 99999;
  expect_error(*g, "head 0 row 1234 col 1");
}

TEST(Validate, TwoNodeCycleNeedsOne) {
  RowRules r{.T = 2, .window = 0, .landmark_stride = 0, .include_self = true};
  auto g = build_head(r, {{0, 1}});
  ASSERT_TRUE(g);
  EXPECT_TRUE(validate(*g).is_ok()) << validate(*g).to_string();
}

}  // namespace
}  // namespace bna::graph
