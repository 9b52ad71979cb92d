// Spectra of the adjacency, normalised adjacency and Laplacian of a Csr graph; Fiedler cuts.
// Decisions: the dense path (Eigen SelfAdjointEigenSolver) and the Lanczos path answer the same
// question — both ends of the spectrum — so |lambda2| includes negative eigenvalues on every path
// (defect 9 of the original). The Lanczos path deflates known eigenvectors: the constant vector for
// the Laplacian (lambda = 0) and sqrt(deg) for the normalised adjacency (lambda = 1), so the Fiedler
// value and the normalised lambda2 are extreme eigenvalues of the deflated operator. Each summary carries
// the error bound of its headline number, assembled from the per-eigenvalue Lanczos bounds. On the
// implicit banded graph the three-term recurrence uses the fused one-pass operator step (operators.hpp).
#include <algorithm>
#include <cmath>
#include <memory>
#include <numeric>
#include <string>

#include "bna/analysis.hpp"
#include "bna/threads.hpp"
#include "lanczos.hpp"
#include "operators.hpp"

#if BNA_HAVE_EIGEN
#include <Eigen/Dense>
#endif

namespace bna::analysis {
namespace {

constexpr int64_t kDenseLimit = 4096;


// The operator of `op` as a matvec over the graph's adjacency matvec (Csr rows or the implicit band).
// Normalised: y = D^-1/2 A D^-1/2 x through one scaled copy of x; Laplacian: y = D x - A x.
detail::MatVec make_op(const Csr& g, Operator op) {
  const Csr* gp = &g;
  if (op == Operator::kAdjacency) return [gp](const double* x, double* y) { adjacency_matvec(*gp, x, y); };
  const int64_t n = g.n;
  auto scale = std::make_shared<std::vector<double>>(n);
  for (int64_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(g.degree(i));
    (*scale)[i] = op == Operator::kLaplacian ? d : (d > 0 ? 1.0 / std::sqrt(d) : 0.0);
  }
  if (op == Operator::kLaplacian)
    return [gp, scale, n](const double* x, double* y) {
      adjacency_matvec(*gp, x, y);
      const double* d = scale->data();
      for (int64_t i = 0; i < n; ++i) y[i] = d[i] * x[i] - y[i];
    };
  auto tmp = std::make_shared<std::vector<double>>(n);
  return [gp, scale, tmp, n](const double* x, double* y) {
    const double* d = scale->data();
    double* t = tmp->data();
    for (int64_t i = 0; i < n; ++i) t[i] = d[i] * x[i];
    adjacency_matvec(*gp, t, y);
    for (int64_t i = 0; i < n; ++i) y[i] *= d[i];
  };
}

// The fused Lanczos step: one pass on the implicit banded graph, none (generic fallback) on a Csr.
detail::LanczosStep make_step(const Csr&, Operator) { return {}; }
detail::LanczosStep make_step(const BandedGraph& g, Operator op) {
  const BandedGraph* gp = &g;
  auto plan = std::make_shared<detail::BandedPlan>(detail::make_banded_plan(g, op));
  return [gp, op, plan](const double* x, double sx, double* u, double cu, const double* q) {
    return detail::banded_step(*gp, op, plan.get(), x, sx, u, cu, q);
  };
}

// The fused block step: interleaved columns on the implicit banded graph, none (generic fallback) on a Csr.
detail::BlockStep make_block_step(const Csr&, Operator) { return {}; }
detail::BlockStep make_block_step(const BandedGraph& g, Operator op) {
  const BandedGraph* gp = &g;
  auto plan = std::make_shared<detail::BandedPlan>(detail::make_banded_plan(g, op));
  return [gp, op, plan](int nb, const double* x, const double* S, double* u, const double* C, double* G) {
    detail::banded_block_step(*gp, op, plan.get(), nb, x, S, u, C, G);
  };
}

// On the banded graph every operator is the one-pass kernel (no scaled copies, no second pass).
detail::MatVec make_op(const BandedGraph& g, Operator op) {
  auto step = make_step(g, op);
  return [step](const double* x, double* y) { step(x, 1.0, y, 0.0, nullptr); };
}

template <class G>
bool use_dense(const G& g, const SpectralOptions& opt) {
  if (opt.method == EigenMethod::kDense) return true;
  if (opt.method == EigenMethod::kLanczos) return false;
  return g.n <= opt.dense_max_T;
}

template <class G>
Status check_options(const G& g, const SpectralOptions& opt) {
  if (opt.krylov_dim < 8) return invalid_argument("analysis: krylov_dim=" + std::to_string(opt.krylov_dim) + ", expected >= 8");
  if (opt.block_size < 1 || opt.block_size > 4)
    return invalid_argument("analysis: block_size=" + std::to_string(opt.block_size) + ", expected 1..4");
  if (!(opt.tol > 0)) return invalid_argument("analysis: tol=" + std::to_string(opt.tol) + ", expected tol > 0");
  if (opt.method == EigenMethod::kDense && g.n > kDenseLimit)
    return invalid_argument("analysis: method=dense with T=" + std::to_string(g.n) + ", expected T <= " +
                            std::to_string(kDenseLimit) + " (use lanczos)");
#if !BNA_HAVE_EIGEN
  if (opt.method == EigenMethod::kDense) return unavailable("analysis: method=dense needs Eigen, which this build lacks");
#endif
  return Status::ok();
}

#if BNA_HAVE_EIGEN
Eigen::MatrixXd dense_matrix(const Csr& g, Operator op) {
  Eigen::MatrixXd M = Eigen::MatrixXd::Zero(g.n, g.n);
  for (int64_t i = 0; i < g.n; ++i) {
    const double di = static_cast<double>(g.degree(i));
    for (const int32_t* p = g.begin(i); p != g.end(i); ++p) {
      const double dj = static_cast<double>(g.degree(*p));
      M(i, *p) = op == Operator::kAdjacency ? 1.0 : op == Operator::kLaplacian ? -1.0 : 1.0 / std::sqrt(di * dj);
    }
    if (op == Operator::kLaplacian) M(i, i) = di;
  }
  return M;
}
#endif

// Ascending eigenvalues (and optionally vectors as columns) of the dense operator.
struct DenseEig {
  std::vector<double> values;
  std::vector<double> fiedler;  // eigenvector of values[1] (Laplacian only)
};
DenseEig dense_eig(const Csr& g, Operator op, bool want_second_vector) {
  DenseEig out;
#if BNA_HAVE_EIGEN
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(dense_matrix(g, op),
                                                    want_second_vector ? Eigen::ComputeEigenvectors : Eigen::EigenvaluesOnly);
  out.values.assign(es.eigenvalues().data(), es.eigenvalues().data() + g.n);
  if (want_second_vector && g.n >= 2) {
    const Eigen::VectorXd v = es.eigenvectors().col(1);
    out.fiedler.assign(v.data(), v.data() + g.n);
  }
#else
  BNA_ASSERT(false && "dense eigen path without Eigen");
#endif
  return out;
}

DenseEig dense_eig(const BandedGraph& g, Operator op, bool want_second_vector) {
  return dense_eig(csr_from_banded(g), op, want_second_vector);
}

template <class F>
void for_each_neighbor(const Csr& g, int64_t u, F&& f) {
  for (const int32_t* p = g.begin(u); p != g.end(u); ++p) f(static_cast<int64_t>(*p));
}
template <class F>
void for_each_neighbor(const BandedGraph& g, int64_t u, F&& f) {
  const int64_t lo = std::max<int64_t>(0, u - g.band), hi = std::min<int64_t>(g.n - 1, u + g.band);
  for (int64_t j = lo; j <= hi; ++j)
    if (j != u) f(j);
  for (int64_t e = g.offsets[u]; e < g.offsets[u + 1]; ++e) f(static_cast<int64_t>(g.extra[e]));
}

EigenInfo dense_info() { EigenInfo i; i.method = "dense"; return i; }
EigenInfo lanczos_info(const detail::LanczosResult& r) {
  EigenInfo i;
  i.method = "lanczos";
  i.matvecs = r.matvecs;
  i.max_residual = r.max_residual;
  i.max_error_bound = r.max_bound;
  i.converged = r.converged;
  return i;
}

template <class G>
void degree_summary(const G& g, double& mean, double& mn, double& mx) {
  mean = g.n ? 2.0 * g.num_edges() / g.n : 0;
  mn = g.n ? 1e300 : 0;
  mx = 0;
  for (int64_t i = 0; i < g.n; ++i) {
    mn = std::min(mn, (double)g.degree(i));
    mx = std::max(mx, (double)g.degree(i));
  }
}

}  // namespace

const char* eigen_method_name(EigenMethod m) {
  switch (m) {
    case EigenMethod::kAuto: return "auto";
    case EigenMethod::kDense: return "dense";
    case EigenMethod::kLanczos: return "lanczos";
  }
  return "unknown";
}

Expected<std::vector<double>> dense_eigenvalues(const Csr& g, Operator op) {
  if (g.n > kDenseLimit)
    return invalid_argument("analysis: dense eigenvalues with T=" + std::to_string(g.n) + ", expected T <= " +
                            std::to_string(kDenseLimit));
#if BNA_HAVE_EIGEN
  return dense_eig(g, op, false).values;
#else
  return unavailable("analysis: dense eigenvalues need Eigen, which this build lacks");
#endif
}

template <class G>
Expected<AdjacencySpectrum> adjacency_impl(const G& g, const SpectralOptions& opt) {
  BNA_RETURN_IF_ERROR(check_options(g, opt));
  AdjacencySpectrum s;
  s.nodes = g.n;
  degree_summary(g, s.degree_mean, s.degree_min, s.degree_max);
  if (g.n <= 1) { s.info.method = "trivial"; return s; }
  if (use_dense(g, opt)) {
    const auto ev = dense_eig(g, Operator::kAdjacency, false).values;
    s.lambda1 = ev[g.n - 1];
    s.lambda2 = ev[g.n - 2];
    s.lambda_min = ev[0];
    s.info = dense_info();
  } else {
    if (g.n >= 3 && s.degree_min == s.degree_max && s.degree_max > 0) {
      // d-regular: A 1 = d 1 exactly, so lambda1 = d and the constant vector is deflated; lambda2 and
      // lambda_min are then the extremes of A on its orthogonal complement (a second copy of d, as in a
      // disconnected regular graph, stays visible there).
      std::vector<double> c(g.n, 1.0 / std::sqrt(static_cast<double>(g.n)));
      auto r = detail::lanczos_extremes(g.n, make_op(g, Operator::kAdjacency), 1, 1, false, {c}, opt,
                                        make_step(g, Operator::kAdjacency), make_block_step(g, Operator::kAdjacency));
      s.lambda1 = s.degree_max;
      s.lambda2 = std::min(r.top[0], s.lambda1);
      s.lambda_min = std::min(r.bottom[0], s.lambda2);
      s.gap_error_bound = std::max(r.top_bound[0], r.bottom_bound[0]);  // lambda1 = d exactly
      s.info = lanczos_info(r);
    } else {
      const int top = g.n >= 3 ? 2 : 1;
      auto r = detail::lanczos_extremes(g.n, make_op(g, Operator::kAdjacency), top, 1, false, {}, opt,
                                        make_step(g, Operator::kAdjacency), make_block_step(g, Operator::kAdjacency));
      s.lambda1 = r.top[0];
      s.lambda2 = top == 2 ? r.top[1] : r.bottom[0];
      s.lambda_min = r.bottom[0];
      const double e2 = top == 2 ? r.top_bound[1] : r.bottom_bound[0];
      // |max(|a|, |b|) - max(|a'|, |b'|)| <= max(|a - a'|, |b - b'|).
      s.gap_error_bound = r.top_bound[0] + std::max(e2, r.bottom_bound[0]);
      s.info = lanczos_info(r);
    }
  }
  s.lambda2_abs = std::max(std::fabs(s.lambda2), std::fabs(s.lambda_min));
  s.spectral_gap = s.lambda1 - s.lambda2_abs;
  s.expansion_ratio = s.degree_mean / std::max(s.lambda2_abs, 1e-12);
  return s;
}

template <class G>
Expected<NormalizedSpectrum> normalized_impl(const G& g, const SpectralOptions& opt) {
  BNA_RETURN_IF_ERROR(check_options(g, opt));
  NormalizedSpectrum s;
  s.nodes = g.n;
  if (g.n <= 1) { s.info.method = "trivial"; return s; }
  if (use_dense(g, opt)) {
    const auto ev = dense_eig(g, Operator::kNormalized, false).values;
    // lambda1 is the eigenvalue of largest magnitude (1 when there is an edge; spectrum within [-1, 1]).
    s.lambda1 = ev[g.n - 1];
    s.lambda2 = ev[g.n - 2];
    s.lambda_min = ev[0];
    s.info = dense_info();
  } else if (g.num_edges() == 0) {
    s.info.method = "trivial";
  } else {
    auto op = make_op(g, Operator::kNormalized);
    std::vector<double> u(g.n);
    double nrm = 0;
    for (int64_t i = 0; i < g.n; ++i) { u[i] = std::sqrt((double)g.degree(i)); nrm += u[i] * u[i]; }
    for (double& x : u) x /= std::sqrt(nrm);
    auto r = detail::lanczos_extremes(g.n, op, 1, g.n >= 3 ? 1 : 0, false, {u}, opt, make_step(g, Operator::kNormalized),
                                      make_block_step(g, Operator::kNormalized));
    s.lambda1 = 1.0;
    s.lambda2 = r.top[0];
    s.lambda_min = r.bottom.empty() ? r.top[0] : std::min(r.bottom[0], r.top[0]);
    // lambda1 = 1 exactly; gap = max(0, 1 - lambda2_abs) moves by at most lambda2_abs does.
    s.gap_error_bound = std::max(r.top_bound[0], r.bottom_bound.empty() ? 0.0 : r.bottom_bound[0]);
    s.info = lanczos_info(r);
  }
  s.lambda2_abs = std::max(std::fabs(s.lambda2), std::fabs(s.lambda_min));
  s.spectral_gap = std::fabs(s.lambda1) < 1e-12 ? 0.0 : std::max(0.0, 1.0 - s.lambda2_abs / std::fabs(s.lambda1));
  return s;
}

template <class G>
Expected<LaplacianSpectrum> laplacian_impl(const G& g, const SpectralOptions& opt) {
  BNA_RETURN_IF_ERROR(check_options(g, opt));
  LaplacianSpectrum s;
  s.nodes = g.n;
  double mean, mn;
  degree_summary(g, mean, mn, s.degree_max);
  if (g.n <= 1) { s.info.method = "trivial"; return s; }
  double l2;
  if (use_dense(g, opt)) {
    auto de = dense_eig(g, Operator::kLaplacian, true);
    l2 = de.values[1];
    s.lambda_max = de.values[g.n - 1];
    s.fiedler_vector = std::move(de.fiedler);
    s.info = dense_info();
  } else {
    std::vector<double> c(g.n, 1.0 / std::sqrt((double)g.n));
    auto r = detail::lanczos_extremes(g.n, make_op(g, Operator::kLaplacian), g.n >= 3 ? 1 : 0, 1, true, {c}, opt);
    l2 = r.bottom[0];
    s.fiedler_error_bound = r.bottom_bound[0];
    s.lambda_max = r.top.empty() ? r.bottom[0] : r.top[0];
    s.fiedler_vector = std::move(r.bottom_vec[0]);
    s.info = lanczos_info(r);
  }
  // Sign convention: the first nonzero entry is negative, so results do not depend on the solver.
  for (double x : s.fiedler_vector)
    if (std::fabs(x) > 1e-12) {
      if (x > 0)
        for (double& y : s.fiedler_vector) y = -y;
      break;
    }
  s.fiedler_value = std::max(l2, 0.0);
  s.cheeger_lower = s.fiedler_value / 2;
  s.cheeger_upper = std::sqrt(2 * s.degree_max * s.fiedler_value);
  s.is_well_connected = s.fiedler_value > 0.01;
  // Sweep cut over the Fiedler order: S = first k nodes, |E(S, S^c)| updated incrementally.
  std::vector<int32_t> order(g.n);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return s.fiedler_vector[a] < s.fiedler_vector[b]; });
  std::vector<uint8_t> in(g.n, 0);
  int64_t cut = 0;
  double best = 1e300;
  for (int64_t k = 0; k + 1 < g.n; ++k) {
    const int32_t u = order[k];
    in[u] = 1;
    for_each_neighbor(g, u, [&](int64_t v) { cut += in[v] ? -1 : 1; });
    const int64_t small = std::min<int64_t>(k + 1, g.n - k - 1);
    best = std::min(best, static_cast<double>(cut) / static_cast<double>(small));
  }
  s.sweep_expansion = best;
  return s;
}

Expected<AdjacencySpectrum> adjacency_spectrum(const Csr& g, const SpectralOptions& opt) { return adjacency_impl(g, opt); }
Expected<NormalizedSpectrum> normalized_spectrum(const Csr& g, const SpectralOptions& opt) { return normalized_impl(g, opt); }
Expected<LaplacianSpectrum> laplacian_spectrum(const Csr& g, const SpectralOptions& opt) { return laplacian_impl(g, opt); }
Expected<AdjacencySpectrum> adjacency_spectrum(const BandedGraph& g, const SpectralOptions& opt) { return adjacency_impl(g, opt); }
Expected<NormalizedSpectrum> normalized_spectrum(const BandedGraph& g, const SpectralOptions& opt) { return normalized_impl(g, opt); }
Expected<LaplacianSpectrum> laplacian_spectrum(const BandedGraph& g, const SpectralOptions& opt) { return laplacian_impl(g, opt); }

Expected<FiedlerBridges> fiedler_bridges(const Csr& g, const std::vector<double>& f, int64_t num) {
  if (static_cast<int64_t>(f.size()) != g.n)
    return invalid_argument("analysis: fiedler vector has " + std::to_string(f.size()) + " entries, expected T=" +
                            std::to_string(g.n));
  if (num < 0) return invalid_argument("analysis: num=" + std::to_string(num) + ", expected num >= 0");
  FiedlerBridges b;
  if (g.n <= 2) return b;
  for (int64_t i = 0; i < g.n; ++i) {
    if (f[i] < 0) ++b.negative_side;
    for (const int32_t* p = g.begin(i); p != g.end(i); ++p)
      if (*p > i && ((f[i] < 0) != (f[*p] < 0))) {
        ++b.cut_size;
        b.cut_edges.push_back({static_cast<int32_t>(i), *p, std::fabs(f[i] - f[*p])});
      }
  }
  std::stable_sort(b.cut_edges.begin(), b.cut_edges.end(),
                   [](const BridgeEdge& x, const BridgeEdge& y) { return x.score > y.score; });
  if (static_cast<int64_t>(b.cut_edges.size()) > num) b.cut_edges.resize(num);
  std::vector<int32_t> order(g.n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t c) { return f[a] < f[c]; });
  for (int64_t i = 0; i < g.n / 2 && static_cast<int64_t>(b.proposed.size()) < num; ++i) {
    const int32_t a = std::min(order[i], order[g.n - 1 - i]), c = std::max(order[i], order[g.n - 1 - i]);
    if (a == c || std::binary_search(g.begin(a), g.end(a), c)) continue;
    b.proposed.push_back({a, c, std::fabs(f[a] - f[c])});
  }
  return b;
}

}  // namespace bna::analysis
