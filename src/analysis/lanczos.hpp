// Internal: Lanczos for extreme eigenpairs of a symmetric operator given as a matvec (thick restart with
// full reorthogonalisation, or the three-term recurrence with Cullum-Willoughby filtering, single-vector
// or in blocks of 2-4 interleaved columns), with certified-style error bounds per Ritz value, and a
// small dense Jacobi solver for projected problems.
// Decisions: the basis is kept orthonormal by classical Gram-Schmidt applied twice (BLAS dgemv), so the
// projected matrix is formed from the Gram-Schmidt coefficients rather than from a three-term
// recurrence; a restart keeps the wanted Ritz vectors plus their nearest neighbours (about half the
// basis) and continues from the residual, which keeps the subspace a Krylov subspace.
#pragma once

#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

#include "bna/analysis.hpp"

namespace bna::analysis::detail {

// y = Op x, both [n].
using MatVec = std::function<void(const double* x, double* y)>;
// Fused three-term step (optional): u <- sx * (Op x) - cu * u in place (u not read when cu == 0);
// returns {x . u, q . u} (0 when q is null). Lets the recurrence run in two passes over memory per step.
using LanczosStep = std::function<std::pair<double, double>(const double* x, double sx, double* u, double cu,
                                                            const double* q)>;

// Fused block step (optional), nb interleaved columns: x, u [n, nb] row-major, S, C nb x nb row-major:
// u <- (Op x) S - u C in place (u not read when C is null), G (nb x nb) <- x^T u.
using BlockStep = std::function<void(int nb, const double* x, const double* S, double* u, const double* C,
                                     double* G)>;

struct LanczosResult {
  std::vector<double> top;      // largest eigenvalues, descending  [n_top]
  std::vector<double> bottom;   // smallest eigenvalues, ascending  [n_bottom]
  std::vector<std::vector<double>> top_vec, bottom_vec;  // unit vectors when want_vectors
  // Error bound of each reported value: min(r, r^2 / delta), r the Ritz residual, delta the distance to
  // the nearest other Ritz value less that value's residual (residual bound alone when delta <= 0).
  std::vector<double> top_bound, bottom_bound;
  int64_t matvecs = 0;
  double max_residual = 0;
  double max_bound = 0;
  bool converged = false;
};

// Extreme eigenpairs of Op restricted to the orthogonal complement of `deflate` (orthonormal [n]
// vectors). n_top + n_bottom must not exceed n - deflate.size(). Converged when every reported value's
// error bound is <= opt.tol * max(1, |theta| max). `step` (optional) is used by the three-term path,
// `bstep` (optional) by the block three-term path (opt.block_size >= 2); both fall back to `op`.
LanczosResult lanczos_extremes(int64_t n, const MatVec& op, int n_top, int n_bottom, bool want_vectors,
                               const std::vector<std::vector<double>>& deflate, const SpectralOptions& opt,
                               const LanczosStep& step = {}, const BlockStep& bstep = {});
// The Ritz error bound above, for value theta with residual r and neighbours (theta_k, r_k).
double ritz_error_bound(double theta, double r, const double* nb_theta, const double* nb_resid, int num_nb);

// Dense symmetric eigen-decomposition of a small m x m matrix a (row-major, overwritten) by cyclic
// Jacobi: eigenvalues ascending in w, eigenvectors as the columns of v (row-major m x m).
void jacobi_eigen(int m, std::vector<double>& a, std::vector<double>& w, std::vector<double>& v);

}  // namespace bna::analysis::detail
