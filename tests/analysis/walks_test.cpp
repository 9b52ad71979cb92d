// Random-walk mixing, resilience, regularity, expansion and diameter on hand-checkable graphs.
#include <gtest/gtest.h>

#include <cmath>

#include "bna/analysis.hpp"
#include "bna/rng.hpp"
#include "bna/topology.hpp"

namespace bna::analysis {
namespace {

Csr from_edges(int64_t n, const std::vector<std::pair<int32_t, int32_t>>& e) {
  auto g = csr_from_edges(n, e);
  EXPECT_TRUE(g.has_value());
  return std::move(g).value();
}
Csr path(int64_t n) {
  std::vector<std::pair<int32_t, int32_t>> e;
  for (int64_t i = 0; i + 1 < n; ++i) e.push_back({(int32_t)i, (int32_t)(i + 1)});
  return from_edges(n, e);
}
Csr star(int64_t n) {  // hub 0 plus a triangle 1-2-3 so the graph is not bipartite
  std::vector<std::pair<int32_t, int32_t>> e{{1, 2}, {2, 3}, {3, 1}};
  for (int64_t i = 1; i < n; ++i) e.push_back({0, (int32_t)i});
  return from_edges(n, e);
}
Csr cycles_window(int64_t T, int k, int64_t w, uint64_t seed) {
  Rng rng(seed);
  std::vector<topo::Perm> c;
  for (int i = 0; i < k; ++i) c.push_back(topo::cycle_random(T, rng));
  auto g = csr_from_perms(c, T, w);
  EXPECT_TRUE(g.has_value());
  return std::move(g).value();
}

TEST(Mixing, Chi2IsNonIncreasingAndReachesDegreeStationary) {
  const Csr g = cycles_window(500, 1, 3, 11);
  MixingOptions o;
  o.steps = 80;
  auto m = mixing_curve(g, o);
  ASSERT_TRUE(m.has_value());
  ASSERT_EQ((int64_t)m->chi2.size(), 81);
  for (int64_t t = 0; t < o.steps; ++t) EXPECT_LE(m->chi2[t + 1], m->chi2[t] * (1 + 1e-12) + 1e-15) << "t=" << t;
  EXPECT_LT(m->chi2.back(), 1e-3 * m->chi2.front());
  ASSERT_GE(m->t_mix, 0);
  EXPECT_LE(m->t_mix, m->t_mix_bound) << "the spectral bound is an upper bound";
  for (int64_t t = 0; t <= o.steps; ++t) EXPECT_LE(4 * m->tv[t] * m->tv[t], m->chi2[t] * (1 + 1e-9) + 1e-15);
}

TEST(Mixing, IrregularGraphConvergesToDegreeLawNotUniform) {
  // A star is far from regular: the uniform law is never reached, pi ~ degree is (defect 10).
  const Csr g = star(20);
  MixingOptions o;
  o.steps = 200;
  o.num_sources = 20;
  auto m = mixing_curve(g, o);
  ASSERT_TRUE(m.has_value());
  EXPECT_LT(m->tv.back(), 1e-8);
  EXPECT_GE(m->t_mix, 0);
}

TEST(Mixing, NonLazyWalkOnBipartiteGraphNeverMixes) {
  const Csr g = path(10);
  MixingOptions o;
  o.lazy = false;
  o.steps = 100;
  auto m = mixing_curve(g, o);
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->t_mix, -1);
  EXPECT_GT(m->tv.back(), 0.4);
  EXPECT_TRUE(std::isinf(m->t_mix_bound));
  o.lazy = true;
  o.steps = 2000;
  auto lazy = mixing_curve(g, o);
  ASSERT_TRUE(lazy.has_value());
  EXPECT_GE(lazy->t_mix, 0);
  EXPECT_LE(lazy->t_mix, lazy->t_mix_bound);
}

TEST(Mixing, ArgumentsAreChecked) {
  const Csr g = path(5);
  MixingOptions o;
  o.epsilon = 1.5;
  EXPECT_FALSE(mixing_curve(g, o).has_value());
  EXPECT_FALSE(mixing_curve(path(1), {}).has_value());
}

TEST(Resilience, EndpointsAndDeterminism) {
  const Csr g = cycles_window(300, 2, 2, 5);
  auto r = resilience(g, {0.0, 0.5, 1.0}, 8, 42);
  ASSERT_TRUE(r.has_value());
  ASSERT_EQ(r->size(), 3u);
  EXPECT_DOUBLE_EQ((*r)[0].largest_component_mean, 1.0);
  EXPECT_DOUBLE_EQ((*r)[0].connected_rate, 1.0);
  EXPECT_DOUBLE_EQ((*r)[2].largest_component_mean, 1.0 / 300);
  EXPECT_DOUBLE_EQ((*r)[2].connected_rate, 0.0);
  EXPECT_LT((*r)[1].largest_component_mean, 1.0);
  EXPECT_GT((*r)[1].largest_component_mean, 1.0 / 300);
  auto again = resilience(g, {0.5}, 8, 42);
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ((*again)[0].largest_component_mean, (*r)[1].largest_component_mean);
  EXPECT_FALSE(resilience(g, {1.5}, 8, 0).has_value());
}

TEST(Regularity, MaxDeviationIsTheWorstPair) {
  // 4 clusters of 2 nodes. Inter-cluster edges: (A,B) x3 and one each for (A,C),(A,D),(B,C),(B,D),(C,D).
  // 8 inter edges over 24 pairs: density 1/3, expected per pair 4/3.
  // Deviations: AB |3-4/3|/(4/3) = 1.25, others 0.25. Max pair 1.25; max cluster mean (1.25+0.5)/3 = 0.583.
  const Csr g = from_edges(8, {{0, 2}, {0, 3}, {1, 2}, {0, 4}, {0, 6}, {2, 4}, {2, 6}, {4, 6}});
  auto r = regularity(g, 4, 1.0);
  ASSERT_TRUE(r.has_value());
  EXPECT_NEAR(r->global_density, 1.0 / 3, 1e-12);
  EXPECT_NEAR(r->max_deviation, 1.25, 1e-12);
  EXPECT_NEAR(r->max_cluster_mean_deviation, (1.25 + 0.25 + 0.25) / 3, 1e-12);
  EXPECT_NEAR(r->mean_deviation, (1.25 + 5 * 0.25) / 6, 1e-12);
  EXPECT_FALSE(r->is_epsilon_regular) << "one bad pair must break regularity even when row means pass";
  EXPECT_FALSE(regularity(g, 1, 0.25).has_value());
}

TEST(Expansion, CompleteGraphClosedForm) {
  const int64_t n = 16;
  std::vector<std::pair<int32_t, int32_t>> e;
  for (int a = 0; a < n; ++a)
    for (int b = a + 1; b < n; ++b) e.push_back({a, b});
  auto x = vertex_expansion(from_edges(n, e), 4, 3);
  ASSERT_TRUE(x.has_value());
  ASSERT_EQ(x->sizes, (std::vector<int64_t>{1, 2, 4, 8}));
  for (size_t k = 0; k < x->sizes.size(); ++k) {
    const double want = double(n - x->sizes[k]) / x->sizes[k];
    EXPECT_DOUBLE_EQ(x->min_by_size[k], want) << "size " << x->sizes[k];
    EXPECT_DOUBLE_EQ(x->mean_by_size[k], want) << "size " << x->sizes[k];
  }
  EXPECT_DOUBLE_EQ(x->min_expansion, 1.0);
}

TEST(Diameter, PathAndDisconnected) {
  auto d = effective_diameter(path(11), 11, 0);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->max_distance, 10);
  EXPECT_TRUE(d->is_connected);
  EXPECT_EQ(d->sources, 11);
  // All 110 ordered pairs: distance k occurs 2(11-k) times; 90th percentile (rank 99) is 8.
  EXPECT_DOUBLE_EQ(d->effective_diameter, 8.0);
  EXPECT_NEAR(d->mean_distance, 4.0, 1e-12);  // sum 2 sum_k k(11-k) = 440, / 110
  auto two = effective_diameter(from_edges(4, {{0, 1}, {2, 3}}), 4, 0);
  ASSERT_TRUE(two.has_value());
  EXPECT_FALSE(two->is_connected);
  EXPECT_EQ(two->max_distance, 1);
}

TEST(Components, CountsAndLargest) {
  auto c = connected_components(from_edges(7, {{0, 1}, {1, 2}, {3, 4}}));
  EXPECT_EQ(c.count, 4);
  EXPECT_EQ(c.largest, 3);
  EXPECT_EQ(c.label[0], c.label[2]);
  EXPECT_NE(c.label[0], c.label[3]);
}

}  // namespace
}  // namespace bna::analysis
