// Thick-restart Lanczos with full reorthogonalisation (see lanczos.hpp) and a cyclic Jacobi solver.
// Memory: (krylov_dim + 1) basis vectors of n doubles (T = 65,536, dim 64: 34 MiB). Convergence of a
// wanted Ritz pair is judged by its residual ||Op y - theta y|| = |beta * s_last|, so an eigenvalue
// error is about residual^2 / (distance to the next eigenvalue).
#include "lanczos.hpp"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "bna/rng.hpp"
#include "bna/threads.hpp"

namespace bna::analysis::detail {

void jacobi_eigen(int m, std::vector<double>& a, std::vector<double>& w, std::vector<double>& v) {
  v.assign(static_cast<size_t>(m) * m, 0.0);
  for (int i = 0; i < m; ++i) v[i * m + i] = 1.0;
  for (int sweep = 0; sweep < 100; ++sweep) {
    double off = 0, diag = 0;
    for (int i = 0; i < m; ++i) {
      diag += a[i * m + i] * a[i * m + i];
      for (int j = i + 1; j < m; ++j) off += a[i * m + j] * a[i * m + j];
    }
    if (off <= 1e-30 * std::max(diag, 1e-300) || off == 0) break;
    for (int p = 0; p < m; ++p)
      for (int q = p + 1; q < m; ++q) {
        const double apq = a[p * m + q];
        if (apq == 0) continue;
        const double theta = (a[q * m + q] - a[p * m + p]) / (2 * apq);
        const double t = (theta >= 0 ? 1.0 : -1.0) / (std::fabs(theta) + std::sqrt(theta * theta + 1));
        const double c = 1 / std::sqrt(t * t + 1), s = t * c;
        for (int k = 0; k < m; ++k) {  // rows p, q
          const double akp = a[k * m + p], akq = a[k * m + q];
          a[k * m + p] = c * akp - s * akq;
          a[k * m + q] = s * akp + c * akq;
        }
        for (int k = 0; k < m; ++k) {  // columns p, q
          const double apk = a[p * m + k], aqk = a[q * m + k];
          a[p * m + k] = c * apk - s * aqk;
          a[q * m + k] = s * apk + c * aqk;
        }
        for (int k = 0; k < m; ++k) {
          const double vkp = v[k * m + p], vkq = v[k * m + q];
          v[k * m + p] = c * vkp - s * vkq;
          v[k * m + q] = s * vkp + c * vkq;
        }
      }
  }
  std::vector<int> order(m);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int x, int y) { return a[x * m + x] < a[y * m + y]; });
  std::vector<double> vs(static_cast<size_t>(m) * m);
  w.resize(m);
  for (int c = 0; c < m; ++c) {
    w[c] = a[order[c] * m + order[c]];
    for (int k = 0; k < m; ++k) vs[k * m + c] = v[k * m + order[c]];
  }
  v.swap(vs);
}

namespace {

double norm2(int64_t n, const double* x) { return cblas_dnrm2((int)n, x, 1); }

// One classical Gram-Schmidt pass against the orthonormal columns Q [n, k] (column-major, ld n);
// coefficients added to c when non-null. Own loops rather than BLAS dgemv: OpenBLAS's thread pool
// fighting OpenMP's on a small shared machine made each pass up to 30x slower. Large passes split the
// rows into chunks (partial dot products reduced in chunk order, so results do not depend on threads).
void cgs_pass(int64_t n, const double* Q, int64_t k, double* x, double* c, std::vector<double>& tmp) {
  if (k == 0) return;
  constexpr int64_t kChunk = 8192;
  const int64_t nchunks = (n + kChunk - 1) / kChunk;
  const bool par = n * k >= (int64_t{1} << 21) && nchunks > 1;
  tmp.assign(static_cast<size_t>(k) * nchunks, 0.0);
  auto dots = [&](int64_t ch) {
    const int64_t r0 = ch * kChunk, r1 = std::min(n, r0 + kChunk);
    for (int64_t col = 0; col < k; ++col) {
      const double* q = Q + col * n;
      double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};  // independent sums so the loop vectorises
      int64_t i = r0;
      for (; i + 8 <= r1; i += 8)
        for (int u = 0; u < 8; ++u) acc[u] += q[i + u] * x[i + u];
      double s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
      for (; i < r1; ++i) s += q[i] * x[i];
      tmp[ch * k + col] = s;
    }
  };
  if (par) parallel_for(0, nchunks, dots); else for (int64_t ch = 0; ch < nchunks; ++ch) dots(ch);
  std::vector<double> h(k, 0.0);
  for (int64_t ch = 0; ch < nchunks; ++ch)
    for (int64_t col = 0; col < k; ++col) h[col] += tmp[ch * k + col];
  auto update = [&](int64_t ch) {
    const int64_t r0 = ch * kChunk, r1 = std::min(n, r0 + kChunk);
    for (int64_t col = 0; col < k; ++col) {
      const double* q = Q + col * n;
      const double hc = h[col];
      for (int64_t i = r0; i < r1; ++i) x[i] -= hc * q[i];
    }
  };
  if (par) parallel_for(0, nchunks, update); else for (int64_t ch = 0; ch < nchunks; ++ch) update(ch);
  if (c)
    for (int64_t i = 0; i < k; ++i) c[i] += h[i];
}

// x orthogonal to both the deflation space D [n, nd] and the basis V [n, k], V coefficients in c.
// Both spaces are treated in every round (not one after the other) and rounds repeat while a round
// removes more than 30% of the norm (DGKS): when x is nearly inside the span, the rounding left by
// one space is otherwise amplified by the later normalisation and the deflated direction leaks back.
void orthogonalize(int64_t n, const double* D, int64_t nd, const double* V, int64_t k, double* x, double* c,
                   std::vector<double>& tmp) {
  if (c) std::fill(c, c + k, 0.0);
  double before = norm2(n, x);
  for (int round = 0; round < 4; ++round) {
    cgs_pass(n, D, nd, x, nullptr, tmp);
    cgs_pass(n, V, k, x, c, tmp);
    const double after = norm2(n, x);
    if (round >= 1 && after > 0.7 * before) break;
    before = after;
  }
}


}  // namespace

LanczosResult lanczos_extremes(int64_t n, const MatVec& op, int n_top, int n_bottom, bool want_vectors,
                               const std::vector<std::vector<double>>& deflate, const SpectralOptions& opt) {
  const int64_t nd = static_cast<int64_t>(deflate.size());
  const int64_t n_eff = n - nd;
  const int nwant = n_top + n_bottom;
  BNA_ASSERT(nwant >= 1 && nwant <= n_eff);
  int64_t m = std::min<int64_t>(std::max<int64_t>(opt.krylov_dim, 2 * nwant + 4), n_eff);

  std::vector<double> Q(static_cast<size_t>(std::max<int64_t>(nd, 1)) * n);  // deflation basis
  for (int64_t k = 0; k < nd; ++k) std::copy(deflate[k].begin(), deflate[k].end(), Q.begin() + k * n);
  std::vector<double> V(static_cast<size_t>(m + 1) * n), w(n), tmp, coef(m + 1);
  std::vector<double> H(static_cast<size_t>(m) * m, 0.0);
  Rng rng(mix_seed(opt.seed, 0x1a2c05));

  // A fresh unit vector orthogonal to the deflation space and the first k basis vectors; false when
  // that space is exhausted (k == n_eff up to rounding).
  auto random_start = [&](double* x, int64_t k) {
    for (int attempt = 0; attempt < 4; ++attempt) {
      for (int64_t i = 0; i < n; ++i) x[i] = rng.uniform01() - 0.5;
      orthogonalize(n, Q.data(), nd, V.data(), k, x, nullptr, tmp);
      const double nr = norm2(n, x);
      if (nr > 1e-8) { cblas_dscal((int)n, 1.0 / nr, x, 1); return true; }
    }
    return false;
  };

  LanczosResult res;
  random_start(V.data(), 0);
  int64_t k = 0;             // basis vectors carried over from the last restart
  std::vector<double> theta, S, Hc;
  for (;;) {
    int64_t mm = m;          // basis size reached this cycle
    double beta = 0;
    bool exhausted = false;
    for (int64_t j = k; j < m; ++j) {
      double* vj = V.data() + j * n;
      op(vj, w.data());
      ++res.matvecs;
      orthogonalize(n, Q.data(), nd, V.data(), j + 1, w.data(), coef.data(), tmp);
      for (int64_t i = 0; i <= j; ++i) H[i * m + j] = H[j * m + i] = coef[i];
      beta = norm2(n, w.data());
      double* next = V.data() + (j + 1) * n;
      if (beta > 1e-12 * std::max(1.0, std::fabs(coef[j]))) {
        for (int64_t i = 0; i < n; ++i) next[i] = w[i] / beta;
      } else {
        beta = 0;  // invariant subspace: continue from a fresh orthogonal direction (coupling 0)
        if (j + 1 >= n_eff || !random_start(next, j + 1)) { mm = j + 1; exhausted = true; break; }
      }
    }
    // Rayleigh-Ritz on the mm-dimensional basis.
    Hc.assign(static_cast<size_t>(mm) * mm, 0.0);
    for (int64_t i = 0; i < mm; ++i)
      for (int64_t c = 0; c < mm; ++c) Hc[i * mm + c] = H[i * m + c];
    jacobi_eigen(static_cast<int>(mm), Hc, theta, S);
    const double scale = std::max(1.0, std::max(std::fabs(theta.front()), std::fabs(theta.back())));
    auto resid = [&](int64_t idx) { return exhausted ? 0.0 : std::fabs(beta * S[(mm - 1) * mm + idx]); };
    std::vector<int64_t> wanted;
    for (int t = 0; t < n_top; ++t) wanted.push_back(mm - 1 - t);
    for (int b = 0; b < n_bottom; ++b) wanted.push_back(b);
    double max_res = 0;
    for (int64_t idx : wanted) max_res = std::max(max_res, resid(idx));
    const bool converged = exhausted || mm >= n_eff || max_res <= opt.tol * scale;
    if (converged || res.matvecs >= opt.max_matvecs) {
      res.converged = converged;
      res.max_residual = max_res;
      auto ritz_vector = [&](int64_t idx) {
        std::vector<double> y(n, 0.0);
        cblas_dgemv(CblasColMajor, CblasNoTrans, (int)n, (int)mm, 1.0, V.data(), (int)n, &S[idx], (int)mm, 0.0,
                    y.data(), 1);
        const double nr = norm2(n, y.data());
        if (nr > 0) cblas_dscal((int)n, 1.0 / nr, y.data(), 1);
        return y;
      };
      for (int t = 0; t < n_top; ++t) {
        res.top.push_back(theta[mm - 1 - t]);
        if (want_vectors) res.top_vec.push_back(ritz_vector(mm - 1 - t));
      }
      for (int b = 0; b < n_bottom; ++b) {
        res.bottom.push_back(theta[b]);
        if (want_vectors) res.bottom_vec.push_back(ritz_vector(b));
      }
      return res;
    }
    // Thick restart: keep about half the basis, split between the two ends like the wanted pairs.
    const int64_t keep = std::max<int64_t>(nwant + 1, mm / 2);
    int64_t kb = n_bottom == 0 ? 0 : (n_top == 0 ? keep : std::max<int64_t>(n_bottom, keep * n_bottom / nwant));
    int64_t kt = keep - kb;
    std::vector<int64_t> idx;
    for (int64_t b = 0; b < kb; ++b) idx.push_back(b);
    for (int64_t t = 0; t < kt; ++t) idx.push_back(mm - 1 - t);
    k = static_cast<int64_t>(idx.size());
    std::vector<double> Sk(static_cast<size_t>(mm) * k), Y(static_cast<size_t>(n) * k);
    for (int64_t c = 0; c < k; ++c)
      for (int64_t r = 0; r < mm; ++r) Sk[c * mm + r] = S[r * mm + idx[c]];  // column-major mm x k
    cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)k, (int)mm, 1.0, V.data(), (int)n,
                Sk.data(), (int)mm, 0.0, Y.data(), (int)n);
    // The residual direction (v_mm) must move to slot k before Y overwrites the basis.
    std::copy(V.begin() + mm * n, V.begin() + (mm + 1) * n, V.begin() + k * n);
    std::copy(Y.begin(), Y.end(), V.begin());
    std::fill(H.begin(), H.end(), 0.0);
    for (int64_t c = 0; c < k; ++c) H[c * m + c] = theta[idx[c]];
  }
}

}  // namespace bna::analysis::detail
