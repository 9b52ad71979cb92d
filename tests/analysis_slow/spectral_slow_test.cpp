// Slow spectral checks: dense vs Lanczos at T=2000 (the dense eigenvector solve takes ~20 s on two
// cores), a converged Lanczos solve at T=65,536 whose Fiedler value obeys the Cheeger bounds, and the
// block recurrence's bounds at T=65,536 against a tight single-vector reference.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <string>

#include "bna/analysis.hpp"
#include "bna/rng.hpp"
#include "bna/topology.hpp"

namespace bna::analysis {
namespace {

Csr random_cycle_window(int64_t T, int k, int64_t w, uint64_t seed) {
  Rng rng(seed);
  std::vector<topo::Perm> cycles;
  for (int c = 0; c < k; ++c) cycles.push_back(topo::cycle_random(T, rng));
  auto g = csr_from_perms(cycles, T, w);
  EXPECT_TRUE(g.has_value());
  return std::move(g).value();
}

TEST(SpectralSlow, DenseVsLanczosT2000) {
  const int64_t T = 2000;
  const Csr g = random_cycle_window(T, 2, 4, 1234 + T);
  SpectralOptions d, l;
  d.method = EigenMethod::kDense;
  l.method = EigenMethod::kLanczos;
  l.tol = 1e-10;
  auto ad = adjacency_spectrum(g, d), al = adjacency_spectrum(g, l);
  ASSERT_TRUE(ad.has_value() && al.has_value());
  EXPECT_NEAR(ad->lambda1, al->lambda1, 1e-8);
  EXPECT_NEAR(ad->lambda2_abs, al->lambda2_abs, 1e-7);
  auto nd = normalized_spectrum(g, d), nl = normalized_spectrum(g, l);
  ASSERT_TRUE(nd.has_value() && nl.has_value());
  EXPECT_NEAR(nd->spectral_gap, nl->spectral_gap, 1e-7);
  auto ld = laplacian_spectrum(g, d), ll = laplacian_spectrum(g, l);
  ASSERT_TRUE(ld.has_value() && ll.has_value());
  EXPECT_NEAR(ld->fiedler_value, ll->fiedler_value, 1e-7);
  double dot = 0;
  for (int64_t i = 0; i < T; ++i) dot += ld->fiedler_vector[i] * ll->fiedler_vector[i];
  EXPECT_NEAR(std::fabs(dot), 1.0, 1e-5);
}

TEST(SpectralSlow, LanczosT65536Converges) {
  const int64_t T = 65536;
  const Csr g = random_cycle_window(T, 1, 8, 99);
  SpectralOptions o;
  o.method = EigenMethod::kLanczos;
  auto l = laplacian_spectrum(g, o);
  ASSERT_TRUE(l.has_value());
  EXPECT_TRUE(l->info.converged) << "residual " << l->info.max_residual;
  EXPECT_GT(l->fiedler_value, 0.1);
  EXPECT_LE(l->cheeger_lower, l->sweep_expansion);
  EXPECT_LE(l->sweep_expansion, l->cheeger_upper);
  auto n = normalized_spectrum(g, o);
  ASSERT_TRUE(n.has_value());
  EXPECT_TRUE(n->info.converged);
  EXPECT_GT(n->spectral_gap, 0.05);
}

// The block recurrence at T = 65,536 (window 64 + 1 cycle: lambda2 heads a dense cluster, lambda3 0.0096
// below) against a reference from the single-vector recurrence at tol 1e-13: converged and stopped by
// the budget, every reported bound holds (|reference - value| <= bound + the reference's own bound).
TEST(SpectralSlow, BlockLanczosBoundsHoldT65536) {
  const int64_t T = 65536;
  Rng rng(42);
  std::vector<topo::Perm> cycles{topo::cycle_random(T, rng)};
  auto bg = banded_from_perms(cycles, T, 64);
  ASSERT_TRUE(bg.has_value());
  SpectralOptions ref_opt;
  ref_opt.method = EigenMethod::kLanczos;
  ref_opt.tol = 1e-13;
  auto ref = adjacency_spectrum(*bg, ref_opt);
  ASSERT_TRUE(ref.has_value());
  ASSERT_TRUE(ref->info.converged);
  const double slack = ref->info.max_error_bound + 1e-11 * ref->lambda1;
  for (int nb : {2, 3}) {
    for (int64_t budget : {int64_t{200}, int64_t{800}, int64_t{20000}}) {
      SpectralOptions l;
      l.method = EigenMethod::kLanczos;
      l.block_size = nb;
      l.max_matvecs = budget;
      auto a = adjacency_spectrum(*bg, l);
      ASSERT_TRUE(a.has_value());
      const std::string what = "block " + std::to_string(nb) + " budget " + std::to_string(budget);
      EXPECT_LE(std::fabs(a->spectral_gap - ref->spectral_gap), a->gap_error_bound + slack) << what;
      EXPECT_LE(std::fabs(a->lambda1 - ref->lambda1), a->info.max_error_bound + slack) << what;
      EXPECT_LE(std::fabs(a->lambda2 - ref->lambda2), a->info.max_error_bound + slack) << what;
      EXPECT_LE(std::fabs(a->lambda_min - ref->lambda_min), a->info.max_error_bound + slack) << what;
      if (budget == 20000) {
        EXPECT_TRUE(a->info.converged) << what;
      }
      if (!a->info.converged) {
        EXPECT_GT(a->info.max_error_bound, l.tol * std::fabs(a->lambda1)) << what;
      }
      std::printf("  %s: converged %d matvecs %lld gap %.12f +- %.3g (reference %.12f)\n", what.c_str(),
                  a->info.converged ? 1 : 0, static_cast<long long>(a->info.matvecs), a->spectral_gap,
                  a->gap_error_bound, ref->spectral_gap);
    }
  }
}

}  // namespace
}  // namespace bna::analysis
