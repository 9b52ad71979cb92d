// Causal reachability, causal distances, pair coverage and the composite report.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "bna/analysis.hpp"
#include "bna/graph.hpp"
#include "bna/rng.hpp"
#include "bna/topology.hpp"

namespace bna::analysis {
namespace {

// Rows where each i lists only i-1: information moves one position per layer.
CausalRows chain(int64_t T) {
  CausalRows r;
  r.T = T;
  r.offsets.assign(T + 1, 0);
  for (int64_t i = 0; i < T; ++i) {
    if (i > 0) r.preds.push_back(static_cast<int32_t>(i - 1));
    r.offsets[i + 1] = static_cast<int64_t>(r.preds.size());
  }
  return r;
}

graph::GraphAbi build(int64_t T, int64_t window, int num_cycles, uint64_t seed,
                      const std::vector<std::vector<int32_t>>* rewire = nullptr) {
  Rng rng(seed);
  std::vector<topo::Perm> cycles;
  for (int c = 0; c < num_cycles; ++c) cycles.push_back(topo::cycle_random(T, rng));
  graph::RowRules rules;
  rules.T = T;
  rules.window = window;
  rules.landmark_stride = 0;
  auto g = graph::build_head(rules, cycles, rewire);
  EXPECT_TRUE(g.has_value()) << g.status().to_string();
  return std::move(g).value();
}

TEST(Reachability, ChainMovesOnePositionPerLayer) {
  const int64_t T = 9;
  ReachabilityOptions o;
  o.max_layers = 10;
  auto r = causal_reachability(T, [&](int64_t) -> Expected<CausalRows> { return chain(T); }, o);
  ASSERT_TRUE(r.has_value());
  ASSERT_EQ((int64_t)r->mean_coverage.size(), 10);
  for (int64_t L = 1; L <= 10; ++L) {
    double mean = 0, mn = 1;
    for (int64_t i = 1; i < T; ++i) {
      const double c = double(std::min(L, i)) / i;
      mean += c / (T - 1);
      mn = std::min(mn, c);
    }
    EXPECT_NEAR(r->mean_coverage[L - 1], mean, 1e-12) << "L=" << L;
    EXPECT_NEAR(r->min_coverage[L - 1], mn, 1e-12) << "L=" << L;
  }
  EXPECT_EQ(r->layers_to_full, T - 1);
  EXPECT_EQ(r->layers_to_p95, T - 1);  // coverage (i-1)/i < 0.95 for i <= 19, so all of them need full
  auto d = causal_diameter(chain(T), 100, 0);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->max_distance, T - 1);
  EXPECT_DOUBLE_EQ(d->unreachable_fraction, 0.0);
}

TEST(Reachability, CycleHelpsOverWindowOnly) {
  const int64_t T = 512, W = 4;
  ReachabilityOptions o;
  o.max_layers = 12;
  auto window_only = causal_reachability({build(T, W, 0, 1)}, o);
  auto with_cycle = causal_reachability({build(T, W, 1, 1)}, o);
  ASSERT_TRUE(window_only.has_value() && with_cycle.has_value());
  // Window only: after L layers i sees exactly min(L*W, i) tokens of its prefix.
  for (int64_t L = 1; L <= 12; ++L) {
    double mean = 0;
    for (int64_t i = 1; i < T; ++i) mean += double(std::min(L * W, i)) / i / (T - 1);
    EXPECT_NEAR(window_only->mean_coverage[L - 1], mean, 1e-12) << "L=" << L;
    EXPECT_GE(with_cycle->mean_coverage[L - 1], window_only->mean_coverage[L - 1]) << "L=" << L;
  }
  EXPECT_GT(with_cycle->mean_coverage[11], 2 * window_only->mean_coverage[11]);
  EXPECT_EQ(window_only->layers_to_p95, -1);
  auto dw = causal_diameter(*causal_rows_from_abi(build(T, W, 0, 1)), 32, 0);
  auto dc = causal_diameter(*causal_rows_from_abi(build(T, W, 1, 1)), 32, 0);
  ASSERT_TRUE(dw.has_value() && dc.has_value());
  EXPECT_LT(dc->mean_distance, dw->mean_distance);
}

TEST(Reachability, PerLayerGraphsAlternate) {
  // Layer graphs differ: even layers window 1, odd layers window 3. Reach after 2 layers: 1 + 3 = 4.
  const int64_t T = 64;
  std::vector<graph::GraphAbi> layers{build(T, 1, 0, 0), build(T, 3, 0, 0)};
  ReachabilityOptions o;
  o.max_layers = 4;
  auto r = causal_reachability(layers, o);
  ASSERT_TRUE(r.has_value());
  auto reach = [&](int64_t L) {
    double mean = 0;
    const int64_t seen = (L / 2) * 4 + (L % 2) * 1;
    for (int64_t i = 1; i < T; ++i) mean += double(std::min(seen, i)) / i / (T - 1);
    return mean;
  };
  for (int64_t L = 1; L <= 4; ++L) EXPECT_NEAR(r->mean_coverage[L - 1], reach(L), 1e-12) << "L=" << L;
}


// Reference reachability: one byte per (position, key), the definition written out directly.
Reachability reference_reachability(int64_t T, const std::vector<CausalRows>& layers, int64_t max_layers) {
  std::vector<std::vector<uint8_t>> cur(T, std::vector<uint8_t>(T, 0));
  for (int64_t i = 0; i < T; ++i) cur[i][i] = 1;
  Reachability r;
  r.T = T;
  for (int64_t l = 0; l < max_layers; ++l) {
    const CausalRows& cr = layers[l % layers.size()];
    auto nxt = cur;
    for (int64_t i = 0; i < T; ++i)
      for (int64_t e = cr.offsets[i]; e < cr.offsets[i + 1]; ++e)
        for (int64_t k = 0; k < T; ++k) nxt[i][k] |= cur[cr.preds[e]][k];
    cur.swap(nxt);
    double mean = 0, mn = 1;
    int64_t seeing = 0, full = 0;
    for (int64_t i = 1; i < T; ++i) {
      int64_t pop = 0;
      for (int64_t k = 0; k < T; ++k) pop += cur[i][k];
      const double c = double(pop - 1) / double(i);
      mean += c;
      mn = std::min(mn, c);
      seeing += c >= 0.95;
      full += c >= 1.0;
    }
    const int64_t npos = T - 1;
    r.mean_coverage.push_back(npos ? mean / npos : 1.0);
    r.min_coverage.push_back(npos ? mn : 1.0);
    r.fraction_seeing.push_back(npos ? double(seeing) / npos : 1.0);
    if (r.layers_to_p95 < 0 && r.fraction_seeing.back() >= 0.95) r.layers_to_p95 = l + 1;
    if (r.layers_to_full < 0 && full == npos) r.layers_to_full = l + 1;
  }
  return r;
}

// Random causal rows: a window of `w` (a run of predecessors), landmarks every `stride`, and `extra`
// random earlier positions per row; sorted, unique.
CausalRows random_rows(int64_t T, int64_t w, int64_t stride, int64_t extra, Rng& rng) {
  CausalRows r;
  r.T = T;
  r.offsets.assign(T + 1, 0);
  for (int64_t i = 0; i < T; ++i) {
    std::vector<int32_t> p;
    for (int64_t j = std::max<int64_t>(0, i - w); j < i; ++j) p.push_back(static_cast<int32_t>(j));
    if (stride > 0)
      for (int64_t j = 0; j < i; j += stride) p.push_back(static_cast<int32_t>(j));
    for (int64_t e = 0; e < extra && i > 0; ++e) p.push_back(static_cast<int32_t>(rng.uniform01() * i) % i);
    std::sort(p.begin(), p.end());
    p.erase(std::unique(p.begin(), p.end()), p.end());
    r.preds.insert(r.preds.end(), p.begin(), p.end());
    r.offsets[i + 1] = static_cast<int64_t>(r.preds.size());
  }
  return r;
}

struct ReachCase {
  int64_t T, w, stride, extra, layers;
};

class ReachabilityVsReference : public ::testing::TestWithParam<ReachCase> {};

TEST_P(ReachabilityVsReference, SameCurves) {
  const ReachCase c = GetParam();
  const std::string cfg = "T=" + std::to_string(c.T) + " w=" + std::to_string(c.w) + " stride=" +
                          std::to_string(c.stride) + " extra=" + std::to_string(c.extra);
  Rng rng(c.T * 31 + c.w);
  // Two layer graphs used alternately: the given one and one with half the window and other extras.
  std::vector<CausalRows> layers{random_rows(c.T, c.w, c.stride, c.extra, rng),
                                 random_rows(c.T, c.w / 2, 0, c.extra + 1, rng)};
  ReachabilityOptions o;
  o.max_layers = c.layers;
  auto got = causal_reachability(c.T, [&](int64_t l) -> Expected<CausalRows> { return layers[l % 2]; }, o);
  ASSERT_TRUE(got.has_value()) << cfg;
  const Reachability want = reference_reachability(c.T, layers, c.layers);
  ASSERT_EQ(got->mean_coverage.size(), want.mean_coverage.size()) << cfg;
  for (size_t L = 0; L < want.mean_coverage.size(); ++L) {
    // Same pop counts -> the same doubles, summed in the same order: exact equality.
    EXPECT_EQ(got->mean_coverage[L], want.mean_coverage[L]) << cfg << " L=" << L + 1;
    EXPECT_EQ(got->min_coverage[L], want.min_coverage[L]) << cfg << " L=" << L + 1;
    EXPECT_EQ(got->fraction_seeing[L], want.fraction_seeing[L]) << cfg << " L=" << L + 1;
  }
  EXPECT_EQ(got->layers_to_p95, want.layers_to_p95) << cfg;
  EXPECT_EQ(got->layers_to_full, want.layers_to_full) << cfg;
}

INSTANTIATE_TEST_SUITE_P(Analysis, ReachabilityVsReference,
                         ::testing::Values(ReachCase{1, 0, 0, 0, 3}, ReachCase{2, 1, 0, 0, 3}, ReachCase{63, 4, 0, 1, 6},
                                           ReachCase{64, 8, 0, 0, 9}, ReachCase{65, 64, 0, 0, 3},
                                           ReachCase{200, 5, 0, 1, 12}, ReachCase{257, 16, 7, 0, 8},
                                           ReachCase{300, 0, 0, 2, 10}, ReachCase{511, 70, 0, 1, 6},
                                           ReachCase{700, 3, 0, 0, 40}, ReachCase{600, 530, 0, 1, 3},
                                           ReachCase{1100, 9, 100, 1, 12}),
                         [](const auto& info) {
                           const ReachCase& c = info.param;
                           return "T" + std::to_string(c.T) + "_w" + std::to_string(c.w) + "_s" +
                                  std::to_string(c.stride) + "_x" + std::to_string(c.extra);
                         });

TEST(Reachability, ErrorsNameTheArgument) {
  ReachabilityOptions o;
  o.max_T = 100;
  auto r = causal_reachability(200, [](int64_t) -> Expected<CausalRows> { return CausalRows{}; }, o);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.status().message().find("T=200"), std::string::npos);
  auto bad = causal_reachability(10, [](int64_t) -> Expected<CausalRows> { return chain(9); }, {});
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.status().message().find("layer 0"), std::string::npos) << bad.status().message();
  EXPECT_FALSE(causal_reachability(std::vector<graph::GraphAbi>{}, {}).has_value());
}

TEST(Coverage, CausalOnlyCountsOnlyTheLaterRow) {
  const int64_t T = 64;
  // One-sided rewires: node i lists i + 7 (a future token) and nobody lists it back.
  std::vector<std::vector<int32_t>> rewire(T);
  for (int64_t i = 0; i + 7 < T; ++i) rewire[i].push_back(static_cast<int32_t>(i + 7));
  const graph::GraphAbi g = build(T, 2, 1, 3, &rewire);
  auto full = edge_coverage(g, false), causal = edge_coverage(g, true);
  ASSERT_TRUE(full.has_value() && causal.has_value());
  EXPECT_EQ(full->total_pairs, T * (T - 1) / 2);
  EXPECT_LT(causal->fraction, full->fraction);
  EXPECT_LT(causal->covered, full->covered);
  // Without the one-sided rewires the rows are symmetric for cycle edges: both modes agree.
  const graph::GraphAbi sym = build(T, 0, 2, 3);
  auto fs = edge_coverage(sym, false), cs = edge_coverage(sym, true);
  ASSERT_TRUE(fs.has_value() && cs.has_value());
  EXPECT_EQ(fs->covered, cs->covered);
}

TEST(Coverage, WaleckiCyclesCoverEveryPair) {
  const int64_t T = 11;  // odd: (T-1)/2 = 5 edge-disjoint cycles decompose K_11
  auto cycles = topo::cycles_walecki(T);
  ASSERT_EQ(cycles.size(), 5u);
  auto c = edge_coverage(cycles, T, true);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->covered, T * (T - 1) / 2);
  EXPECT_DOUBLE_EQ(c->fraction, 1.0);
  auto one = edge_coverage({cycles[0]}, T, false);
  ASSERT_TRUE(one.has_value());
  EXPECT_EQ(one->covered, T);
}

TEST(Report, CycleImprovesEveryHeadlineNumber) {
  const int64_t T = 256;
  QualityOptions o;
  o.mixing.steps = 32;
  auto w = quality_report(build(T, 4, 0, 9), o);
  auto c = quality_report(build(T, 4, 2, 9), o);
  ASSERT_TRUE(w.has_value()) << w.status().to_string();
  ASSERT_TRUE(c.has_value()) << c.status().to_string();
  EXPECT_GT(c->normalized.spectral_gap, w->normalized.spectral_gap);
  EXPECT_GT(c->laplacian.fiedler_value, w->laplacian.fiedler_value);
  EXPECT_LT(c->diameter.effective_diameter, w->diameter.effective_diameter);
  EXPECT_GT(c->quality_score, w->quality_score);
  EXPECT_TRUE(c->has_causal);
  EXPECT_GT(c->reach.mean_coverage[3], w->reach.mean_coverage[3]);
  EXPECT_EQ(c->components.count, 1);
  EXPECT_LE(c->coverage_causal.covered, c->coverage_full.covered);
}

}  // namespace
}  // namespace bna::analysis
