// Topology runtime: option validation, property sweeps over T x seed x strategy (valid cycles, degree 2,
// edge-disjointness, determinism by seed, perms-only == cycles), routing errors and seed sensitivity.
#include <gtest/gtest.h>

#include <string>

#include "bna/threads.hpp"
#include "bna/topology.hpp"

namespace bna::topo {
namespace {

TopologyOptions opts(Strategy s, int64_t k, uint64_t seed, int64_t H = 3) {
  TopologyOptions o;
  o.n_heads = H;
  o.strategy = s;
  o.num_cycles = k;
  o.seed = seed;
  return o;
}

struct SweepCase {
  Strategy strategy;
  int64_t k;
  bool edge_disjoint;  // options.edge_disjoint (random only)
  int64_t T;
  uint64_t seed;
};

std::string case_name(const testing::TestParamInfo<SweepCase>& info) {
  const SweepCase& c = info.param;
  return std::string(strategy_name(c.strategy)) + "_k" + std::to_string(c.k) + (c.edge_disjoint ? "_ed" : "_ind") +
         "_T" + std::to_string(c.T) + "_seed" + std::to_string(c.seed);
}

class TopologySweep : public testing::TestWithParam<SweepCase> {};

TEST_P(TopologySweep, CyclesAreValidDeterministicAndMatchPermsOnly) {
  const SweepCase c = GetParam();
  TopologyOptions o = opts(c.strategy, c.k, c.seed);
  o.edge_disjoint = c.edge_disjoint;
  o.regular_num_clusters = 5;
  auto topo = Topology::create(o);
  ASSERT_TRUE(topo.has_value()) << topo.status().to_string();
  const bool wants_disjoint = c.strategy == Strategy::kEdgeDisjoint ||
                              (c.strategy == Strategy::kRandom && c.k > 1 && c.edge_disjoint);
  const int64_t kmax = c.T <= 2 ? 1 : (c.T - 1) / 2;
  auto cyc = topo->cycles(c.T);
  if (wants_disjoint && c.k > kmax) {
    ASSERT_FALSE(cyc.has_value());
    EXPECT_NE(cyc.status().message().find("k=" + std::to_string(c.k)), std::string::npos) << cyc.status().message();
    EXPECT_FALSE(topo->construct_perms_only(c.T).has_value());
    return;
  }
  ASSERT_TRUE(cyc.has_value()) << cyc.status().to_string();
  ASSERT_EQ(static_cast<int64_t>(cyc->size()), o.n_heads);
  const size_t k = (*cyc)[0].size();
  if (c.strategy != Strategy::kCovering) {
    EXPECT_EQ(static_cast<int64_t>(k), c.k);
  }
  for (int64_t h = 0; h < o.n_heads; ++h) {
    ASSERT_EQ((*cyc)[h].size(), k) << "head " << h;
    for (const Perm& p : (*cyc)[h]) {
      ASSERT_TRUE(validate_perm(p, c.T).is_ok()) << "head " << h;
      std::vector<int32_t> prev, next;
      cycle_prev_next(p, prev, next);
      for (int64_t i = 0; i < c.T; ++i) {  // degree 2: two distinct neighbours, neither the node itself
        if (c.T >= 3) {
          ASSERT_NE(prev[i], next[i]) << "head " << h << " node " << i;
          ASSERT_NE(prev[i], i);
        } else if (c.T == 2) {
          ASSERT_EQ(prev[i], 1 - i);
        }
      }
    }
    if (wants_disjoint) {
      EXPECT_TRUE(are_edge_disjoint((*cyc)[h], c.T)) << "head " << h;
    }
  }
  if (c.strategy == Strategy::kCovering) {
    for (int64_t h = 0; h < o.n_heads; ++h) {
      const double cov = c.T <= 1 ? 1.0 : double(count_covered_pairs((*cyc)[h], c.T)) / (c.T * (c.T - 1) / 2.0);
      if (static_cast<int64_t>(k) < c.k) {
        EXPECT_GE(cov, o.coverage_target) << "head " << h;
      }
    }
  }
  // Determinism: a second call (and a second Topology) gives identical cycles.
  auto again = topo->cycles(c.T);
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(*cyc, *again);
  auto topo2 = Topology::create(o);
  EXPECT_EQ(*cyc, *topo2->cycles(c.T));
  // Perms-only holds the same cycles and their inverses.
  auto po = topo->construct_perms_only(c.T);
  ASSERT_TRUE(po.has_value()) << po.status().to_string();
  ASSERT_EQ(po->num_cycles, static_cast<int64_t>(k));
  for (int64_t h = 0; h < o.n_heads; ++h)
    for (size_t j = 0; j < k; ++j) {
      const Perm& p = (*cyc)[h][j];
      ASSERT_TRUE(std::equal(p.begin(), p.end(), po->perm_of(h, j))) << "head " << h << " cycle " << j;
      const Perm inv = inverse_perm(p);
      ASSERT_TRUE(std::equal(inv.begin(), inv.end(), po->inv_of(h, j))) << "head " << h << " cycle " << j;
    }
}

std::vector<SweepCase> sweep_cases() {
  std::vector<SweepCase> out;
  for (int64_t T : {1, 2, 3, 4, 5, 7, 64, 1000})
    for (uint64_t seed : {0ull, 1ull, 12345ull}) {
      out.push_back({Strategy::kRandom, 1, true, T, seed});
      out.push_back({Strategy::kRandom, 3, true, T, seed});
      out.push_back({Strategy::kRandom, 3, false, T, seed});
      out.push_back({Strategy::kRegularPartition, 2, true, T, seed});
      out.push_back({Strategy::kEdgeDisjoint, 1, true, T, seed});
      out.push_back({Strategy::kEdgeDisjoint, 2, true, T, seed});
      out.push_back({Strategy::kCovering, 4, true, T, seed});
    }
  return out;
}

INSTANTIATE_TEST_SUITE_P(Strategies, TopologySweep, testing::ValuesIn(sweep_cases()), case_name);

TEST(Topology, DifferentSeedsAndHeadsDiffer) {
  for (Strategy s : {Strategy::kRandom, Strategy::kRegularPartition, Strategy::kEdgeDisjoint, Strategy::kCovering}) {
    for (int64_t T : {64, 1000}) {
      auto a = Topology::create(opts(s, 2, 1))->cycles(T);
      auto b = Topology::create(opts(s, 2, 2))->cycles(T);
      ASSERT_TRUE(a.has_value() && b.has_value());
      EXPECT_NE(*a, *b) << strategy_name(s) << " T=" << T;
      EXPECT_NE((*a)[0], (*a)[1]) << strategy_name(s) << " T=" << T;
    }
  }
}

TEST(Topology, HeadSeedRuleIsSeedPlus7919H) {
  // Head 2 of seed s is head 0 of seed s + 2*7919, and matches the free function on a fresh Rng.
  auto multi = Topology::create(opts(Strategy::kRandom, 1, 5, 3))->cycles(100);
  auto single = Topology::create(opts(Strategy::kRandom, 1, 5 + 2 * 7919, 1))->cycles(100);
  ASSERT_TRUE(multi.has_value() && single.has_value());
  EXPECT_EQ((*multi)[2], (*single)[0]);
  Rng rng(head_seed(5, 1));
  EXPECT_EQ((*multi)[1][0], cycle_random(100, rng));
}

TEST(Topology, IndependentOfThreadCount) {
  const TopologyOptions o = opts(Strategy::kEdgeDisjoint, 3, 9, 8);
  set_num_threads(1);
  auto one = Topology::create(o)->construct_perms_only(500);
  set_num_threads(0);
  auto all = Topology::create(o)->construct_perms_only(500);
  ASSERT_TRUE(one.has_value() && all.has_value());
  EXPECT_EQ(one->perm, all->perm);
  EXPECT_EQ(one->inv, all->inv);
}

TEST(Topology, GreedyAndOnlineInsertionUseRouting) {
  const int64_t T = 40, d = 8, H = 2;
  std::vector<float> r(H * T * d);
  Rng rng(1);
  for (auto& x : r) x = static_cast<float>(rng.normal());
  std::vector<Routing> routing = {{r.data(), T, d}, {r.data() + T * d, T, d}};

  auto greedy = Topology::create(opts(Strategy::kGreedy, 2, 0, H));
  ASSERT_TRUE(greedy.has_value());
  auto g = greedy->cycles(T, &routing);
  ASSERT_TRUE(g.has_value()) << g.status().to_string();
  for (int64_t h = 0; h < H; ++h)
    for (int64_t c = 0; c < 2; ++c) {
      auto ref = cycle_greedy(routing[h].data, T, d, (997 * c + h) % T);
      EXPECT_EQ((*g)[h][c], *ref) << "head " << h << " cycle " << c;
    }
  auto missing = greedy->cycles(T);
  ASSERT_FALSE(missing.has_value());
  EXPECT_NE(missing.status().message().find("greedy"), std::string::npos) << missing.status().message();
  auto po = greedy->construct_perms_only(T);
  ASSERT_FALSE(po.has_value());
  EXPECT_NE(po.status().message().find("greedy"), std::string::npos);
  std::vector<Routing> wrong_T = {{r.data(), T - 1, d}, {r.data(), T, d}};
  auto bad = greedy->cycles(T, &wrong_T);
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.status().message().find("routing[0]"), std::string::npos) << bad.status().message();
  std::vector<Routing> short_list = {{r.data(), T, d}};
  EXPECT_FALSE(greedy->cycles(T, &short_list).has_value());

  auto online = Topology::create(opts(Strategy::kOnlineInsertion, 1, 0, H));
  ASSERT_TRUE(online.has_value());
  auto oi = online->cycles(T, &routing);
  ASSERT_TRUE(oi.has_value());
  for (int64_t h = 0; h < H; ++h) EXPECT_EQ((*oi)[h][0], *cycle_online_insertion(routing[h].data, T, d));
  auto oi_missing = online->cycles(T);
  ASSERT_FALSE(oi_missing.has_value());
  EXPECT_NE(oi_missing.status().message().find("online_insertion"), std::string::npos);
}

TEST(Topology, CreateRejectsBadOptionsWithClearMessages) {
  auto expect_error = [](TopologyOptions o, const std::string& needle) {
    auto t = Topology::create(o);
    ASSERT_FALSE(t.has_value()) << needle;
    EXPECT_NE(t.status().message().find(needle), std::string::npos) << t.status().message();
  };
  TopologyOptions o;
  o.window = -1;
  expect_error(o, "window=-1");
  o = {};
  o.landmark_stride = -2;
  expect_error(o, "landmark_stride=-2");
  o = {};
  o.n_heads = 0;
  expect_error(o, "n_heads=0");
  o = {};
  o.num_cycles = 0;
  expect_error(o, "num_cycles=0");
  o = {};
  o.regular_num_clusters = 0;
  expect_error(o, "regular_num_clusters=0");
  o = {};
  o.coverage_target = 1.5;
  expect_error(o, "coverage_target");
  o = {};
  o.strategy = Strategy::kOnlineInsertion;
  o.num_cycles = 2;
  expect_error(o, "online_insertion");
}

TEST(Topology, RejectsBadTAndTooManyDisjointCycles) {
  auto t = Topology::create(opts(Strategy::kEdgeDisjoint, 5, 0));
  ASSERT_TRUE(t.has_value());
  auto zero = t->cycles(0);
  ASSERT_FALSE(zero.has_value());
  EXPECT_NE(zero.status().message().find("T=0"), std::string::npos);
  EXPECT_FALSE(t->construct_perms_only(0).has_value());
  EXPECT_FALSE(t->construct_perms_only(-3).has_value());
  auto many = t->cycles(10);  // floor(9/2) = 4 < 5
  ASSERT_FALSE(many.has_value());
  EXPECT_NE(many.status().message().find("k=5"), std::string::npos) << many.status().message();
  EXPECT_NE(many.status().message().find("1 <= k <= 4"), std::string::npos) << many.status().message();
  EXPECT_TRUE(t->cycles(11).has_value());
}

TEST(Topology, ParseStrategyRoundTripsAndListsNames) {
  for (Strategy s : {Strategy::kRandom, Strategy::kGreedy, Strategy::kOnlineInsertion, Strategy::kRegularPartition,
                     Strategy::kEdgeDisjoint, Strategy::kCovering}) {
    auto p = parse_strategy(strategy_name(s));
    ASSERT_TRUE(p.has_value());
    EXPECT_EQ(*p, s);
  }
  auto bad = parse_strategy("hamiltonian");
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.status().message().find("'hamiltonian'"), std::string::npos);
  EXPECT_NE(bad.status().message().find("regular_partition"), std::string::npos);
  EXPECT_TRUE(strategy_needs_routing(Strategy::kGreedy));
  EXPECT_TRUE(strategy_needs_routing(Strategy::kOnlineInsertion));
  EXPECT_FALSE(strategy_needs_routing(Strategy::kCovering));
}

}  // namespace
}  // namespace bna::topo
