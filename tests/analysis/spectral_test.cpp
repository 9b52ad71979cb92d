// Spectra against closed forms (cycle, complete graph, path), dense vs Lanczos agreement on random
// cycle+window graphs, Cheeger bounds and Fiedler cuts.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numbers>

#include "bna/analysis.hpp"
#include "bna/rng.hpp"
#include "bna/topology.hpp"

namespace bna::analysis {
namespace {

Csr edges_graph(int64_t n, const std::vector<std::pair<int32_t, int32_t>>& e) {
  auto g = csr_from_edges(n, e);
  EXPECT_TRUE(g.has_value()) << g.status().to_string();
  return std::move(g).value();
}
Csr cycle_graph(int64_t n) {
  std::vector<std::pair<int32_t, int32_t>> e;
  for (int64_t i = 0; i < n; ++i) e.push_back({(int32_t)i, (int32_t)((i + 1) % n)});
  return edges_graph(n, e);
}
Csr path_graph(int64_t n) {
  std::vector<std::pair<int32_t, int32_t>> e;
  for (int64_t i = 0; i + 1 < n; ++i) e.push_back({(int32_t)i, (int32_t)(i + 1)});
  return edges_graph(n, e);
}
Csr complete_graph(int64_t n) {
  std::vector<std::pair<int32_t, int32_t>> e;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = i + 1; j < n; ++j) e.push_back({(int32_t)i, (int32_t)j});
  return edges_graph(n, e);
}
// `k` seeded random Hamiltonian cycles plus a past window of `w` tokens.
Csr random_cycle_window(int64_t T, int k, int64_t w, uint64_t seed) {
  Rng rng(seed);
  std::vector<topo::Perm> cycles;
  for (int c = 0; c < k; ++c) cycles.push_back(topo::cycle_random(T, rng));
  auto g = csr_from_perms(cycles, T, w);
  EXPECT_TRUE(g.has_value()) << g.status().to_string();
  return std::move(g).value();
}

SpectralOptions dense() { SpectralOptions o; o.method = EigenMethod::kDense; return o; }
SpectralOptions lanczos() { SpectralOptions o; o.method = EigenMethod::kLanczos; o.tol = 1e-10; return o; }

TEST(Csr, PermGraphSymmetrisesAndCollapsesMultiEdges) {
  // Two identical cycles on 5 nodes + window 1 (all window edges are cycle edges too): C_5 exactly.
  topo::Perm id{0, 1, 2, 3, 4};
  auto g = csr_from_perms({id, id}, 5, 1);
  ASSERT_TRUE(g.has_value());
  EXPECT_EQ(g->num_edges(), 5);
  for (int64_t i = 0; i < 5; ++i) EXPECT_EQ(g->degree(i), 2) << "node " << i;
  EXPECT_FALSE(csr_from_perms({{0, 1, 1}}, 3, 0).has_value());
  EXPECT_FALSE(csr_from_perms({id}, 5, -1).has_value());
}

TEST(Csr, AbiDropsSelfLoopsAndUnionsHeads) {
  graph::GraphAbi g;
  g.H = 2; g.T = 3; g.D = 2;
  // head 0: 0->{0}, 1->{0,1}, 2->{2}; head 1: 2->{1}
  g.neigh_idx = {0, -1, 0, 1, 2, -1, /*h1*/ -1, -1, -1, -1, 1, -1};
  g.edge_type.assign(12, 0);
  auto all = csr_from_abi(g);
  ASSERT_TRUE(all.has_value());
  EXPECT_EQ(all->num_edges(), 2);  // {0,1}, {1,2}
  auto h0 = csr_from_abi(g, 0);
  ASSERT_TRUE(h0.has_value());
  EXPECT_EQ(h0->num_edges(), 1);
  EXPECT_FALSE(csr_from_abi(g, 2).has_value());
  g.neigh_idx[0] = 3;
  auto bad = csr_from_abi(g);
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.status().message().find("index 3"), std::string::npos) << bad.status().message();
}

class CycleSpectrum : public ::testing::TestWithParam<int64_t> {};
TEST_P(CycleSpectrum, EigenvaluesAreTwoCos) {
  const int64_t n = GetParam();
  const Csr g = cycle_graph(n);
  auto ev = dense_eigenvalues(g, Operator::kAdjacency);
  ASSERT_TRUE(ev.has_value());
  std::vector<double> want;
  for (int64_t k = 0; k < n; ++k) want.push_back(2 * std::cos(2 * std::numbers::pi * k / n));
  std::sort(want.begin(), want.end());
  for (int64_t k = 0; k < n; ++k) EXPECT_NEAR((*ev)[k], want[k], 1e-10) << "n=" << n << " k=" << k;
  // |lambda2| includes the negative end: bipartite (even n) has gap 0; odd n has 2 - 2cos(pi/n).
  const double gap = n % 2 == 0 ? 0.0 : 2 - 2 * std::cos(std::numbers::pi / n);
  for (auto opt : {dense(), lanczos()}) {
    auto s = adjacency_spectrum(g, opt);
    ASSERT_TRUE(s.has_value());
    EXPECT_NEAR(s->lambda1, 2.0, 1e-8) << "n=" << n << " " << s->info.method;
    EXPECT_NEAR(s->spectral_gap, gap, 1e-8) << "n=" << n << " " << s->info.method;
    auto nrm = normalized_spectrum(g, opt);
    ASSERT_TRUE(nrm.has_value());
    EXPECT_NEAR(nrm->spectral_gap, gap / 2, 1e-8) << "n=" << n << " " << nrm->info.method;
    auto lap = laplacian_spectrum(g, opt);
    ASSERT_TRUE(lap.has_value());
    EXPECT_NEAR(lap->fiedler_value, 2 - 2 * std::cos(2 * std::numbers::pi / n), 1e-8) << "n=" << n;
  }
}
INSTANTIATE_TEST_SUITE_P(Analysis, CycleSpectrum, ::testing::Values(12, 13, 64, 101),
                         [](const auto& info) { return "n" + std::to_string(info.param); });

TEST(Spectral, CompleteGraph) {
  const int64_t n = 17;
  const Csr g = complete_graph(n);
  for (auto opt : {dense(), lanczos()}) {
    auto a = adjacency_spectrum(g, opt);
    ASSERT_TRUE(a.has_value());
    EXPECT_NEAR(a->lambda1, n - 1, 1e-9);
    EXPECT_NEAR(a->lambda2_abs, 1.0, 1e-9);
    EXPECT_NEAR(a->spectral_gap, n - 2, 1e-9);
    auto nr = normalized_spectrum(g, opt);
    ASSERT_TRUE(nr.has_value());
    EXPECT_NEAR(nr->spectral_gap, 1 - 1.0 / (n - 1), 1e-9) << nr->info.method;
    auto l = laplacian_spectrum(g, opt);
    ASSERT_TRUE(l.has_value());
    EXPECT_NEAR(l->fiedler_value, n, 1e-9) << l->info.method;
    EXPECT_NEAR(l->lambda_max, n, 1e-9) << l->info.method;
  }
}

TEST(Spectral, PathGraph) {
  const int64_t n = 40;
  const Csr g = path_graph(n);
  auto ev = dense_eigenvalues(g, Operator::kLaplacian);
  ASSERT_TRUE(ev.has_value());
  for (int64_t k = 0; k < n; ++k)
    EXPECT_NEAR((*ev)[k], 2 - 2 * std::cos(std::numbers::pi * k / n), 1e-10) << "k=" << k;
  for (auto opt : {dense(), lanczos()}) {
    auto l = laplacian_spectrum(g, opt);
    ASSERT_TRUE(l.has_value());
    EXPECT_NEAR(l->fiedler_value, 2 - 2 * std::cos(std::numbers::pi / n), 1e-9) << l->info.method;
    // The Fiedler vector of a path is monotone (cos(pi (i + 1/2) k / n) for k = 1).
    ASSERT_EQ((int64_t)l->fiedler_vector.size(), n);
    const double sgn = l->fiedler_vector[n - 1] > l->fiedler_vector[0] ? 1 : -1;
    for (int64_t i = 0; i + 1 < n; ++i) EXPECT_LT(0, sgn * (l->fiedler_vector[i + 1] - l->fiedler_vector[i]));
    // The sweep cut of a path is its middle edge: h = 1 / (n/2).
    EXPECT_NEAR(l->sweep_expansion, 2.0 / n, 1e-12);
    auto a = adjacency_spectrum(g, opt);
    ASSERT_TRUE(a.has_value());
    EXPECT_NEAR(a->lambda1, 2 * std::cos(std::numbers::pi / (n + 1)), 1e-9);
    EXPECT_NEAR(a->lambda_min, -a->lambda1, 1e-9);  // bipartite: symmetric spectrum
    EXPECT_NEAR(a->spectral_gap, 0.0, 1e-9);
  }
}

class DenseVsLanczos : public ::testing::TestWithParam<int64_t> {};
TEST_P(DenseVsLanczos, SameExtremes) {
  const int64_t T = GetParam();
  const Csr g = random_cycle_window(T, 2, 4, 1234 + T);
  auto ad = adjacency_spectrum(g, dense()), al = adjacency_spectrum(g, lanczos());
  ASSERT_TRUE(ad.has_value() && al.has_value());
  EXPECT_TRUE(al->info.converged) << "T=" << T << " residual " << al->info.max_residual;
  EXPECT_NEAR(ad->lambda1, al->lambda1, 1e-8) << "T=" << T;
  EXPECT_NEAR(ad->lambda2, al->lambda2, 1e-7) << "T=" << T;
  EXPECT_NEAR(ad->lambda_min, al->lambda_min, 1e-7) << "T=" << T;
  EXPECT_NEAR(ad->spectral_gap, al->spectral_gap, 1e-7) << "T=" << T;
  auto nd = normalized_spectrum(g, dense()), nl = normalized_spectrum(g, lanczos());
  ASSERT_TRUE(nd.has_value() && nl.has_value());
  EXPECT_NEAR(nd->lambda1, 1.0, 1e-10) << "T=" << T;
  EXPECT_NEAR(nd->lambda2, nl->lambda2, 1e-7) << "T=" << T;
  EXPECT_NEAR(nd->lambda_min, nl->lambda_min, 1e-7) << "T=" << T;
  EXPECT_NEAR(nd->spectral_gap, nl->spectral_gap, 1e-7) << "T=" << T;
  auto ld = laplacian_spectrum(g, dense()), ll = laplacian_spectrum(g, lanczos());
  ASSERT_TRUE(ld.has_value() && ll.has_value());
  EXPECT_NEAR(ld->fiedler_value, ll->fiedler_value, 1e-7) << "T=" << T;
  EXPECT_NEAR(ld->lambda_max, ll->lambda_max, 1e-7) << "T=" << T;
  double dot = 0;
  for (int64_t i = 0; i < T; ++i) dot += ld->fiedler_vector[i] * ll->fiedler_vector[i];
  EXPECT_NEAR(std::fabs(dot), 1.0, 1e-5) << "T=" << T << " (Fiedler vectors must agree up to sign)";
}
INSTANTIATE_TEST_SUITE_P(Analysis, DenseVsLanczos, ::testing::Values(64, 512),  // T=2000: analysis_slow
                         [](const auto& info) { return "T" + std::to_string(info.param); });

TEST(Spectral, CheegerBoundsHold) {
  for (int64_t T : {64, 300}) {
    const Csr g = random_cycle_window(T, 1, 2, 7 + T);
    auto l = laplacian_spectrum(g, dense());
    ASSERT_TRUE(l.has_value());
    EXPECT_LE(l->cheeger_lower, l->sweep_expansion + 1e-12) << "T=" << T;
    EXPECT_LE(l->sweep_expansion, l->cheeger_upper + 1e-12) << "T=" << T;
    EXPECT_NEAR(l->cheeger_upper, std::sqrt(2 * l->degree_max * l->fiedler_value), 1e-12);
  }
}

TEST(Spectral, DisconnectedGraphHasZeroFiedlerAndGap) {
  // Two disjoint triangles.
  const Csr g = edges_graph(6, {{0, 1}, {1, 2}, {2, 0}, {3, 4}, {4, 5}, {5, 3}});
  for (auto opt : {dense(), lanczos()}) {
    auto l = laplacian_spectrum(g, opt);
    ASSERT_TRUE(l.has_value());
    EXPECT_NEAR(l->fiedler_value, 0.0, 1e-9) << l->info.method;
    EXPECT_FALSE(l->is_well_connected);
    auto n = normalized_spectrum(g, opt);
    ASSERT_TRUE(n.has_value());
    EXPECT_NEAR(n->spectral_gap, 0.0, 1e-9) << n->info.method;
  }
}

TEST(Spectral, OptionsAreChecked) {
  const Csr g = cycle_graph(5000);
  SpectralOptions o = dense();
  auto r = adjacency_spectrum(g, o);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.status().message().find("T=5000"), std::string::npos) << r.status().message();
  o = lanczos();
  o.krylov_dim = 2;
  EXPECT_FALSE(adjacency_spectrum(g, o).has_value());
  EXPECT_FALSE(dense_eigenvalues(g, Operator::kAdjacency).has_value());
}

TEST(Fiedler, BarbellBridgeIsTheOnlyCutEdge) {
  // Two K_6 joined by the edge (5, 6).
  std::vector<std::pair<int32_t, int32_t>> e;
  for (int a = 0; a < 6; ++a)
    for (int b = a + 1; b < 6; ++b) { e.push_back({a, b}); e.push_back({a + 6, b + 6}); }
  e.push_back({5, 6});
  const Csr g = edges_graph(12, e);
  auto l = laplacian_spectrum(g, dense());
  ASSERT_TRUE(l.has_value());
  auto b = fiedler_bridges(g, l->fiedler_vector, 5);
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->cut_size, 1);
  ASSERT_EQ(b->cut_edges.size(), 1u);
  EXPECT_EQ(b->cut_edges[0].u, 5);
  EXPECT_EQ(b->cut_edges[0].v, 6);
  EXPECT_EQ(b->negative_side, 6);
  EXPECT_NEAR(l->sweep_expansion, 1.0 / 6, 1e-12);
  ASSERT_FALSE(b->proposed.empty());
  for (const auto& p : b->proposed) {
    EXPECT_LT(p.u, 6) << "proposed edges join the two sides";
    EXPECT_GE(p.v, 6);
  }
  EXPECT_FALSE(fiedler_bridges(g, std::vector<double>(5), 3).has_value());
}

}  // namespace
}  // namespace bna::analysis
