// Walecki decomposition, edge-disjoint cycles and covering: exhaustive structure checks for every T in
// [3, 200], every feasible k on small T, exact error ranges, and coverage accounting.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "bna/topology.hpp"

namespace bna::topo {
namespace {

// Pairs of K_T not covered by the cycles (naive T^2 bitmap, fine for T <= 200).
std::vector<std::pair<int, int>> uncovered_pairs(const std::vector<Perm>& cycles, int64_t T) {
  std::vector<uint8_t> cov(T * T, 0);
  for (const Perm& c : cycles)
    for (int64_t p = 0; p < T; ++p) {
      const int a = c[p], b = c[(p + 1) % T];
      cov[a * T + b] = cov[b * T + a] = 1;
    }
  std::vector<std::pair<int, int>> out;
  for (int a = 0; a < T; ++a)
    for (int b = a + 1; b < T; ++b)
      if (!cov[a * T + b]) out.emplace_back(a, b);
  return out;
}

TEST(Walecki, DecomposesKTForEveryTFrom3To200) {
  for (int64_t T = 3; T <= 200; ++T) {
    const auto cycles = cycles_walecki(T);
    ASSERT_EQ(static_cast<int64_t>(cycles.size()), (T - 1) / 2) << "T=" << T;
    ASSERT_EQ(max_edge_disjoint_cycles(T), (T - 1) / 2);
    for (size_t i = 0; i < cycles.size(); ++i)
      ASSERT_TRUE(validate_perm(cycles[i], T).is_ok()) << "T=" << T << " cycle " << i;
    ASSERT_TRUE(are_edge_disjoint(cycles, T)) << "T=" << T;
    ASSERT_EQ(count_covered_pairs(cycles, T), static_cast<int64_t>(cycles.size()) * T) << "T=" << T;
    const auto left = uncovered_pairs(cycles, T);
    if (T % 2 == 1) {
      EXPECT_TRUE(left.empty()) << "T=" << T;
    } else {  // the leftover of an even K_T is one perfect matching
      ASSERT_EQ(static_cast<int64_t>(left.size()), T / 2) << "T=" << T;
      std::vector<int> deg(T, 0);
      for (auto [a, b] : left) { ++deg[a]; ++deg[b]; }
      EXPECT_TRUE(std::all_of(deg.begin(), deg.end(), [](int x) { return x == 1; })) << "T=" << T;
    }
  }
  EXPECT_TRUE(cycles_walecki(2).empty());
  EXPECT_TRUE(cycles_walecki(1).empty());
  EXPECT_EQ(max_edge_disjoint_cycles(2), 0);
}

TEST(EdgeDisjoint, EveryFeasibleKSucceeds) {
  for (int64_t T = 1; T <= 41; ++T) {
    const int64_t kmax = T <= 2 ? 1 : (T - 1) / 2;
    for (int64_t k = 1; k <= kmax; ++k) {
      Rng rng(1000 + T * 31 + k);
      auto res = cycles_edge_disjoint(T, k, rng);
      ASSERT_TRUE(res.has_value()) << "T=" << T << " k=" << k << ": " << res.status().to_string();
      ASSERT_EQ(static_cast<int64_t>(res->size()), k) << "T=" << T << " k=" << k;
      for (const Perm& c : *res) ASSERT_TRUE(validate_perm(c, T).is_ok()) << "T=" << T << " k=" << k;
      ASSERT_TRUE(are_edge_disjoint(*res, T)) << "T=" << T << " k=" << k;
    }
  }
  for (int64_t T : {64, 1000, 1001}) {
    Rng rng(7);
    auto res = cycles_edge_disjoint(T, 20, rng);  // the original's rejection sampler fails at k >= 4
    ASSERT_TRUE(res.has_value()) << "T=" << T;
    EXPECT_TRUE(are_edge_disjoint(*res, T)) << "T=" << T;
    EXPECT_EQ(count_covered_pairs(*res, T), 20 * T) << "T=" << T;
  }
}

TEST(EdgeDisjoint, ErrorNamesKAndTheAcceptedRange) {
  Rng rng(0);
  auto too_many = cycles_edge_disjoint(6, 3, rng);
  ASSERT_FALSE(too_many.has_value());
  const std::string msg = too_many.status().message();
  EXPECT_NE(msg.find("k=3"), std::string::npos) << msg;
  EXPECT_NE(msg.find("1 <= k <= 2"), std::string::npos) << msg;
  EXPECT_FALSE(cycles_edge_disjoint(6, 0, rng).has_value());
  auto small = cycles_edge_disjoint(2, 2, rng);
  ASSERT_FALSE(small.has_value());
  EXPECT_NE(small.status().message().find("1 <= k <= 1"), std::string::npos) << small.status().message();
  EXPECT_FALSE(cycles_edge_disjoint(0, 1, rng).has_value());
}

TEST(EdgeDisjoint, RandomisedBySeedAndDeterministic) {
  Rng a(1), b(1), c(2);
  auto x = cycles_edge_disjoint(64, 4, a), y = cycles_edge_disjoint(64, 4, b), z = cycles_edge_disjoint(64, 4, c);
  ASSERT_TRUE(x.has_value() && y.has_value() && z.has_value());
  EXPECT_EQ(*x, *y);
  EXPECT_NE(*x, *z);
  // The relabelling means the hub is not always node T-1.
  std::set<int32_t> firsts;
  for (uint64_t s = 0; s < 16; ++s) {
    Rng r(s);
    firsts.insert((*cycles_edge_disjoint(64, 1, r))[0][0]);
  }
  EXPECT_GT(firsts.size(), 4u);
}

TEST(Covering, ReachesTargetAndReportsTrueCoverage) {
  struct Case { int64_t T, max_cycles; double target; };
  for (Case cs : {Case{7, 10, 1.0}, Case{64, 60, 0.99}, Case{64, 60, 1.0}, Case{4, 5, 1.0}, Case{100, 10, 0.99},
                  Case{33, 5, 0.5}}) {
    Rng rng(3);
    const CoveringResult res = cycles_covering(cs.T, cs.max_cycles, cs.target, rng);
    const int64_t total = cs.T * (cs.T - 1) / 2;
    for (const Perm& c : res.cycles) ASSERT_TRUE(validate_perm(c, cs.T).is_ok()) << "T=" << cs.T;
    EXPECT_LE(static_cast<int64_t>(res.cycles.size()), cs.max_cycles) << "T=" << cs.T;
    EXPECT_DOUBLE_EQ(res.coverage, double(count_covered_pairs(res.cycles, cs.T)) / double(total)) << "T=" << cs.T;
    if (static_cast<int64_t>(res.cycles.size()) < cs.max_cycles) {
      EXPECT_GE(res.coverage, cs.target) << "T=" << cs.T;
    }
  }
  Rng rng(0);
  const CoveringResult odd = cycles_covering(7, 10, 1.0, rng);
  EXPECT_EQ(odd.cycles.size(), 3u);  // odd K_7 is covered by its Walecki decomposition alone
  EXPECT_DOUBLE_EQ(odd.coverage, 1.0);
  const CoveringResult capped = cycles_covering(100, 10, 0.99, rng);
  EXPECT_EQ(capped.cycles.size(), 10u);
  EXPECT_DOUBLE_EQ(capped.coverage, 10.0 * 100 / 4950);
  const CoveringResult one = cycles_covering(1, 5, 0.99, rng);
  ASSERT_EQ(one.cycles.size(), 1u);
  EXPECT_EQ(one.cycles[0], (Perm{0}));
}

TEST(EdgeSets, CountAndDisjointnessOnSmallCases) {
  EXPECT_EQ(count_covered_pairs({{0, 1}, {1, 0}}, 2), 1);
  EXPECT_FALSE(are_edge_disjoint({{0, 1}, {1, 0}}, 2));
  EXPECT_TRUE(are_edge_disjoint({{0, 1}}, 2));
  EXPECT_EQ(count_covered_pairs({{0}}, 1), 0);
  EXPECT_TRUE(are_edge_disjoint({{0}, {0}}, 1));
  EXPECT_EQ(count_covered_pairs({{0, 1, 2, 3}, {0, 2, 1, 3}}, 4), 6);  // share (0,3) and (1,2)
  EXPECT_FALSE(are_edge_disjoint({{0, 1, 2, 3}, {0, 2, 1, 3}}, 4));
}

}  // namespace
}  // namespace bna::topo
