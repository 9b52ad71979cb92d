// The Lanczos error bounds (min(r, r^2 / delta) per Ritz value, gap_error_bound, fiedler_error_bound)
// against the dense eigensolver on small graphs, on both Lanczos paths (thick restart with full
// reorthogonalisation; the three-term recurrence, forced with full_reorth_max_T = 0), converged and
// stopped early by the matvec budget; and graphs with a known spectrum (cycles, circulant ring windows)
// reproduced through the Lanczos path.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numbers>
#include <string>

#include "analysis/lanczos.hpp"
#include "bna/analysis.hpp"
#include "bna/rng.hpp"
#include "bna/threads.hpp"
#include "bna/topology.hpp"

namespace bna::analysis {
namespace {

// Rounding slack on top of a bound: the dense solver and the Ritz values are both only accurate to a
// few ulps of the spectral scale.
constexpr double kSlack = 1e-11;

struct Case {
  int64_t T, window;
  int k;
  bool cw;              // three-term recurrence instead of full reorthogonalisation
  double tol;
  int64_t max_matvecs;  // small budgets stop before convergence: the bound must still hold
  int block = 1;        // SpectralOptions::block_size of the recurrence (cw only)
};
std::string name(const Case& c) {
  return "T" + std::to_string(c.T) + "_W" + std::to_string(c.window) + "_k" + std::to_string(c.k) +
         (c.cw ? "_cw" : "_full") + "_tol" + std::to_string(static_cast<int>(-std::log10(c.tol))) + "_mv" +
         std::to_string(c.max_matvecs) + (c.block > 1 ? "_b" + std::to_string(c.block) : "");
}

BandedGraph banded(const Case& c) {
  Rng rng(77 + c.T + c.k);
  std::vector<topo::Perm> cycles;
  for (int i = 0; i < c.k; ++i) cycles.push_back(topo::cycle_random(c.T, rng));
  auto g = banded_from_perms(cycles, c.T, c.window);
  EXPECT_TRUE(g.has_value());
  return std::move(g).value();
}

class BoundVsDense : public ::testing::TestWithParam<Case> {};

TEST_P(BoundVsDense, ReportedBoundsHold) {
  const Case c = GetParam();
  const BandedGraph bg = banded(c);
  const Csr g = csr_from_banded(bg);
  SpectralOptions d;
  d.method = EigenMethod::kDense;
  SpectralOptions l;
  l.method = EigenMethod::kLanczos;
  l.tol = c.tol;
  l.max_matvecs = c.max_matvecs;
  l.krylov_dim = 24;  // small basis: several restarts on the full-reorthogonalisation path
  if (c.cw) l.full_reorth_max_T = 0;
  l.block_size = c.block;

  auto ad = adjacency_spectrum(g, d), al = adjacency_spectrum(bg, l);
  ASSERT_TRUE(ad.has_value() && al.has_value());
  const double err_a = std::fabs(al->spectral_gap - ad->spectral_gap);
  EXPECT_LE(err_a, al->gap_error_bound + kSlack * al->lambda1)
      << name(c) << " gap " << al->spectral_gap << " dense " << ad->spectral_gap << " matvecs " << al->info.matvecs;
  EXPECT_LE(std::fabs(al->lambda1 - ad->lambda1), al->info.max_error_bound + kSlack * al->lambda1) << name(c);
  EXPECT_LE(std::fabs(al->lambda2 - ad->lambda2), al->info.max_error_bound + kSlack * al->lambda1) << name(c);
  EXPECT_LE(std::fabs(al->lambda_min - ad->lambda_min), al->info.max_error_bound + kSlack * al->lambda1) << name(c);
  EXPECT_LE(al->info.max_error_bound, al->info.max_residual + kSlack) << name(c);
  if (al->info.converged) {
    EXPECT_LE(al->info.max_error_bound, c.tol * std::max(1.0, std::fabs(al->lambda1)) * (1 + 1e-12)) << name(c);
  } else {
    EXPECT_GT(al->info.max_error_bound, c.tol * std::max(1.0, std::fabs(al->lambda1))) << name(c);
  }
  RecordProperty("adjacency_converged", al->info.converged ? 1 : 0);
  std::printf("  %s: adjacency converged %d matvecs %lld bound %.3g residual %.3g error %.3g\n", name(c).c_str(),
              al->info.converged ? 1 : 0, static_cast<long long>(al->info.matvecs), al->gap_error_bound,
              al->info.max_residual, err_a);

  auto nd = normalized_spectrum(g, d), nl = normalized_spectrum(bg, l);
  ASSERT_TRUE(nd.has_value() && nl.has_value());
  EXPECT_LE(std::fabs(nl->spectral_gap - nd->spectral_gap), nl->gap_error_bound + kSlack)
      << name(c) << " gap " << nl->spectral_gap << " dense " << nd->spectral_gap;
  if (nl->info.converged) {
    EXPECT_LE(nl->info.max_error_bound, c.tol * (1 + 1e-12)) << name(c);
  }

  // The Fiedler vector is wanted: always the full-reorthogonalisation path.
  auto ld = laplacian_spectrum(g, d), ll = laplacian_spectrum(bg, l);
  ASSERT_TRUE(ld.has_value() && ll.has_value());
  EXPECT_LE(std::fabs(ll->fiedler_value - ld->fiedler_value), ll->fiedler_error_bound + kSlack * ld->lambda_max)
      << name(c) << " fiedler " << ll->fiedler_value << " dense " << ld->fiedler_value;
}

INSTANTIATE_TEST_SUITE_P(
    Analysis, BoundVsDense,
    ::testing::Values(Case{300, 4, 1, false, 1e-9, 20000}, Case{300, 4, 1, true, 1e-9, 20000},
                      Case{700, 8, 2, false, 1e-6, 20000}, Case{700, 8, 2, true, 1e-6, 20000},
                      Case{1000, 64, 1, false, 1e-9, 20000}, Case{1000, 64, 1, true, 1e-9, 20000},
                      // Stopped by the budget: converged = false, the bound is what was reached.
                      Case{1000, 4, 1, false, 1e-12, 120}, Case{1000, 4, 1, true, 1e-12, 120},
                      Case{801, 2, 1, true, 1e-12, 60}, Case{801, 2, 1, false, 1e-12, 60},
                      Case{1000, 8, 1, true, 1e-12, 50}, Case{1000, 8, 1, false, 1e-12, 50},
                      // Block recurrence (2 and 3 columns): window + cycle graphs whose top eigenvalues
                      // below lambda1 are near-degenerate (the low-frequency modes of the band), converged
                      // and stopped by the budget (which counts columns).
                      Case{300, 4, 1, true, 1e-9, 20000, 2}, Case{300, 4, 1, true, 1e-9, 20000, 3},
                      Case{700, 8, 2, true, 1e-6, 20000, 2}, Case{700, 8, 2, true, 1e-6, 20000, 3},
                      Case{1000, 64, 1, true, 1e-9, 20000, 2}, Case{1000, 64, 1, true, 1e-9, 20000, 3},
                      Case{1500, 64, 1, true, 1e-9, 20000, 2}, Case{1500, 64, 1, true, 1e-10, 20000, 4},
                      Case{1000, 4, 1, true, 1e-12, 120, 2}, Case{801, 2, 1, true, 1e-12, 60, 2},
                      Case{1000, 8, 1, true, 1e-12, 50, 2}, Case{1000, 8, 1, true, 1e-12, 51, 3},
                      Case{1500, 64, 1, true, 1e-12, 200, 2}, Case{1500, 64, 1, true, 1e-12, 400, 2}),
    [](const auto& info) { return name(info.param); });

// A budget too small for the tolerance must say so: converged = false and a bound above the target.
TEST(LanczosBound, UnconvergedIsReportedHonestly) {
  const BandedGraph bg = banded(Case{1000, 4, 1, true, 0, 0});
  SpectralOptions l;
  l.method = EigenMethod::kLanczos;
  l.full_reorth_max_T = 0;
  l.tol = 1e-12;
  l.max_matvecs = 60;
  auto a = adjacency_spectrum(bg, l);
  ASSERT_TRUE(a.has_value());
  EXPECT_FALSE(a->info.converged);
  EXPECT_GT(a->info.max_error_bound, l.tol * a->lambda1);
  EXPECT_GT(a->gap_error_bound, 0.0);
}

// The quadratic bound: once converged, the bound is far below the residual (the wanted value is separated
// from its neighbours), so the criterion stops earlier than a residual test would.
TEST(LanczosBound, QuadraticBoundBeatsTheResidual) {
  const BandedGraph bg = banded(Case{1000, 64, 1, true, 0, 0});
  SpectralOptions l;
  l.method = EigenMethod::kLanczos;
  l.full_reorth_max_T = 0;
  l.tol = 1e-9;
  auto a = adjacency_spectrum(bg, l);
  ASSERT_TRUE(a.has_value());
  ASSERT_TRUE(a->info.converged);
  EXPECT_LT(a->info.max_error_bound, 0.1 * a->info.max_residual);
}

TEST(LanczosBound, ErrorBoundFormula) {
  const double th[2] = {1.0, 3.0}, rr[2] = {0.1, 0.5};
  // Residual only: no neighbours, or the nearest neighbour (less its residual) not separated.
  EXPECT_DOUBLE_EQ(detail::ritz_error_bound(2.0, 0.2, th, rr, 0), 0.2);
  const double close[1] = {2.1}, close_r[1] = {0.2};
  EXPECT_DOUBLE_EQ(detail::ritz_error_bound(2.0, 0.2, close, close_r, 1), 0.2);
  // delta = min(|2 - 1| - 0.1, |2 - 3| - 0.5) = 0.5: r^2 / delta = 0.08.
  EXPECT_DOUBLE_EQ(detail::ritz_error_bound(2.0, 0.2, th, rr, 2), 0.2 * 0.2 / 0.5);
}

// Graphs with a known spectrum through the Lanczos path (both variants): the cycle C_n has adjacency
// eigenvalues 2 cos(2 pi j / n); lambda1 = 2 is deflated (regular), lambda2 = 2 cos(2 pi / n) and the
// smallest is -2 for even n (bipartite: gap 0) or -2 cos(pi / n) for odd n (gap 2 - 2 cos(pi / n)).
// Laplacian: Fiedler value 2 - 2 cos(2 pi / n).
Csr ring_window(int64_t n, int64_t w) {  // i ~ i +- 1 .. w (mod n): circulant, 2w-regular
  std::vector<std::pair<int32_t, int32_t>> e;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t d = 1; d <= w; ++d) e.push_back({(int32_t)i, (int32_t)((i + d) % n)});
  auto g = csr_from_edges(n, e);
  EXPECT_TRUE(g.has_value());
  return std::move(g).value();
}

class KnownGap : public ::testing::TestWithParam<std::pair<int64_t, bool>> {};

TEST_P(KnownGap, CycleIsReproduced) {
  const auto [n, cw] = GetParam();
  const Csr g = ring_window(n, 1);
  SpectralOptions l;
  l.method = EigenMethod::kLanczos;
  if (cw) l.full_reorth_max_T = 0;
  const double pi = std::numbers::pi;
  const double lambda2 = 2 * std::cos(2 * pi / n), lmin = n % 2 == 0 ? -2.0 : -2 * std::cos(pi / n);
  const double gap = 2 - std::max(std::fabs(lambda2), std::fabs(lmin));
  auto a = adjacency_spectrum(g, l);
  ASSERT_TRUE(a.has_value());
  const std::string what = "n=" + std::to_string(n) + (cw ? " cw" : " full");
  EXPECT_TRUE(a->info.converged) << what;
  EXPECT_DOUBLE_EQ(a->lambda1, 2.0) << what;
  EXPECT_NEAR(a->lambda2, lambda2, 1e-9) << what;
  EXPECT_NEAR(a->lambda_min, lmin, 1e-9) << what;
  EXPECT_NEAR(a->spectral_gap, gap, 1e-9) << what;
  EXPECT_LE(std::fabs(a->spectral_gap - gap), a->gap_error_bound + 1e-12) << what;
  if (n % 2 == 0) {
    EXPECT_NEAR(a->spectral_gap, 0.0, 1e-9) << what;
  }
  auto lap = laplacian_spectrum(g, l);
  ASSERT_TRUE(lap.has_value());
  EXPECT_NEAR(lap->fiedler_value, 2 - 2 * std::cos(2 * pi / n), 1e-9) << what;
  EXPECT_LE(std::fabs(lap->fiedler_value - (2 - 2 * std::cos(2 * pi / n))), lap->fiedler_error_bound + 1e-12) << what;
}

INSTANTIATE_TEST_SUITE_P(Analysis, KnownGap,
                         ::testing::Values(std::pair<int64_t, bool>{301, true}, std::pair<int64_t, bool>{301, false},
                                           std::pair<int64_t, bool>{300, true}, std::pair<int64_t, bool>{300, false},
                                           std::pair<int64_t, bool>{1001, true}),
                         [](const auto& info) {
                           return "n" + std::to_string(info.param.first) + (info.param.second ? "_cw" : "_full");
                         });

// Circulant ring window (i ~ i +- 1..w mod n): eigenvalues f(j) = sum_{d=1..w} 2 cos(2 pi j d / n), all
// known; n prime so only j and n - j coincide. The gap is reproduced within its reported bound.
TEST(KnownGap, RingWindowIsReproduced) {
  const int64_t n = 409, w = 3;
  const Csr g = ring_window(n, w);
  double l2 = -1e300, lmin = 1e300;
  for (int64_t j = 1; j < n; ++j) {
    double f = 0;
    for (int64_t d = 1; d <= w; ++d) f += 2 * std::cos(2 * std::numbers::pi * double(j * d % n) / n);
    l2 = std::max(l2, f);
    lmin = std::min(lmin, f);
  }
  const double gap = 2.0 * w - std::max(std::fabs(l2), std::fabs(lmin));
  for (int variant = 0; variant < 5; ++variant) {  // thick restart, single vector, blocks of 2, 3, 4
    SpectralOptions l;
    l.method = EigenMethod::kLanczos;
    if (variant > 0) l.full_reorth_max_T = 0;
    l.block_size = std::max(1, variant);
    l.tol = 1e-9;
    const std::string what = variant == 0 ? "full" : "cw block " + std::to_string(l.block_size);
    auto a = adjacency_spectrum(g, l);
    ASSERT_TRUE(a.has_value());
    EXPECT_TRUE(a->info.converged) << what << " bound " << a->info.max_error_bound;
    EXPECT_LE(std::fabs(a->spectral_gap - gap), a->gap_error_bound + 1e-11) << what;
    EXPECT_NEAR(a->spectral_gap, gap, 1e-8 * 2 * w) << what;
    EXPECT_LE(std::fabs(a->lambda2 - l2), a->info.max_error_bound + 1e-11) << what;
    EXPECT_LE(std::fabs(a->lambda_min - lmin), a->info.max_error_bound + 1e-11) << what;
  }
}

// The block recurrence on cycles, whose eigenvalues below 2 are all exactly double (cos/sin pairs): a
// block of 2 sees both copies, which count once, as on the other paths. A space large enough not to be
// exhausted (the recurrence has no reorthogonalisation: an exhausted space is reported, not trusted).
TEST(BlockLanczos, CycleIsReproduced) {
  for (const int64_t n : {1001, 2000}) {
    for (int nb : {2, 3}) {
      const Csr g = ring_window(n, 1);
      SpectralOptions l;
      l.method = EigenMethod::kLanczos;
      l.full_reorth_max_T = 0;
      l.block_size = nb;
      const double pi = std::numbers::pi;
      const double lambda2 = 2 * std::cos(2 * pi / n), lmin = n % 2 == 0 ? -2.0 : -2 * std::cos(pi / n);
      const double gap = 2 - std::max(std::fabs(lambda2), std::fabs(lmin));
      auto a = adjacency_spectrum(g, l);
      ASSERT_TRUE(a.has_value());
      const std::string what = "n=" + std::to_string(n) + " block " + std::to_string(nb);
      EXPECT_LE(std::fabs(a->spectral_gap - gap), a->gap_error_bound + 1e-12) << what;
      EXPECT_LE(std::fabs(a->lambda2 - lambda2), a->info.max_error_bound + 1e-12) << what;
      EXPECT_LE(std::fabs(a->lambda_min - lmin), a->info.max_error_bound + 1e-12) << what;
      if (a->info.converged) {
        EXPECT_NEAR(a->spectral_gap, gap, 2e-9) << what;
      }
    }
  }
}

// The values and the work of two adjacency spectra, bit for bit.
void expect_same_bits(const AdjacencySpectrum& a, const AdjacencySpectrum& r) {
  EXPECT_EQ(a.lambda1, r.lambda1);
  EXPECT_EQ(a.lambda2, r.lambda2);
  EXPECT_EQ(a.lambda_min, r.lambda_min);
  EXPECT_EQ(a.gap_error_bound, r.gap_error_bound);
  EXPECT_EQ(a.info.matvecs, r.info.matvecs);
}

// Bitwise determinism of the block recurrence for a fixed seed: the same result on repeated runs and for
// 1 or all threads (fixed row chunks, reduced in chunk order), with the kernel's threaded path engaged.
TEST(BlockLanczos, DeterministicAcrossRunsAndThreads) {
  const BandedGraph bg = banded(Case{70001, 64, 1, true, 0, 0});
  SpectralOptions l;
  l.method = EigenMethod::kLanczos;
  l.block_size = 2;
  l.tol = 1e-12;
  l.max_matvecs = 300;  // stopped by the budget: a few checks, every value still moving
  auto a = adjacency_spectrum(bg, l);
  auto b = adjacency_spectrum(bg, l);
  const int threads = num_threads();
  set_num_threads(1);
  auto c = adjacency_spectrum(bg, l);
  set_num_threads(threads);
  ASSERT_TRUE(a.has_value() && b.has_value() && c.has_value());
  for (const auto* r : {&*b, &*c}) expect_same_bits(*a, *r);
  EXPECT_EQ(a->info.matvecs, 300);
  EXPECT_FALSE(a->info.converged);
}

// The same for the single-vector recurrence (block_size 1, the default above full_reorth_max_T), on the
// adjacency and on the normalised adjacency (one deflation vector, removed inside the two passes). T is
// above both thresholds for threads (the kernel's 2^16, the w pass's 2^17), so 1 and all threads split
// the rows differently; the fixed chunks and their in-order reduction must give the same bits.
TEST(CullumWilloughby, DeterministicAcrossRunsAndThreads) {
  const BandedGraph bg = banded(Case{140001, 64, 1, true, 0, 0});
  SpectralOptions l;
  l.method = EigenMethod::kLanczos;
  l.tol = 1e-12;
  l.max_matvecs = 300;  // stopped by the budget: a few checks, every value still moving
  auto a = adjacency_spectrum(bg, l);
  auto na = normalized_spectrum(bg, l);
  auto b = adjacency_spectrum(bg, l);
  const int threads = num_threads();
  set_num_threads(1);
  auto c = adjacency_spectrum(bg, l);
  auto nc = normalized_spectrum(bg, l);
  set_num_threads(threads);
  ASSERT_TRUE(a.has_value() && b.has_value() && c.has_value() && na.has_value() && nc.has_value());
  for (const auto* r : {&*b, &*c}) expect_same_bits(*a, *r);
  EXPECT_EQ(na->lambda2, nc->lambda2);
  EXPECT_EQ(na->lambda_min, nc->lambda_min);
  EXPECT_EQ(na->gap_error_bound, nc->gap_error_bound);
  EXPECT_EQ(a->info.matvecs, 300);
  EXPECT_FALSE(a->info.converged);
  EXPECT_EQ(na->info.matvecs, 300);
}

// Options: block_size outside 1..4 is an error naming the value.
TEST(BlockLanczos, BlockSizeIsChecked) {
  const BandedGraph bg = banded(Case{300, 4, 1, true, 0, 0});
  SpectralOptions l;
  l.block_size = 5;
  auto a = adjacency_spectrum(bg, l);
  ASSERT_FALSE(a.has_value());
  EXPECT_NE(a.status().message().find("block_size=5"), std::string::npos) << a.status().message();
}

}  // namespace
}  // namespace bna::analysis
