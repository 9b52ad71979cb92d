// The implicit banded permutation graph (window band + cycle extras) against the explicit CSR of
// csr_from_perms: same edges, same matvec, same spectra; and the Cullum-Willoughby Lanczos path (no
// reorthogonalisation, used above full_reorth_max_T) against the dense eigensolver.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "analysis/operators.hpp"
#include "bna/analysis.hpp"
#include "bna/rng.hpp"
#include "bna/topology.hpp"

namespace bna::analysis {
namespace {

std::vector<topo::Perm> random_cycles(int64_t T, int k, uint64_t seed) {
  Rng rng(seed);
  std::vector<topo::Perm> c;
  for (int i = 0; i < k; ++i) c.push_back(topo::cycle_random(T, rng));
  return c;
}

struct Case {
  int64_t T, window;
  int k;
};
std::string name(const Case& c) {
  return "T" + std::to_string(c.T) + "_W" + std::to_string(c.window) + "_k" + std::to_string(c.k);
}

class BandedVsCsr : public ::testing::TestWithParam<Case> {};

TEST_P(BandedVsCsr, SameEdgesAndMatvec) {
  const Case c = GetParam();
  const auto cycles = random_cycles(c.T, c.k, 7 + c.T);
  auto ref = csr_from_perms(cycles, c.T, c.window);
  auto bg = banded_from_perms(cycles, c.T, c.window);
  ASSERT_TRUE(ref.has_value() && bg.has_value()) << name(c);
  const Csr got = csr_from_banded(*bg);
  EXPECT_EQ(got.offsets, ref->offsets) << name(c);
  EXPECT_EQ(got.cols, ref->cols) << name(c);
  EXPECT_EQ(bg->num_edges(), ref->num_edges()) << name(c);
  for (int64_t i = 0; i < c.T; ++i) ASSERT_EQ(bg->degree(i), ref->degree(i)) << name(c) << " i=" << i;
  Rng rng(3);
  std::vector<double> x(c.T), y_ref(c.T), y(c.T);
  for (double& v : x) v = rng.uniform01() - 0.5;
  adjacency_matvec(*ref, x.data(), y_ref.data());
  adjacency_matvec(*bg, x.data(), y.data());
  // The band sum is suffix + prefix of blocks of 2W+1 entries instead of a left-to-right row sum:
  // rounding differs by a few ulp of the row's absolute sum (<= degree * max|x|).
  for (int64_t i = 0; i < c.T; ++i)
    ASSERT_NEAR(y[i], y_ref[i], 1e-13 * (1 + ref->degree(i))) << name(c) << " i=" << i;
}

INSTANTIATE_TEST_SUITE_P(Analysis, BandedVsCsr,
                         ::testing::Values(Case{1, 0, 1}, Case{2, 1, 1}, Case{3, 5, 1}, Case{7, 2, 2}, Case{64, 0, 1},
                                           Case{65, 64, 1}, Case{130, 64, 1}, Case{1000, 3, 2}, Case{1001, 64, 1},
                                           Case{70000, 64, 1}, Case{70001, 17, 3}),
                         [](const auto& info) { return name(info.param); });

// The fused step with the per-solve plan (fixed slots: the two-slot and the general slot loops, the
// interior rows without bound checks) against the plain CSR-offset loop: the same additions in the same
// order, so the results must agree exactly, for every operator and with and without the axpy and q terms.
TEST(BandedStep, SlotPathsEqualOffsetPath) {
  for (const auto& [T, k] : {std::pair<int64_t, int>{70001, 1}, {70001, 3}, {1500, 1}, {900, 2}}) {
    const auto cycles = random_cycles(T, k, 13 + T);
    auto bg = banded_from_perms(cycles, T, 64);
    ASSERT_TRUE(bg.has_value());
    Rng rng(9);
    std::vector<double> x(T), u0(T), q(T);
    for (double& v : x) v = rng.uniform01() - 0.5;
    for (double& v : u0) v = rng.uniform01() - 0.5;
    for (double& v : q) v = rng.uniform01() - 0.5;
    for (Operator op : {Operator::kAdjacency, Operator::kNormalized, Operator::kLaplacian}) {
      const detail::BandedPlan plan = detail::make_banded_plan(*bg, op);
      ASSERT_EQ(plan.num_slots, 2 * k) << "T=" << T << " k=" << k;  // no cycle edge collapsed into the band here
      detail::BandedPlan offsets_only = plan;
      offsets_only.slots.clear();
      for (const double cu : {0.0, 0.75}) {
        std::vector<double> a = u0, b = u0;
        const auto ra = detail::banded_step(*bg, op, &plan, x.data(), 1.25, a.data(), cu, q.data());
        const auto rb = detail::banded_step(*bg, op, &offsets_only, x.data(), 1.25, b.data(), cu, q.data());
        EXPECT_EQ(ra, rb) << "T=" << T << " k=" << k << " op=" << static_cast<int>(op) << " cu=" << cu;
        for (int64_t i = 0; i < T; ++i)
          ASSERT_EQ(a[i], b[i]) << "T=" << T << " k=" << k << " op=" << static_cast<int>(op) << " cu=" << cu << " i=" << i;
      }
    }
  }
}

// The block step on nb interleaved columns against the single-column step applied per column: with
// S = diag(s) and C = diag(c) each column is the single-column step (within a few roundings: the band
// sums of the block kernel use two partial sums, the single kernel four), with full S, C the block
// products, and G = x^T u.
TEST(BandedStep, BlockStepMatchesColumns) {
  for (const auto& [T, k] : {std::pair<int64_t, int>{70001, 1}, {70001, 3}, {1500, 1}, {900, 2}}) {
    const auto cycles = random_cycles(T, k, 31 + T);
    auto bg = banded_from_perms(cycles, T, 64);
    ASSERT_TRUE(bg.has_value());
    for (Operator op : {Operator::kAdjacency, Operator::kNormalized, Operator::kLaplacian}) {
      const detail::BandedPlan plan = detail::make_banded_plan(*bg, op);
      detail::BandedPlan offsets_only = plan;
      offsets_only.slots.clear();
      for (int nb = 1; nb <= 4; ++nb) {
        Rng rng(5 + nb);
        std::vector<double> x(T * nb), u0(T * nb), S(nb * nb), C(nb * nb);
        for (double& v : x) v = rng.uniform01() - 0.5;
        for (double& v : u0) v = rng.uniform01() - 0.5;
        for (double& v : S) v = rng.uniform01() - 0.5;
        for (double& v : C) v = rng.uniform01() - 0.5;
        // Reference: the columns of Op x by the single-column kernel, then the small products in float64.
        std::vector<double> opx(T * nb), col(T), y(T);
        for (int c = 0; c < nb; ++c) {
          for (int64_t i = 0; i < T; ++i) col[i] = x[i * nb + c];
          detail::banded_step(*bg, op, &plan, col.data(), 1.0, y.data(), 0.0, nullptr);
          for (int64_t i = 0; i < T; ++i) opx[i * nb + c] = y[i];
        }
        for (const bool axpy : {false, true}) {
          std::vector<double> u = u0, G(nb * nb), ref(T * nb), Gref(nb * nb, 0.0);
          for (int64_t i = 0; i < T; ++i)
            for (int c = 0; c < nb; ++c) {
              double v = 0;
              for (int kk = 0; kk < nb; ++kk) v += opx[i * nb + kk] * S[kk * nb + c];
              if (axpy)
                for (int kk = 0; kk < nb; ++kk) v -= u0[i * nb + kk] * C[kk * nb + c];
              ref[i * nb + c] = v;
            }
          for (int64_t i = 0; i < T; ++i)
            for (int a = 0; a < nb; ++a)
              for (int c = 0; c < nb; ++c) Gref[a * nb + c] += x[i * nb + a] * ref[i * nb + c];
          const std::string what = "T=" + std::to_string(T) + " k=" + std::to_string(k) +
                                   " op=" + std::to_string(static_cast<int>(op)) + " nb=" + std::to_string(nb) +
                                   " axpy=" + std::to_string(axpy);
          detail::banded_block_step(*bg, op, &plan, nb, x.data(), S.data(), u.data(), axpy ? C.data() : nullptr,
                                    G.data());
          double err = 0, gerr = 0;
          for (int64_t i = 0; i < T * nb; ++i) err = std::max(err, std::fabs(u[i] - ref[i]));
          for (int a = 0; a < nb * nb; ++a) gerr = std::max(gerr, std::fabs(G[a] - Gref[a]));
          // Band sums of ~130 terms of size <= 0.5 (degree <= 140): a few hundred roundings of 1e-16 each.
          EXPECT_LE(err, 1e-12) << what;
          EXPECT_LE(gerr, 1e-12 * T) << what;
          // The slot loops and the CSR-offset loop of the block kernel: the same additions, bitwise equal.
          std::vector<double> u2 = u0, G2(nb * nb);
          detail::banded_block_step(*bg, op, &offsets_only, nb, x.data(), S.data(), u2.data(),
                                    axpy ? C.data() : nullptr, G2.data());
          EXPECT_EQ(G, G2) << what;
          EXPECT_EQ(u, u2) << what;
        }
      }
    }
  }
}

TEST(Banded, SpectraEqualTheCsrPath) {
  const int64_t T = 3001;
  const auto cycles = random_cycles(T, 1, 11);
  auto ref = csr_from_perms(cycles, T, 8);
  auto bg = banded_from_perms(cycles, T, 8);
  ASSERT_TRUE(ref.has_value() && bg.has_value());
  SpectralOptions o;
  o.method = EigenMethod::kLanczos;
  o.tol = 1e-10;
  auto a = adjacency_spectrum(*ref, o), b = adjacency_spectrum(*bg, o);
  ASSERT_TRUE(a.has_value() && b.has_value());
  EXPECT_NEAR(a->lambda1, b->lambda1, 1e-8);
  EXPECT_NEAR(a->lambda2, b->lambda2, 1e-7);
  EXPECT_NEAR(a->lambda_min, b->lambda_min, 1e-7);
  auto l1 = laplacian_spectrum(*ref, o), l2 = laplacian_spectrum(*bg, o);
  ASSERT_TRUE(l1.has_value() && l2.has_value());
  EXPECT_NEAR(l1->fiedler_value, l2->fiedler_value, 1e-7);
  EXPECT_NEAR(l1->sweep_expansion, l2->sweep_expansion, 1e-9);
  auto n1 = normalized_spectrum(*ref, o), n2 = normalized_spectrum(*bg, o);
  ASSERT_TRUE(n1.has_value() && n2.has_value());
  EXPECT_NEAR(n1->spectral_gap, n2->spectral_gap, 1e-7);
}

TEST(Banded, ErrorsNameTheArgument) {
  auto a = banded_from_perms({}, 0, 1);
  ASSERT_FALSE(a.has_value());
  EXPECT_NE(a.status().message().find("T=0"), std::string::npos);
  auto b = banded_from_perms({}, 5, -1);
  ASSERT_FALSE(b.has_value());
  EXPECT_NE(b.status().message().find("window=-1"), std::string::npos);
  auto c = banded_from_perms({topo::Perm{0, 1, 1}}, 3, 1);
  ASSERT_FALSE(c.has_value());
  EXPECT_NE(c.status().message().find("cycle 0"), std::string::npos);
}

// The three-term recurrence without reorthogonalisation (forced with full_reorth_max_T = 0) against the
// dense eigensolver. Same tolerances as the full-reorthogonalisation test (DenseVsLanczos).
class CullumWilloughbyVsDense : public ::testing::TestWithParam<Case> {};

TEST_P(CullumWilloughbyVsDense, SameExtremes) {
  const Case c = GetParam();
  const auto cycles = random_cycles(c.T, c.k, 5 + c.T);
  auto bg = banded_from_perms(cycles, c.T, c.window);
  ASSERT_TRUE(bg.has_value());
  const Csr g = csr_from_banded(*bg);
  SpectralOptions d;
  d.method = EigenMethod::kDense;
  SpectralOptions cw;
  cw.method = EigenMethod::kLanczos;
  cw.full_reorth_max_T = 0;
  cw.tol = 1e-10;
  auto ad = adjacency_spectrum(g, d), al = adjacency_spectrum(*bg, cw);
  ASSERT_TRUE(ad.has_value() && al.has_value());
  EXPECT_TRUE(al->info.converged) << name(c) << " residual " << al->info.max_residual;
  EXPECT_NEAR(ad->lambda1, al->lambda1, 1e-8) << name(c);
  EXPECT_NEAR(ad->lambda2, al->lambda2, 1e-7) << name(c);
  EXPECT_NEAR(ad->lambda_min, al->lambda_min, 1e-7) << name(c);
  EXPECT_NEAR(ad->spectral_gap, al->spectral_gap, 1e-7) << name(c);
  auto nd = normalized_spectrum(g, d), nl = normalized_spectrum(*bg, cw);
  ASSERT_TRUE(nd.has_value() && nl.has_value());
  EXPECT_TRUE(nl->info.converged) << name(c);
  EXPECT_NEAR(nd->lambda2, nl->lambda2, 1e-7) << name(c);
  EXPECT_NEAR(nd->lambda_min, nl->lambda_min, 1e-7) << name(c);
  EXPECT_NEAR(nd->spectral_gap, nl->spectral_gap, 1e-7) << name(c);
}

INSTANTIATE_TEST_SUITE_P(Analysis, CullumWilloughbyVsDense,
                         ::testing::Values(Case{64, 2, 1}, Case{300, 4, 1}, Case{700, 8, 2}, Case{1000, 64, 1}),
                         [](const auto& info) { return name(info.param); });

TEST(CullumWilloughby, RegularGraphDeflatesTheConstant) {
  // A union of 2 random cycles without window: 4-regular unless edges collide; pick a seed where it is.
  const int64_t T = 500;
  for (uint64_t seed = 1; seed < 50; ++seed) {
    Rng rng(seed);
    std::vector<topo::Perm> cycles{topo::cycle_random(T, rng), topo::cycle_random(T, rng)};
    auto bg = banded_from_perms(cycles, T, 0);
    ASSERT_TRUE(bg.has_value());
    bool regular = true;
    for (int64_t i = 0; i < T; ++i) regular &= bg->degree(i) == 4;
    if (!regular) continue;
    const Csr g = csr_from_banded(*bg);
    SpectralOptions d;
    d.method = EigenMethod::kDense;
    SpectralOptions cw;
    cw.method = EigenMethod::kLanczos;
    cw.full_reorth_max_T = 0;
    cw.tol = 1e-10;
    auto ad = adjacency_spectrum(g, d), al = adjacency_spectrum(*bg, cw);
    ASSERT_TRUE(ad.has_value() && al.has_value());
    EXPECT_DOUBLE_EQ(al->lambda1, 4.0);
    EXPECT_NEAR(ad->lambda2, al->lambda2, 1e-7) << "seed " << seed;
    EXPECT_NEAR(ad->lambda_min, al->lambda_min, 1e-7) << "seed " << seed;
    return;
  }
  FAIL() << "no 4-regular union of two random cycles among seeds 1..49";
}

}  // namespace
}  // namespace bna::analysis
