// Topology::construct: the graph ABI built from the topology's cycles (rows match the graph row builder,
// meta is filled, validation passes), determinism across calls, and errors for bad T / routing.
#include <gtest/gtest.h>

#include "bna/graph.hpp"
#include "bna/topology.hpp"

namespace bna::topo {
namespace {

TEST(Construct, MatchesBuildHeadsOnTheSameCyclesAndFillsMeta) {
  for (Strategy s : {Strategy::kRandom, Strategy::kRegularPartition, Strategy::kEdgeDisjoint, Strategy::kCovering}) {
    for (int64_t T : {1, 2, 3, 7, 64, 1000}) {
      TopologyOptions o;
      o.n_heads = 3;
      o.strategy = s;
      o.num_cycles = (s != Strategy::kRegularPartition && s != Strategy::kCovering && T < 5) ? 1 : 2;
      o.seed = 17;
      o.window = 4;
      o.landmark_stride = 8;
      auto topo = Topology::create(o);
      ASSERT_TRUE(topo.has_value());
      auto g = topo->construct(T);
      ASSERT_TRUE(g.has_value()) << strategy_name(s) << " T=" << T << ": " << g.status().to_string();
      EXPECT_EQ(g->H, 3);
      EXPECT_EQ(g->T, T);
      EXPECT_EQ(g->meta.strategy, strategy_name(s));
      EXPECT_EQ(g->meta.seed, 17u);
      EXPECT_EQ(g->meta.window, 4);
      EXPECT_EQ(g->meta.landmark_stride, 8);
      auto cyc = topo->cycles(T);
      ASSERT_TRUE(cyc.has_value());
      EXPECT_EQ(g->meta.cycle_perms, *cyc);
      EXPECT_EQ(g->meta.num_cycles, static_cast<int>((*cyc)[0].size()));
      graph::RowRules rules;
      rules.T = T;
      rules.window = 4;
      rules.landmark_stride = 8;
      auto ref = graph::build_heads(rules, *cyc);
      ASSERT_TRUE(ref.has_value());
      EXPECT_EQ(g->D, ref->D);
      EXPECT_EQ(g->neigh_idx, ref->neigh_idx) << strategy_name(s) << " T=" << T;
      EXPECT_EQ(g->edge_type, ref->edge_type) << strategy_name(s) << " T=" << T;
      EXPECT_TRUE(graph::validate(*g, {3, T, true}).is_ok());
      // Determinism: constructing twice gives an identical graph.
      auto g2 = topo->construct(T);
      ASSERT_TRUE(g2.has_value());
      EXPECT_EQ(g->neigh_idx, g2->neigh_idx);
      EXPECT_EQ(g->edge_type, g2->edge_type);
    }
  }
}

TEST(Construct, CycleNeighboursAreThePermNeighbours) {
  TopologyOptions o;
  o.n_heads = 2;
  o.num_cycles = 1;
  o.window = 0;
  o.landmark_stride = 0;
  o.include_self = false;
  auto g = Topology::create(o)->construct(50);
  ASSERT_TRUE(g.has_value());
  ASSERT_EQ(g->D, 2);
  for (int64_t h = 0; h < 2; ++h) {
    std::vector<int32_t> prev, next;
    cycle_prev_next(g->meta.cycle_perms[h][0], prev, next);
    for (int64_t i = 0; i < 50; ++i) {
      const int32_t* row = g->row(h, i);
      EXPECT_EQ(std::min(row[0], row[1]), std::min(prev[i], next[i])) << "head " << h << " row " << i;
      EXPECT_EQ(std::max(row[0], row[1]), std::max(prev[i], next[i])) << "head " << h << " row " << i;
      EXPECT_EQ(g->row_types(h, i)[0], static_cast<uint8_t>(graph::EdgeType::kCycle));
    }
  }
}

TEST(Construct, GreedyWithRoutingAndErrors) {
  const int64_t T = 30, d = 4;
  std::vector<float> r(T * d);
  Rng rng(5);
  for (auto& x : r) x = static_cast<float>(rng.normal());
  std::vector<Routing> routing = {{r.data(), T, d}};
  TopologyOptions o;
  o.strategy = Strategy::kGreedy;
  auto topo = Topology::create(o);
  auto g = topo->construct(T, &routing);
  ASSERT_TRUE(g.has_value()) << g.status().to_string();
  EXPECT_EQ(g->meta.cycle_perms[0][0], *cycle_greedy(r.data(), T, d, 0));
  auto missing = topo->construct(T);
  ASSERT_FALSE(missing.has_value());
  EXPECT_NE(missing.status().message().find("greedy"), std::string::npos);
  auto zero = Topology::create(TopologyOptions{})->construct(0);
  ASSERT_FALSE(zero.has_value());
  EXPECT_NE(zero.status().message().find("T=0"), std::string::npos);
}

}  // namespace
}  // namespace bna::topo
