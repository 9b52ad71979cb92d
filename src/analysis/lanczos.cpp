// Lanczos for extreme eigenvalues (see lanczos.hpp) and a cyclic Jacobi solver.
// Thick restart: (krylov_dim + 1) basis vectors of n doubles (T = 65,536, dim 64: 34 MiB). Three-term
// recurrence: two [n] vectors, two passes over memory per step with a fused operator step; the block
// form (block_size b >= 2): two [n, b] blocks, T_m a band matrix of half-bandwidth b, the same bounds.
// Convergence is judged on eigenvalue error bounds, not residuals: a Ritz pair (theta, y) with residual
// r = ||Op y - theta y|| = |beta * s_last| has an eigenvalue within r, and, when the nearest other
// eigenvalue is at least delta away, within r^2 / delta (Kato-Temple; Parlett, The Symmetric Eigenvalue
// Problem, 11.7). delta is estimated from the neighbouring Ritz values, each moved towards theta by its
// own residual, so a neighbour that has not converged yet gives no quadratic bound.
#include "lanczos.hpp"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <numeric>
#include <utility>
#if defined(__linux__)
#include <sys/mman.h>
#endif

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

// Floor of every reported bound, in ulps of the spectral scale: the Ritz values themselves carry rounding.
constexpr double kRoundingUlps = 16;

double ritz_error_bound(double theta, double r, const double* nb_theta, const double* nb_resid, int num_nb) {
  double delta = std::numeric_limits<double>::infinity();
  for (int k = 0; k < num_nb; ++k) delta = std::min(delta, std::fabs(theta - nb_theta[k]) - nb_resid[k]);
  if (num_nb == 0 || !(delta > 0)) return r;
  return std::min(r, r * r / delta);
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


// [n] doubles, all set to `fill`, on 2 MiB-aligned memory advised for transparent huge pages (Linux; the
// advice is a hint, the values do not depend on it). The recurrence gathers at random rows of its
// current vector (the cycle edges): with 4 KiB pages an 8 MiB vector spans 2,048 pages, about what the
// TLB holds, and the gathers of a step start missing it (T = 1M: operator step 2.46 -> 2.27 ms, best
// of 5 on the 2-core box).
class HugeBuffer {
 public:
  HugeBuffer(size_t n, double fill) {
    constexpr size_t kAlign = size_t{2} << 20;
    const size_t bytes = std::max<size_t>(1, (n * sizeof(double) + kAlign - 1) / kAlign) * kAlign;
    p_ = static_cast<double*>(std::aligned_alloc(kAlign, bytes));
    BNA_ASSERT(p_ != nullptr);
#if defined(MADV_HUGEPAGE)
    madvise(p_, bytes, MADV_HUGEPAGE);  // before the first touch, so the pages are faulted in huge
#endif
    std::fill(p_, p_ + n, fill);
  }
  ~HugeBuffer() { std::free(p_); }
  HugeBuffer(const HugeBuffer&) = delete;
  HugeBuffer& operator=(const HugeBuffer&) = delete;
  double* data() { return p_; }
  const double* data() const { return p_; }
  double& operator[](size_t i) { return p_[i]; }
  void swap(HugeBuffer& o) { std::swap(p_, o.p_); }

 private:
  double* p_ = nullptr;
};

// ---- three-term recurrence without reorthogonalisation (Cullum-Willoughby) ----------------------

// Number of eigenvalues < x of the symmetric tridiagonal (a [m], b [m-1]) starting at row `first`
// (first = 1 gives T-hat, T without its first row and column). Sturm sequence of the LDL^T pivots.
int64_t sturm_count(const std::vector<double>& a, const std::vector<double>& b, int64_t m, int64_t first, double x) {
  int64_t count = 0;
  double d = 1;
  for (int64_t i = first; i < m; ++i) {
    const double off = i > first ? b[i - 1] * b[i - 1] : 0.0;
    d = (a[i] - x) - (i > first ? off / d : 0.0);
    if (d == 0) d = -1e-300;  // x hit a pivot exactly: count it as negative, consistently
    if (d < 0) ++count;
  }
  return count;
}

// The k-th smallest eigenvalue (k = 0 .. m-1) of the tridiagonal, by bisection to ~2 ulp.
double tridiag_kth(const std::vector<double>& a, const std::vector<double>& b, int64_t m, int64_t k, double lo,
                   double hi) {
  for (int it = 0; it < 200; ++it) {
    const double mid = 0.5 * (lo + hi);
    if (mid <= lo || mid >= hi) break;
    if (sturm_count(a, b, m, 0, mid) > k) hi = mid; else lo = mid;
  }
  return 0.5 * (lo + hi);
}

// |last component| of the unit eigenvector of the tridiagonal for eigenvalue theta (inverse iteration,
// Gaussian elimination with partial pivoting on T - theta I).
double last_component(const std::vector<double>& a, const std::vector<double>& b, int64_t m, double theta, double scale) {
  if (m == 1) return 1.0;
  std::vector<double> x(m, 1.0), d(m), du(m), du2(m), dl(m);
  std::vector<uint8_t> swapped(m, 0);
  const double shift = theta + 1e-14 * scale;  // off the exact eigenvalue so the solve stays finite
  // LU of the tridiagonal with partial pivoting (LAPACK dgttrf layout).
  for (int64_t i = 0; i < m; ++i) d[i] = a[i] - shift;
  for (int64_t i = 0; i + 1 < m; ++i) { du[i] = b[i]; dl[i] = b[i]; du2[i] = 0; }
  for (int64_t i = 0; i + 1 < m; ++i) {
    if (std::fabs(d[i]) >= std::fabs(dl[i])) {
      if (d[i] == 0) d[i] = 1e-300;
      const double f = dl[i] / d[i];
      dl[i] = f;
      d[i + 1] -= f * du[i];
    } else {
      const double f = d[i] / dl[i];
      d[i] = dl[i];
      dl[i] = f;
      const double t = du[i];
      du[i] = d[i + 1];
      d[i + 1] = t - f * d[i + 1];
      if (i + 2 < m) { du2[i] = du[i + 1]; du[i + 1] = -f * du[i + 1]; }
      swapped[i] = 1;
    }
  }
  if (d[m - 1] == 0) d[m - 1] = 1e-300;
  for (int iter = 0; iter < 3; ++iter) {
    for (int64_t i = 0; i + 1 < m; ++i) {  // L solve
      if (swapped[i]) { const double t = x[i]; x[i] = x[i + 1]; x[i + 1] = t - dl[i] * x[i + 1]; }
      else x[i + 1] -= dl[i] * x[i];
    }
    x[m - 1] /= d[m - 1];  // U solve
    x[m - 2] = (x[m - 2] - du[m - 2] * x[m - 1]) / d[m - 2];
    for (int64_t i = m - 3; i >= 0; --i) x[i] = (x[i] - du[i] * x[i + 1] - du2[i] * x[i + 2]) / d[i];
    double nr = 0;
    for (double v : x) nr += v * v;
    nr = std::sqrt(nr);
    if (!(nr > 0) || !std::isfinite(nr)) return 1.0;  // no information: report the worst bound
    for (double& v : x) v /= nr;
  }
  return std::fabs(x[m - 1]);
}

// Good (non-spurious) distinct Ritz values at one end of the tridiagonal, most extreme first, with their
// residuals beta_m |s_m|. A group of numerically equal Ritz values counts once and is converged (a copy
// only appears after convergence; its residual is reported as the grouping tolerance); a simple Ritz
// value that is also an eigenvalue of T-hat is a spurious ghost (Cullum-Willoughby) and is dropped.
struct GoodValue {
  double theta, resid;
};
std::vector<GoodValue> good_values(const std::vector<double>& a, const std::vector<double>& b, int64_t m, double beta_m,
                                   int want, bool from_top, double lo, double hi, double scale) {
  const double eps = std::numeric_limits<double>::epsilon();
  const double tol = std::max(1e-12, 64 * eps * static_cast<double>(m)) * scale;
  std::vector<GoodValue> out;
  int64_t idx = 0;
  auto kth = [&](int64_t r) { return tridiag_kth(a, b, m, from_top ? m - 1 - r : r, lo, hi); };
  double theta = m > 0 ? kth(0) : 0;
  while (static_cast<int>(out.size()) < want && idx < m) {
    int64_t group = 1;
    double next = 0;
    while (idx + group < m) {
      next = kth(idx + group);
      if (std::fabs(next - theta) > tol) break;
      ++group;
    }
    bool good = true;
    double resid = tol;  // a group of copies: converged, the copies agree to within tol
    if (group == 1) {
      const int64_t hat = sturm_count(a, b, m, 1, theta + tol) - sturm_count(a, b, m, 1, theta - tol);
      good = hat == 0;
      if (good) resid = std::fabs(beta_m) * last_component(a, b, m, theta, scale);
    }
    if (good) out.push_back({theta, resid});
    idx += group;
    if (idx < m) theta = next;
  }
  return out;
}

// Bounds of the values at one end (most extreme first): value k's neighbours are k - 1 and k + 1 of the
// same list (the list holds one value more than is reported, so the innermost reported one has both).
std::vector<double> end_bounds(const std::vector<GoodValue>& v, int reported) {
  std::vector<double> out;
  for (int k = 0; k < reported && k < static_cast<int>(v.size()); ++k) {
    double th[2], rr[2];
    int nb = 0;
    if (k > 0) { th[nb] = v[k - 1].theta; rr[nb++] = v[k - 1].resid; }
    if (k + 1 < static_cast<int>(v.size())) { th[nb] = v[k + 1].theta; rr[nb++] = v[k + 1].resid; }
    out.push_back(ritz_error_bound(v[k].theta, v[k].resid, th, rr, nb));
  }
  return out;
}

// One convergence check of a values-only recurrence (single-vector or block) from the good values at
// both ends. When the Krylov space is invariant the Ritz values are eigenvalues up to rounding: every
// bound is floored at the rounding of the eigenvalues themselves (a few ulps of the spectral scale).
struct EndCheck {
  std::vector<double> tb, bb;  // bounds of the reported values at the top / bottom
  double scale = 1.0, max_res = 0, max_bound = 0, floor_b = 0;
  bool enough = false, converged = false;
  bool near = false, close = false;  // within 1e4x / 100x of the target (the check schedule)
};
EndCheck check_ends(const std::vector<GoodValue>& top, const std::vector<GoodValue>& bot, int n_top, int n_bottom,
                    double tol, double scale_now, bool invariant) {
  EndCheck e;
  e.tb = end_bounds(top, n_top);
  e.bb = end_bounds(bot, n_bottom);
  for (const auto& [v, b] : {std::pair{&top, &e.tb}, std::pair{&bot, &e.bb}})
    for (size_t k = 0; k < b->size(); ++k) {
      e.scale = std::max(e.scale, std::fabs((*v)[k].theta));
      e.max_res = std::max(e.max_res, (*v)[k].resid);
      e.max_bound = std::max(e.max_bound, (*b)[k]);
    }
  e.floor_b = kRoundingUlps * std::numeric_limits<double>::epsilon() * scale_now;
  if (invariant) e.max_bound = 0;
  e.max_bound = std::max(e.max_bound, e.floor_b);
  e.enough = static_cast<int>(e.tb.size()) == n_top && static_cast<int>(e.bb.size()) == n_bottom;
  const double target = tol * e.scale;
  e.converged = e.enough && e.max_bound <= target;
  e.near = e.enough && e.max_bound <= 1e4 * target;
  e.close = e.enough && e.max_bound <= 100 * target;
  return e;
}

// The result of a final check. Too few distinct values (tiny or exhausted spaces): the last one found
// is repeated and the result is not converged.
void report_ends(LanczosResult& res, const std::vector<GoodValue>& top, const std::vector<GoodValue>& bot,
                 const EndCheck& e, int n_top, int n_bottom, bool invariant) {
  res.converged = e.converged || (invariant && e.enough);
  res.max_residual = invariant ? 0.0 : e.max_res;
  res.max_bound = e.max_bound;
  for (size_t k = 0; k < e.tb.size(); ++k) {
    res.top.push_back(top[k].theta);
    res.top_bound.push_back(std::max(invariant ? 0.0 : e.tb[k], e.floor_b));
  }
  for (size_t k = 0; k < e.bb.size(); ++k) {
    res.bottom.push_back(bot[k].theta);
    res.bottom_bound.push_back(std::max(invariant ? 0.0 : e.bb[k], e.floor_b));
  }
  while (static_cast<int>(res.top.size()) < n_top) {
    res.top.push_back(res.top.empty() ? (res.bottom.empty() ? 0.0 : res.bottom.back()) : res.top.back());
    res.top_bound.push_back(res.top_bound.empty() ? 0.0 : res.top_bound.back());
    res.converged = false;
  }
  while (static_cast<int>(res.bottom.size()) < n_bottom) {
    res.bottom.push_back(res.bottom.empty() ? res.top.back() : res.bottom.back());
    res.bottom_bound.push_back(res.bottom_bound.empty() ? res.top_bound.back() : res.bottom_bound.back());
    res.converged = false;
  }
}

// The three-term recurrence (Paige's variant: u = Op v_j - beta_j v_{j-1}, alpha_j = v_j . u,
// w = u - alpha_j v_j, beta_{j+1} = ||w||). The vectors are kept unnormalised (v_j = x / sigma, with
// sigma = beta_j) so a step is two passes over memory: the fused operator step, then w and ||w||^2. One
// deflation vector is projected out of u inside those passes (q . u comes with the step); more fall
// back to explicit projections.
LanczosResult lanczos_values_cw(int64_t n, const MatVec& op, const LanczosStep& step_in, int n_top, int n_bottom,
                                const std::vector<std::vector<double>>& deflate, const SpectralOptions& opt) {
  const int64_t nd = static_cast<int64_t>(deflate.size());
  constexpr int64_t kChunk = 16384;
  const int64_t nchunks = (n + kChunk - 1) / kChunk;
  std::vector<double> part(2 * nchunks);
  // Deterministic parallel reductions: per-chunk partial sums added in chunk order.
  // Threads only for long vectors: on a loaded 2-core machine a fork/join that waits for a descheduled
  // thread costs more than a pass over 1 MiB.
  const bool par = n >= (int64_t{1} << 17);
  auto for_chunks = [&](auto&& fn) {
    if (par) parallel_for(0, nchunks, fn); else for (int64_t ch = 0; ch < nchunks; ++ch) fn(ch);
  };
  // Descending chunk order within each thread's static block of rows (the split of schedule(static):
  // the first N % nt threads get one chunk more). Used for the pass after the operator step, which runs
  // ascending over the same blocks: each thread starts where its step pass ended, on the rows still in
  // the last-level cache, and ends where the next step pass starts.
  const int nt = num_threads();
  auto for_chunks_reverse = [&](auto&& fn) {
    if (!par) { for (int64_t ch = nchunks - 1; ch >= 0; --ch) fn(ch); return; }
    parallel_for(0, nt, [&](int64_t t) {
      const int64_t q = nchunks / nt, r = nchunks % nt;
      const int64_t b0 = t * q + std::min<int64_t>(t, r), b1 = b0 + q + (t < r ? 1 : 0);
      for (int64_t ch = b1 - 1; ch >= b0; --ch) fn(ch);
    });
  };
  auto reduce2 = [&](auto&& body, bool reverse = false) {  // body(r0, r1, s0, s1): two sums over rows [r0, r1)
    auto one = [&](int64_t ch) {
      const int64_t r0 = ch * kChunk, r1 = std::min(n, r0 + kChunk);
      double s0 = 0, s1 = 0;
      body(r0, r1, s0, s1);
      part[2 * ch] = s0;
      part[2 * ch + 1] = s1;
    };
    if (reverse) for_chunks_reverse(one); else for_chunks(one);
    double t0 = 0, t1 = 0;
    for (int64_t ch = 0; ch < nchunks; ++ch) { t0 += part[2 * ch]; t1 += part[2 * ch + 1]; }
    return std::pair<double, double>(t0, t1);
  };
  auto project_out = [&](double* x) {  // x -= Q Q^T x for the deflation vectors, twice
    for (int round = 0; round < 2; ++round)
      for (int64_t k = 0; k < nd; ++k) {
        const double* q = deflate[k].data();
        const double h = reduce2([&](int64_t r0, int64_t r1, double& s0, double&) {
          for (int64_t i = r0; i < r1; ++i) s0 += q[i] * x[i];
        }).first;
        for_chunks([&](int64_t ch) {
          const int64_t r0 = ch * kChunk, r1 = std::min(n, r0 + kChunk);
          for (int64_t i = r0; i < r1; ++i) x[i] -= h * q[i];
        });
      }
  };
  // Generic fused step over the plain matvec (one extra pass) when the operator has none.
  std::vector<double> tmp;
  LanczosStep step = step_in;
  if (!step) {
    tmp.resize(n);
    step = [&](const double* x, double sx, double* u, double cu, const double* q) {
      op(x, tmp.data());
      const double* t = tmp.data();
      return reduce2([&](int64_t r0, int64_t r1, double& s0, double& s1) {
        for (int64_t i = r0; i < r1; ++i) {
          const double ui = sx * t[i] - (cu != 0 ? cu * u[i] : 0.0);
          u[i] = ui;
          s0 += x[i] * ui;
          if (q) s1 += q[i] * ui;
        }
      });
    };
  }
  const double* q1 = nd == 1 ? deflate[0].data() : nullptr;

  HugeBuffer xv(n, 0.0), pv(n, 0.0);  // x: current (v_j = x / sigma), p: previous, then u, then w
  Rng rng(mix_seed(opt.seed, 0x1a2c05));
  for (int64_t i = 0; i < n; ++i) xv[i] = rng.uniform01() - 0.5;
  project_out(xv.data());
  double sigma = norm2(n, xv.data()), sigma_p = 1.0, beta = 0.0;
  // q . x of the current vector, carried from pass 2 (the q component of w must be removed exactly:
  // projecting only u would leave q . w = -alpha_j (q . v_j), which the recurrence then amplifies).
  double qx = 0;
  if (q1) qx = reduce2([&](int64_t r0, int64_t r1, double& s0, double&) {
    for (int64_t i = r0; i < r1; ++i) s0 += q1[i] * xv[i];
  }).first;
  std::vector<double> alpha, betas;  // T_m: diagonal alpha [m], off-diagonal betas [m-1]; betas.back() = beta_m
  LanczosResult res;
  double gmin = 0, gmax = 0;
  int64_t next_check = 32;
  for (;;) {
    // Pass 1: u = Op v_j - beta_j v_{j-1} into p; alpha_j = v_j . u; h = q . u.
    const auto [xu, qu] = step(xv.data(), 1.0 / sigma, pv.data(), beta / sigma_p, q1);
    ++res.matvecs;
    const double a = xu / sigma;
    // Pass 2: w = u - alpha_j v_j - h q with h = q . (u - alpha_j v_j), ||w||^2 and q . w.
    const double cx = a / sigma, h = q1 ? qu - cx * qx : 0.0;
    const auto [nrm2, qw] = reduce2([&](int64_t r0, int64_t r1, double& s0, double& s1) {
      double* w = pv.data();
      const double* x = xv.data();
      if (q1) {
        for (int64_t i = r0; i < r1; ++i) {
          const double t = w[i] - cx * x[i] - h * q1[i];
          w[i] = t;
          s0 += t * t;
          s1 += q1[i] * t;
        }
      } else {
        for (int64_t i = r0; i < r1; ++i) { const double t = w[i] - cx * x[i]; w[i] = t; s0 += t * t; }
      }
    }, /*reverse=*/true);
    // Several deflation vectors: project them out of w itself (then its norm again).
    const double bnext = nd > 1 ? (project_out(pv.data()), norm2(n, pv.data())) : std::sqrt(nrm2);
    alpha.push_back(a);
    betas.push_back(bnext);
    const int64_t m = static_cast<int64_t>(alpha.size());
    // Gershgorin bounds of T_m (for bisection), kept up to date row by row.
    {
      const double bl = m >= 2 ? std::fabs(betas[m - 2]) : 0.0;
      if (m == 1) { gmin = a; gmax = a; }
      gmin = std::min(gmin, a - bl - std::fabs(bnext));
      gmax = std::max(gmax, a + bl + std::fabs(bnext));
    }
    const double scale_now = std::max({1.0, std::fabs(gmin), std::fabs(gmax)});
    const bool invariant = bnext <= 1e-12 * scale_now;
    const bool last = invariant || m >= n - nd || res.matvecs >= opt.max_matvecs;
    if (m >= next_check || last) {
      const double lo = gmin - 1e-9 * scale_now, hi = gmax + 1e-9 * scale_now;
      const double bm = invariant ? 0.0 : bnext;
      // One value beyond those reported at each end: the inner neighbour of the innermost one.
      auto top = good_values(alpha, betas, m, bm, n_top > 0 ? n_top + 1 : 0, true, lo, hi, scale_now);
      auto bot = good_values(alpha, betas, m, bm, n_bottom > 0 ? n_bottom + 1 : 0, false, lo, hi, scale_now);
      const EndCheck e = check_ends(top, bot, n_top, n_bottom, opt.tol, scale_now, invariant);
      // Check often once the bound is near the target (it falls steeply once the wanted value separates
      // from its neighbour), rarely before (each check bisects T_m: O(m) per Sturm count, about the cost
      // of one step at T = 1M): every m/8 steps, every m/40 within 1e4x of the target, every 16 within
      // 100x (T = 1M: 2,793 -> 2,787 matvecs; the overshoot past the first converged step is < 16).
      next_check = m + std::max<int64_t>(16, e.close ? 0 : e.near ? m / 40 : m / 8);
      if (e.converged || last) {
        report_ends(res, top, bot, e, n_top, n_bottom, invariant);
        return res;
      }
    }
    // v_{j+1} = w / beta_{j+1}: w stays in p unnormalised; the roles of the two buffers swap.
    xv.swap(pv);
    qx = qw;
    sigma_p = sigma;
    sigma = bnext;
    beta = bnext;
  }
}


// ---- block three-term recurrence without reorthogonalisation -------------------------------------
//
// Block Lanczos with nb columns: A Q_j = Q_{j-1} B_{j-1}^T + Q_j A_j + Q_{j+1} B_j, Q_j [n, nb] with
// orthonormal columns, A_j symmetric and B_j upper triangular (nb x nb), so T_m is a symmetric band
// matrix of half-bandwidth nb. A cluster of nearly equal eigenvalues of size <= nb converges at the rate
// set by its distance to the rest of the spectrum, not by the splitting inside it. Blocks are stored
// unnormalised (W_j = Q_j R_j, R_j = chol(W_j^T W_j)) and normalised on the fly by the operator step
// (S = R_j^-1), so a step is two passes over memory like the single-vector recurrence.

// Symmetric band matrix of half-bandwidth nb, order N: lower band, band[i * (nb + 1) + d] = T(i, i - d).
struct Band {
  int nb = 1;
  int64_t N = 0;
  std::vector<double> v;
  double at(int64_t i, int64_t j) const {  // any (i, j)
    if (i < j) std::swap(i, j);
    const int64_t d = i - j;
    return d > nb ? 0.0 : v[i * (nb + 1) + d];
  }
};

// Number of eigenvalues < x of the trailing principal submatrix T[first:, first:], from the signs of
// the pivots of an unpivoted LDL^T of T - x I (Sylvester's law of inertia).
int64_t band_sturm(const Band& t, int64_t first, double x, std::vector<double>& l) {
  const int nb = t.nb;
  const int64_t N = t.N;
  // l[i * nb + (i - k - 1)] = L(i, k) for i - nb <= k < i; the pivots d_i follow at l[N * nb + i].
  // Only entries written in this call are read, so l is not cleared (a check bisects thousands of times).
  l.resize(static_cast<size_t>(N) * (nb + 1));
  double* dd = l.data() + static_cast<size_t>(N) * nb;
  const double* tv = t.v.data();
  int64_t count = 0;
  for (int64_t i = first; i < N; ++i) {
    const int64_t j0 = std::max<int64_t>(first, i - nb);
    const double* ti = tv + i * (nb + 1);  // ti[d] = T(i, i - d)
    double* li = l.data() + i * nb;
    double d = ti[0] - x;
    for (int64_t j = j0; j < i; ++j) {  // L(i, j) = (T(i, j) - sum_{k<j} L(i,k) d_k L(j,k)) / d_j
      const double* lj = l.data() + j * nb;
      double s = ti[i - j];
      for (int64_t k = j0; k < j; ++k) s -= li[i - k - 1] * dd[k] * lj[j - k - 1];
      const double lij = s / dd[j];
      li[i - j - 1] = lij;
      d -= lij * lij * dd[j];
    }
    if (d == 0) d = -1e-300;  // x hit a pivot exactly: count it as negative, consistently
    dd[i] = d;
    if (d < 0) ++count;
  }
  return count;
}

double band_kth(const Band& t, int64_t k, double lo, double hi, std::vector<double>& l) {
  for (int it = 0; it < 200; ++it) {
    const double mid = 0.5 * (lo + hi);
    if (mid <= lo || mid >= hi) break;
    if (band_sturm(t, 0, mid, l) > k) hi = mid; else lo = mid;
  }
  return 0.5 * (lo + hi);
}

// Unit eigenvector s of T for the eigenvalue theta (inverse iteration, Gaussian elimination with partial
// pivoting on the band of T - theta I); returns ||T s - theta s||, which the caller adds to the Ritz
// residual so that an inaccurate theta or s can only enlarge the bound.
double band_eigvec(const Band& t, double theta, double scale, std::vector<double>& s) {
  const int nb = t.nb;
  const int64_t N = t.N, w = 3 * nb + 1;  // row i holds columns [i - nb, i + 2 nb] (U fills to 2 nb)
  std::vector<double> a(static_cast<size_t>(N) * w, 0.0), lm(static_cast<size_t>(N) * nb, 0.0);
  std::vector<int64_t> piv(N);
  auto A = [&](int64_t i, int64_t j) -> double& { return a[i * w + (j - i + nb)]; };
  const double shift = theta + 1e-14 * scale;  // off the exact eigenvalue so the solve stays finite
  for (int64_t i = 0; i < N; ++i)
    for (int64_t j = std::max<int64_t>(0, i - nb); j <= std::min<int64_t>(N - 1, i + nb); ++j)
      A(i, j) = t.at(i, j) - (i == j ? shift : 0.0);
  for (int64_t k = 0; k < N; ++k) {
    const int64_t rmax = std::min<int64_t>(N - 1, k + nb), cmax = std::min<int64_t>(N - 1, k + 2 * nb);
    int64_t p = k;
    for (int64_t r = k + 1; r <= rmax; ++r)
      if (std::fabs(A(r, k)) > std::fabs(A(p, k))) p = r;
    piv[k] = p;
    if (p != k)
      for (int64_t j = k; j <= cmax; ++j) std::swap(A(k, j), A(p, j));
    if (A(k, k) == 0) A(k, k) = 1e-300;
    for (int64_t r = k + 1; r <= rmax; ++r) {
      const double f = A(r, k) / A(k, k);
      lm[k * nb + (r - k - 1)] = f;
      A(r, k) = 0;
      if (f != 0)
        for (int64_t j = k + 1; j <= cmax; ++j) A(r, j) -= f * A(k, j);
    }
  }
  s.assign(N, 1.0);
  for (int iter = 0; iter < 3; ++iter) {
    for (int64_t k = 0; k < N; ++k) {  // L solve with the row swaps
      std::swap(s[k], s[piv[k]]);
      for (int64_t r = k + 1; r <= std::min<int64_t>(N - 1, k + nb); ++r) s[r] -= lm[k * nb + (r - k - 1)] * s[k];
    }
    for (int64_t i = N - 1; i >= 0; --i) {  // U solve
      double v = s[i];
      for (int64_t j = i + 1; j <= std::min<int64_t>(N - 1, i + 2 * nb); ++j) v -= A(i, j) * s[j];
      s[i] = v / A(i, i);
    }
    double nr = 0;
    for (double v : s) nr += v * v;
    nr = std::sqrt(nr);
    if (!(nr > 0) || !std::isfinite(nr)) { s.assign(N, 1.0 / std::sqrt(static_cast<double>(N))); break; }
    for (double& v : s) v /= nr;
  }
  double r2 = 0;
  for (int64_t i = 0; i < N; ++i) {
    double v = -theta * s[i];
    for (int64_t j = std::max<int64_t>(0, i - nb); j <= std::min<int64_t>(N - 1, i + nb); ++j) v += t.at(i, j) * s[j];
    r2 += v * v;
  }
  return std::sqrt(r2);
}

// Upper Cholesky factor R (H = R^T R) of the nb x nb Gram matrix h (row-major); false when a pivot is
// <= floor (the block has lost rank: the Krylov space is, or is about to be, invariant).
bool small_cholesky(int nb, const double* h, double* r, double floor) {
  std::fill(r, r + nb * nb, 0.0);
  for (int j = 0; j < nb; ++j) {
    double d = h[j * nb + j];
    for (int k = 0; k < j; ++k) d -= r[k * nb + j] * r[k * nb + j];
    if (!(d > floor)) return false;
    r[j * nb + j] = std::sqrt(d);
    for (int c = j + 1; c < nb; ++c) {
      double v = h[j * nb + c];
      for (int k = 0; k < j; ++k) v -= r[k * nb + j] * r[k * nb + c];
      r[j * nb + c] = v / r[j * nb + j];
    }
  }
  return true;
}

// Inverse of an upper-triangular nb x nb matrix.
void upper_inverse(int nb, const double* r, double* ri) {
  std::fill(ri, ri + nb * nb, 0.0);
  for (int c = 0; c < nb; ++c) {
    ri[c * nb + c] = 1.0 / r[c * nb + c];
    for (int i = c - 1; i >= 0; --i) {
      double v = 0;
      for (int k = i + 1; k <= c; ++k) v += r[i * nb + k] * ri[k * nb + c];
      ri[i * nb + c] = -v / r[i * nb + i];
    }
  }
}

// Good distinct Ritz values at one end of T_m (band), as good_values above: a group of numerically equal
// values counts once (converged copies: residual the grouping tolerance), a simple value that is also an
// eigenvalue of T-hat (T_m without its first block row and column, the block analogue of the
// Cullum-Willoughby test: its eigenvector has no component on the start block) is spurious and dropped.
// The residual of a simple value is ||B_m s_m|| + ||T s - theta s|| (s_m: the last block of its unit
// eigenvector s), plus `lost`, the norm of a last block's direction left out of B_m when it lost rank.
std::vector<GoodValue> band_good_values(const Band& t, const double* bm, double lost, int want, bool from_top,
                                        double lo, double hi, double scale, std::vector<double>& l) {
  const int nb = t.nb;
  const int64_t N = t.N;
  const double eps = std::numeric_limits<double>::epsilon();
  const double tol = std::max(1e-12, 64 * eps * static_cast<double>(N)) * scale;
  std::vector<GoodValue> out;
  int64_t idx = 0;
  auto kth = [&](int64_t r) { return band_kth(t, from_top ? N - 1 - r : r, lo, hi, l); };
  double theta = N > 0 ? kth(0) : 0;
  std::vector<double> s;
  while (static_cast<int>(out.size()) < want && idx < N) {
    int64_t group = 1;
    double next = 0;
    while (idx + group < N) {
      next = kth(idx + group);
      if (std::fabs(next - theta) > tol) break;
      ++group;
    }
    bool good = true;
    double resid = tol;
    if (group == 1) {
      const int64_t hat = N > nb ? band_sturm(t, nb, theta + tol, l) - band_sturm(t, nb, theta - tol, l) : 0;
      good = hat == 0;
      if (good) {
        resid = band_eigvec(t, theta, scale, s);
        double r2 = 0;
        for (int r = 0; r < nb; ++r) {  // (B_m s_m)_r, B_m upper triangular
          double v = 0;
          for (int c = r; c < nb; ++c) v += bm[r * nb + c] * s[N - nb + c];
          r2 += v * v;
        }
        resid += std::sqrt(r2) + lost;
      }
    }
    if (good) out.push_back({theta, resid});
    idx += group;
    if (idx < N) theta = next;
  }
  return out;
}

// Rows [r0, r1) of w <- w - x M (x, w [n, kB] row-major, M kB x kB) and acc += w^T w.
template <int kB>
void block_update(int64_t r0, int64_t r1, const double* __restrict x, const double* mm, double* __restrict w,
                  double* acc_io) {
  double M[kB * kB], acc[kB * kB];
  for (int k = 0; k < kB * kB; ++k) { M[k] = mm[k]; acc[k] = acc_io[k]; }
  for (int64_t i = r0; i < r1; ++i) {
    double t[kB];
    for (int c = 0; c < kB; ++c) {
      double v = w[i * kB + c];
      for (int k = 0; k < kB; ++k) v -= x[i * kB + k] * M[k * kB + c];
      t[c] = v;
    }
    for (int c = 0; c < kB; ++c) w[i * kB + c] = t[c];
    for (int k = 0; k < kB; ++k)
      for (int c = 0; c < kB; ++c) acc[k * kB + c] += t[k] * t[c];
  }
  for (int k = 0; k < kB * kB; ++k) acc_io[k] = acc[k];
}

LanczosResult lanczos_values_block(int64_t n, const MatVec& op, const BlockStep& bstep_in, int nb, int n_top,
                                   int n_bottom, const std::vector<std::vector<double>>& deflate,
                                   const SpectralOptions& opt) {
  const int64_t nd = static_cast<int64_t>(deflate.size());
  const int64_t B2 = static_cast<int64_t>(nb) * nb;
  constexpr int64_t kChunk = 8192;
  const int64_t nchunks = (n + kChunk - 1) / kChunk;
  const bool par = n >= (int64_t{1} << 16);
  std::vector<double> part(static_cast<size_t>(nchunks) * B2);
  // Sums over rows in fixed chunks, reduced in chunk order (results do not depend on threads).
  // body(r0, r1, acc) adds into acc [nb * nb]; the total is written to out.
  auto reduce = [&](auto&& body, double* out) {
    auto one = [&](int64_t ch) {
      const int64_t r0 = ch * kChunk, r1 = std::min(n, r0 + kChunk);
      double* acc = part.data() + ch * B2;
      std::fill(acc, acc + B2, 0.0);
      body(r0, r1, acc);
    };
    if (par) parallel_for(0, nchunks, one); else for (int64_t ch = 0; ch < nchunks; ++ch) one(ch);
    std::fill(out, out + B2, 0.0);
    for (int64_t ch = 0; ch < nchunks; ++ch)
      for (int64_t k = 0; k < B2; ++k) out[k] += part[ch * B2 + k];
  };
  auto gram = [&](const double* w, double* h) {  // h = w^T w
    reduce([&](int64_t r0, int64_t r1, double* acc) {
      for (int64_t i = r0; i < r1; ++i)
        for (int k = 0; k < nb; ++k)
          for (int c = 0; c < nb; ++c) acc[k * nb + c] += w[i * nb + k] * w[i * nb + c];
    }, h);
  };
  // Every column of w minus its projection on the deflation vectors, twice.
  auto project_out = [&](double* w) {
    std::vector<double> h(B2);
    for (int round = 0; round < 2; ++round)
      for (int64_t k = 0; k < nd; ++k) {
        const double* q = deflate[k].data();
        reduce([&](int64_t r0, int64_t r1, double* acc) {
          for (int64_t i = r0; i < r1; ++i)
            for (int c = 0; c < nb; ++c) acc[c] += q[i] * w[i * nb + c];
        }, h.data());
        auto upd = [&](int64_t ch) {
          const int64_t r0 = ch * kChunk, r1 = std::min(n, r0 + kChunk);
          for (int64_t i = r0; i < r1; ++i)
            for (int c = 0; c < nb; ++c) w[i * nb + c] -= h[c] * q[i];
        };
        if (par) parallel_for(0, nchunks, upd); else for (int64_t ch = 0; ch < nchunks; ++ch) upd(ch);
      }
  };
  // Generic block step over the plain matvec, one column at a time, when the operator has none.
  BlockStep bstep = bstep_in;
  std::vector<double> cx, cy;
  if (!bstep) {
    cx.resize(n);
    cy.resize(static_cast<size_t>(n) * nb);
    bstep = [&](int, const double* x, const double* S, double* u, const double* C, double* G) {
      for (int c = 0; c < nb; ++c) {
        for (int64_t i = 0; i < n; ++i) cx[i] = x[i * nb + c];
        op(cx.data(), cy.data() + c * n);
      }
      reduce([&](int64_t r0, int64_t r1, double* acc) {
        for (int64_t i = r0; i < r1; ++i) {
          double un[4];
          for (int c = 0; c < nb; ++c) {
            double v = 0;
            for (int k = 0; k < nb; ++k) v += cy[k * n + i] * S[k * nb + c];
            if (C)
              for (int k = 0; k < nb; ++k) v -= u[i * nb + k] * C[k * nb + c];
            un[c] = v;
          }
          for (int c = 0; c < nb; ++c) u[i * nb + c] = un[c];
          for (int k = 0; k < nb; ++k)
            for (int c = 0; c < nb; ++c) acc[k * nb + c] += x[i * nb + k] * un[c];
        }
      }, G);
    };
  }

  // x: W_j (Q_j = W_j R_j^-1), p: W_{j-1}, then U, then W_{j+1}.
  HugeBuffer xv(static_cast<size_t>(n) * nb, 0.0), pv(static_cast<size_t>(n) * nb, 0.0);
  Rng rng(mix_seed(opt.seed, 0x1a2c05));
  for (int c = 0; c < nb; ++c)  // column by column: column 0 is the single-vector start vector
    for (int64_t i = 0; i < n; ++i) xv[i * nb + c] = rng.uniform01() - 0.5;
  std::vector<double> H(B2), R(B2), Ri(B2), Rp(B2), Rpi(B2), S(B2), C(B2), G(B2), Aj(B2), M(B2);
  LanczosResult res;
  project_out(xv.data());
  for (int pass = 0; pass < 2; ++pass) {  // start block: Cholesky QR twice, so Q_1 is orthonormal
    gram(xv.data(), H.data());
    if (!small_cholesky(nb, H.data(), R.data(), 0.0)) { BNA_ASSERT(false && "block Lanczos: singular start block"); }
    if (pass == 0) {
      upper_inverse(nb, R.data(), Ri.data());
      for (int64_t i = 0; i < n; ++i) {
        double row[4];
        for (int c = 0; c < nb; ++c) {
          double v = 0;
          for (int k = 0; k <= c; ++k) v += xv[i * nb + k] * Ri[k * nb + c];
          row[c] = v;
        }
        for (int c = 0; c < nb; ++c) xv[i * nb + c] = row[c];
      }
    }
  }
  upper_inverse(nb, R.data(), Ri.data());
  std::vector<double> adiag, bsub;  // A_j and B_j (= R_{j+1}), nb x nb each, row-major
  double gmin = 0, gmax = 0;
  int64_t next_check = 16;
  std::vector<double> work;
  for (int64_t m = 1;; ++m) {
    // Pass 1: U = A Q_j - Q_{j-1} B_{j-1}^T = (A W_j) R_j^-1 - W_{j-1} (R_{j-1}^-1 R_j^T); G = W_j^T U.
    if (m > 1)
      for (int r = 0; r < nb; ++r)
        for (int c = 0; c < nb; ++c) {
          double v = 0;
          for (int k = 0; k < nb; ++k) v += Rpi[r * nb + k] * R[c * nb + k];  // (R_j^T)[k][c] = R[c][k]
          C[r * nb + c] = v;
        }
    bstep(nb, xv.data(), Ri.data(), pv.data(), m > 1 ? C.data() : nullptr, G.data());
    res.matvecs += nb;
    // A_j = Q_j^T U = R_j^-T G, symmetrised (it is symmetric up to rounding).
    for (int r = 0; r < nb; ++r)
      for (int c = 0; c < nb; ++c) {
        double v = 0;
        for (int k = 0; k <= r; ++k) v += Ri[k * nb + r] * G[k * nb + c];
        Aj[r * nb + c] = v;
      }
    for (int r = 0; r < nb; ++r)
      for (int c = r + 1; c < nb; ++c) Aj[r * nb + c] = Aj[c * nb + r] = 0.5 * (Aj[r * nb + c] + Aj[c * nb + r]);
    // Pass 2: W_{j+1} = U - Q_j A_j = U - W_j (R_j^-1 A_j), and its Gram matrix.
    for (int r = 0; r < nb; ++r)
      for (int c = 0; c < nb; ++c) {
        double v = 0;
        for (int k = r; k < nb; ++k) v += Ri[r * nb + k] * Aj[k * nb + c];
        M[r * nb + c] = v;
      }
    {
      double* w = pv.data();
      const double* x = xv.data();
      const double* mm = M.data();
      reduce([&](int64_t r0, int64_t r1, double* acc) {
        switch (nb) {
          case 2: block_update<2>(r0, r1, x, mm, w, acc); break;
          case 3: block_update<3>(r0, r1, x, mm, w, acc); break;
          case 4: block_update<4>(r0, r1, x, mm, w, acc); break;
          default: block_update<1>(r0, r1, x, mm, w, acc); break;
        }
      }, H.data());
    }
    if (nd > 0) { project_out(pv.data()); gram(pv.data(), H.data()); }
    adiag.insert(adiag.end(), Aj.begin(), Aj.end());
    double hmax = 0;
    for (int k = 0; k < nb; ++k) hmax = std::max(hmax, H[k * nb + k]);
    const double scale_prev = std::max({1.0, std::fabs(gmin), std::fabs(gmax)});
    const bool full = small_cholesky(nb, H.data(), Rp.data(), std::max(hmax, scale_prev * scale_prev) * 1e-24);
    double lost = 0;  // norm of the part of W_{j+1} that the factor below leaves out
    if (!full) {  // rank lost: the Krylov space is (numerically) invariant in some direction
      Rp.assign(B2, 0.0);
      double lost2 = 0;
      for (int r = 0; r < nb; ++r) {  // a factor of the directions that are there; a lost one's row is 0
        double d = H[r * nb + r];
        for (int k = 0; k < r; ++k) d -= Rp[k * nb + r] * Rp[k * nb + r];
        if (!(d > std::max(hmax, scale_prev * scale_prev) * 1e-24)) { lost2 += std::max(d, 0.0); continue; }
        Rp[r * nb + r] = std::sqrt(d);
        for (int c = r + 1; c < nb; ++c) {
          double v = H[r * nb + c];
          for (int k = 0; k < r; ++k) v -= Rp[k * nb + r] * Rp[k * nb + c];
          Rp[r * nb + c] = v / Rp[r * nb + r];
        }
      }
      lost = std::sqrt(lost2);
    }
    bsub.insert(bsub.end(), Rp.begin(), Rp.end());
    // Gershgorin bounds of T_m, kept up to date block row by block row: row r of block m couples to
    // block m-1 through R_j and to block m+1 through R_{j+1}; both rows and columns of each are added
    // (an over-estimate, which only widens the bisection interval).
    for (int r = 0; r < nb; ++r) {
      double row = 0;
      for (int c = 0; c < nb; ++c) row += c == r ? 0.0 : std::fabs(Aj[r * nb + c]);
      for (int c = 0; c < nb; ++c) row += std::fabs(R[c * nb + r]) * (m > 1) + std::fabs(Rp[r * nb + c]);
      for (int c = 0; c < nb; ++c) row += std::fabs(R[r * nb + c]) * (m > 1) + std::fabs(Rp[c * nb + r]);
      const double a = Aj[r * nb + r];
      if (m == 1 && r == 0) { gmin = a; gmax = a; }
      gmin = std::min(gmin, a - row);
      gmax = std::max(gmax, a + row);
    }
    const double scale_now = std::max({1.0, std::fabs(gmin), std::fabs(gmax)});
    double bnorm = 0;
    for (double v : Rp) bnorm = std::max(bnorm, std::fabs(v));
    const bool invariant = bnorm <= 1e-12 * scale_now;
    const bool last = !full || m * nb >= n - nd || res.matvecs >= opt.max_matvecs;
    if (m >= next_check || last) {
      Band t;
      t.nb = nb;
      t.N = m * nb;
      t.v.assign(static_cast<size_t>(t.N) * (nb + 1), 0.0);
      for (int64_t j = 0; j < m; ++j)
        for (int r = 0; r < nb; ++r) {
          const int64_t i = j * nb + r;
          for (int c = 0; c <= r; ++c) t.v[i * (nb + 1) + (r - c)] = adiag[j * B2 + r * nb + c];
          if (j > 0)  // T(i, (j-1) nb + c) = B_{j-1}[r][c], upper triangular (r <= c)
            for (int c = r; c < nb; ++c) t.v[i * (nb + 1) + (nb + r - c)] = bsub[(j - 1) * B2 + r * nb + c];
        }
      const double lo = gmin - 1e-9 * scale_now, hi = gmax + 1e-9 * scale_now;
      std::vector<double> bm(Rp);
      if (invariant) bm.assign(B2, 0.0);
      auto top = band_good_values(t, bm.data(), lost, n_top > 0 ? n_top + 1 : 0, true, lo, hi, scale_now, work);
      auto bot = band_good_values(t, bm.data(), lost, n_bottom > 0 ? n_bottom + 1 : 0, false, lo, hi, scale_now, work);
      // No invariant-space shortcut here: an exhausted block space reports its bounds as they are.
      const EndCheck e = check_ends(top, bot, n_top, n_bottom, opt.tol, scale_now, false);
      // The check schedule of the single-vector recurrence, in block steps: each check costs O(m nb^3)
      // per Sturm count, far below a step at large T.
      next_check = m + std::max<int64_t>(8, e.close ? 0 : e.near ? m / 40 : m / 8);
      if (e.converged || last) {
        report_ends(res, top, bot, e, n_top, n_bottom, false);
        return res;
      }
    }
    // Q_{j+1} = W_{j+1} R_{j+1}^-1: W stays in p unnormalised; the roles of the buffers swap.
    xv.swap(pv);
    Rpi = Ri;
    R = Rp;
    upper_inverse(nb, R.data(), Ri.data());
  }
}
}  // namespace

LanczosResult lanczos_extremes(int64_t n, const MatVec& op, int n_top, int n_bottom, bool want_vectors,
                               const std::vector<std::vector<double>>& deflate, const SpectralOptions& opt,
                               const LanczosStep& step, const BlockStep& bstep) {
  const int64_t nd = static_cast<int64_t>(deflate.size());
  const int64_t n_eff = n - nd;
  const int nwant = n_top + n_bottom;
  BNA_ASSERT(nwant >= 1 && nwant <= n_eff);
  if (!want_vectors && n > opt.full_reorth_max_T) {
    // The block recurrence needs room for a few blocks in the deflated space.
    if (opt.block_size >= 2 && n_eff >= 4 * opt.block_size)
      return lanczos_values_block(n, op, bstep, opt.block_size, n_top, n_bottom, deflate, opt);
    return lanczos_values_cw(n, op, step, n_top, n_bottom, deflate, opt);
  }
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
    // Error bound of Ritz value idx from its residual and its two neighbours in the Ritz spectrum.
    auto bound = [&](int64_t idx) {
      if (exhausted) return 0.0;
      double th[2], rr[2];
      int nb = 0;
      if (idx > 0) { th[nb] = theta[idx - 1]; rr[nb++] = resid(idx - 1); }
      if (idx + 1 < mm) { th[nb] = theta[idx + 1]; rr[nb++] = resid(idx + 1); }
      return ritz_error_bound(theta[idx], resid(idx), th, rr, nb);
    };
    double max_res = 0, max_bound = 0;
    for (int64_t idx : wanted) {
      max_res = std::max(max_res, resid(idx));
      max_bound = std::max(max_bound, bound(idx));
    }
    const bool converged = exhausted || mm >= n_eff || max_bound <= opt.tol * scale;
    if (converged || res.matvecs >= opt.max_matvecs) {
      res.converged = converged;
      res.max_residual = max_res;
      const double floor_b = kRoundingUlps * std::numeric_limits<double>::epsilon() * scale;
      res.max_bound = std::max((exhausted || mm >= n_eff) ? 0.0 : max_bound, floor_b);
      auto ritz_vector = [&](int64_t idx) {
        std::vector<double> y(n, 0.0);
        cblas_dgemv(CblasColMajor, CblasNoTrans, (int)n, (int)mm, 1.0, V.data(), (int)n, &S[idx], (int)mm, 0.0,
                    y.data(), 1);
        const double nr = norm2(n, y.data());
        if (nr > 0) cblas_dscal((int)n, 1.0 / nr, y.data(), 1);
        return y;
      };
      const bool exact = exhausted || mm >= n_eff;  // the whole (deflated) space: Ritz values are eigenvalues
      for (int t = 0; t < n_top; ++t) {
        res.top.push_back(theta[mm - 1 - t]);
        res.top_bound.push_back(std::max(exact ? 0.0 : bound(mm - 1 - t), floor_b));
        if (want_vectors) res.top_vec.push_back(ritz_vector(mm - 1 - t));
      }
      for (int b = 0; b < n_bottom; ++b) {
        res.bottom.push_back(theta[b]);
        res.bottom_bound.push_back(std::max(exact ? 0.0 : bound(b), floor_b));
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
