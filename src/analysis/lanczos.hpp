// Internal: thick-restart Lanczos with full reorthogonalisation for extreme eigenpairs of a symmetric
// operator given as a matvec, and a small dense Jacobi solver for the projected problems.
// Decisions: the basis is kept orthonormal by classical Gram-Schmidt applied twice (BLAS dgemv), so the
// projected matrix is formed from the Gram-Schmidt coefficients rather than from a three-term
// recurrence; a restart keeps the wanted Ritz vectors plus their nearest neighbours (about half the
// basis) and continues from the residual, which keeps the subspace a Krylov subspace.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "bna/analysis.hpp"

namespace bna::analysis::detail {

// y = Op x, both [n].
using MatVec = std::function<void(const double* x, double* y)>;

struct LanczosResult {
  std::vector<double> top;      // largest eigenvalues, descending  [n_top]
  std::vector<double> bottom;   // smallest eigenvalues, ascending  [n_bottom]
  std::vector<std::vector<double>> top_vec, bottom_vec;  // unit vectors when want_vectors
  int64_t matvecs = 0;
  double max_residual = 0;
  bool converged = false;
};

// Extreme eigenpairs of Op restricted to the orthogonal complement of `deflate` (orthonormal [n]
// vectors). n_top + n_bottom must not exceed n - deflate.size().
LanczosResult lanczos_extremes(int64_t n, const MatVec& op, int n_top, int n_bottom, bool want_vectors,
                               const std::vector<std::vector<double>>& deflate, const SpectralOptions& opt);

// Dense symmetric eigen-decomposition of a small m x m matrix a (row-major, overwritten) by cyclic
// Jacobi: eigenvalues ascending in w, eigenvectors as the columns of v (row-major m x m).
void jacobi_eigen(int m, std::vector<double>& a, std::vector<double>& w, std::vector<double>& v);

}  // namespace bna::analysis::detail
