// Single-cycle strategies and permutation helpers: validity, hand-computed greedy / insertion tours
// (including tie-breaking), regular-partition round structure, and error messages.
#include <gtest/gtest.h>

#include <numeric>

#include "bna/topology.hpp"

namespace bna::topo {
namespace {

TEST(Perm, ValidateNamesTheBadPosition) {
  EXPECT_TRUE(validate_perm({2, 0, 1}, 3).is_ok());
  const Status dup = validate_perm({0, 1, 1}, 3);
  EXPECT_FALSE(dup.is_ok());
  EXPECT_NE(dup.message().find("position 2"), std::string::npos) << dup.message();
  const Status range = validate_perm({0, 3, 1}, 3);
  EXPECT_NE(range.message().find("position 1 holds 3"), std::string::npos) << range.message();
  EXPECT_FALSE(validate_perm({0, 1}, 3).is_ok());
  EXPECT_FALSE(validate_perm({}, 0).is_ok());
}

TEST(Perm, PrevNextAndInverseMatchTheDefinition) {
  const Perm perm = {2, 0, 3, 1};
  std::vector<int32_t> prev, next;
  cycle_prev_next(perm, prev, next);
  EXPECT_EQ(next, (std::vector<int32_t>{3, 2, 0, 1}));  // next[2]=0, next[0]=3, next[3]=1, next[1]=2
  EXPECT_EQ(prev, (std::vector<int32_t>{2, 3, 1, 0}));
  EXPECT_EQ(inverse_perm(perm), (Perm{1, 3, 0, 2}));
  cycle_prev_next({0}, prev, next);
  EXPECT_EQ(prev[0], 0);
  EXPECT_EQ(next[0], 0);
  cycle_prev_next({1, 0}, prev, next);
  EXPECT_EQ(prev, (std::vector<int32_t>{1, 0}));
  EXPECT_EQ(next, (std::vector<int32_t>{1, 0}));
}

TEST(CycleRandom, IsAShuffleOfIotaAndDeterministic) {
  // Both code paths (plain shuffle below 2^16, prefetched ring above) give Rng::shuffle's stream.
  for (int64_t T : {1, 2, 3, 33, 64, 1000, 65535, 65536, 300007}) {
    Rng a(5), b(5), c(5);
    const Perm p = cycle_random(T, a);
    EXPECT_TRUE(validate_perm(p, T).is_ok()) << "T=" << T;
    std::vector<int32_t> ref(static_cast<size_t>(T));
    std::iota(ref.begin(), ref.end(), 0);
    b.shuffle(ref);
    EXPECT_EQ(p, ref) << "T=" << T;
    std::vector<int32_t> into(static_cast<size_t>(T), -7);
    cycle_random_into(into.data(), T, c);
    EXPECT_EQ(into, ref) << "T=" << T;
    EXPECT_EQ(a.next_u64(), c.next_u64()) << "T=" << T;  // same number of draws consumed
  }
}

// r (d = 2): 0=(1,0) 1=(0,1) 2=(1,1) 3=(1,0). From 0, nodes 2 and 3 tie (1/sqrt 2) -> 2; from 2, nodes 1
// and 3 tie -> 1.
TEST(CycleGreedy, HandExampleWithTiesToLowestIndex) {
  const float r[] = {1, 0, 0, 1, 1, 1, 1, 0};
  auto p0 = cycle_greedy(r, 4, 2, 0);
  ASSERT_TRUE(p0.has_value()) << p0.status().to_string();
  EXPECT_EQ(*p0, (Perm{0, 2, 1, 3}));
  auto p3 = cycle_greedy(r, 4, 2, 3);
  ASSERT_TRUE(p3.has_value());
  EXPECT_EQ(*p3, (Perm{3, 0, 2, 1}));
  auto p1 = cycle_greedy(r, 1, 2, 0);
  ASSERT_TRUE(p1.has_value());
  EXPECT_EQ(*p1, (Perm{0}));
}

TEST(CycleGreedy, FollowsTheLargestSimilarityOnLongDims) {
  // d = 37 (not a multiple of the vector width), random r: every step must be the float64 argmax over
  // the unvisited nodes.
  const int64_t T = 50, d = 37;
  std::vector<float> r(T * d);
  Rng rng(11);
  for (auto& x : r) x = static_cast<float>(rng.normal());
  for (int64_t start : {0, 17, 49}) {
    auto p = cycle_greedy(r.data(), T, d, start);
    ASSERT_TRUE(p.has_value());
    ASSERT_TRUE(validate_perm(*p, T).is_ok());
    std::vector<bool> seen(T, false);
    seen[start] = true;
    int64_t cur = start;
    for (int64_t pos = 1; pos < T; ++pos) {
      double best = -1e300;
      int64_t arg = -1;
      for (int64_t j = 0; j < T; ++j) {
        if (seen[j]) continue;
        double s = 0;
        for (int64_t c = 0; c < d; ++c) s += double(r[cur * d + c]) * r[j * d + c];
        if (s > best) { best = s; arg = j; }
      }
      ASSERT_EQ((*p)[pos], arg) << "start=" << start << " pos=" << pos;
      seen[arg] = true;
      cur = arg;
    }
  }
}

TEST(CycleGreedy, RejectsBadArguments) {
  const float r[] = {1, 2, 3, 4};
  auto bad_start = cycle_greedy(r, 2, 2, 2);
  ASSERT_FALSE(bad_start.has_value());
  EXPECT_NE(bad_start.status().message().find("start=2"), std::string::npos) << bad_start.status().message();
  EXPECT_FALSE(cycle_greedy(r, 2, 2, -1).has_value());
  EXPECT_FALSE(cycle_greedy(r, 0, 2, 0).has_value());
  EXPECT_FALSE(cycle_greedy(r, 2, 0, 0).has_value());
  EXPECT_FALSE(cycle_greedy(nullptr, 2, 2, 0).has_value());
}

// d = 1, r = [1, 2, -1, -2], s(x,y) = r_x r_y. t=2: both edges of [0,1] give -1-2-2 = -5, first wins ->
// [0,2,1]. t=3: deltas (0,2): -2+2+1 = 1, (2,1): 2-4+2 = 0, (1,0): -4-2-2 = -8 -> after position 0.
TEST(OnlineInsertion, HandExample) {
  const float r[] = {1, 2, -1, -2};
  OnlineInsertion st;
  ASSERT_TRUE(st.insert_next(r, 1, 1).is_ok());
  EXPECT_EQ(st.perm(), (Perm{0}));
  ASSERT_TRUE(st.insert_next(r, 2, 1).is_ok());
  EXPECT_EQ(st.perm(), (Perm{0, 1}));
  ASSERT_TRUE(st.insert_next(r, 3, 1).is_ok());
  EXPECT_EQ(st.perm(), (Perm{0, 2, 1}));
  ASSERT_TRUE(st.insert_next(r, 4, 1).is_ok());
  EXPECT_EQ(st.perm(), (Perm{0, 3, 2, 1}));
  auto full = cycle_online_insertion(r, 4, 1);
  ASSERT_TRUE(full.has_value());
  EXPECT_EQ(*full, (Perm{0, 3, 2, 1}));
}

TEST(OnlineInsertion, ErrorsOnTooFewRowsOrBadState) {
  const float r[] = {1, 2, 3};
  OnlineInsertion st(Perm{0, 1});
  const Status s = st.insert_next(r, 2, 1);
  ASSERT_FALSE(s.is_ok());
  EXPECT_NE(s.message().find("rows"), std::string::npos) << s.message();
  OnlineInsertion bad(Perm{0, 0});
  EXPECT_FALSE(bad.insert_next(r, 3, 1).is_ok());
  EXPECT_FALSE(cycle_online_insertion(r, 0, 1).has_value());
}

TEST(OnlineInsertion, ProducesValidCyclesAtLargerT) {
  const int64_t T = 300, d = 16;
  std::vector<float> r(T * d);
  Rng rng(2);
  for (auto& x : r) x = static_cast<float>(rng.normal());
  auto p = cycle_online_insertion(r.data(), T, d);
  ASSERT_TRUE(p.has_value());
  EXPECT_TRUE(validate_perm(*p, T).is_ok());
  EXPECT_EQ((*p)[0], 0);
}

TEST(RegularPartition, EveryRoundVisitsEachClusterOnce) {
  // T divisible by k: round r occupies positions [r k, (r+1) k) and holds one node of every cluster.
  for (uint64_t seed : {0ull, 1ull, 99ull}) {
    const int64_t T = 64, k = 8;
    Rng rng(seed);
    const Perm p = cycle_regular_partition(T, k, rng);
    ASSERT_TRUE(validate_perm(p, T).is_ok());
    int same = 0;
    for (int64_t round = 0; round < T / k; ++round) {
      std::vector<int> hits(k, 0);
      for (int64_t j = 0; j < k; ++j) ++hits[p[round * k + j] / (T / k)];
      for (int64_t c = 0; c < k; ++c) EXPECT_EQ(hits[c], 1) << "seed=" << seed << " round=" << round;
    }
    for (int64_t i = 0; i < T; ++i) same += p[i] / (T / k) == p[(i + 1) % T] / (T / k);
    EXPECT_LE(same, T / k) << "seed=" << seed;  // only round boundaries can repeat a cluster
  }
}

TEST(RegularPartition, UnevenClustersClampedKAndDeterminism) {
  for (int64_t T : {1, 2, 3, 7, 1000}) {
    for (int64_t k : {1, 3, 8, 5000}) {
      Rng a(3), b(3);
      const Perm p = cycle_regular_partition(T, k, a);
      EXPECT_TRUE(validate_perm(p, T).is_ok()) << "T=" << T << " k=" << k;
      EXPECT_EQ(p, cycle_regular_partition(T, k, b)) << "T=" << T << " k=" << k;
    }
  }
  // T=10, k=3: clusters {0..3}, {4..6}, {7..9}; the first three positions come from distinct clusters.
  Rng rng(4);
  const Perm p = cycle_regular_partition(10, 3, rng);
  auto cl = [](int32_t v) { return v < 4 ? 0 : (v < 7 ? 1 : 2); };
  EXPECT_NE(cl(p[0]), cl(p[1]));
  EXPECT_NE(cl(p[1]), cl(p[2]));
  EXPECT_NE(cl(p[0]), cl(p[2]));
  EXPECT_EQ(cl(p[9]), 0);  // the last round holds only the cluster with the extra node
}

}  // namespace
}  // namespace bna::topo
