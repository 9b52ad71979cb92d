// Implicit banded permutation graphs (window band + cycle extras) and the adjacency matvecs used by the
// Lanczos path. Decisions: the band sum over [i - b, i + b] is suffix(a) + prefix(c) of blocks of
// L = 2b + 1 nodes, so every window spans at most two blocks and each sum adds at most L terms in a fixed
// order (no long running sums whose rounding grows with T, no dependence on the thread count). Cycle
// neighbours already inside the band are dropped from `extra`, so multi-edges collapse exactly as in
// csr_from_perms.
#include <algorithm>
#include <string>

#include "bna/analysis.hpp"
#include "bna/threads.hpp"

namespace bna::analysis {

int64_t BandedGraph::num_edges() const {
  // Band pairs: sum over i of min(band, i) (the earlier end of each pair), plus extras counted twice.
  const int64_t b = std::min(band, n > 0 ? n - 1 : 0);
  const int64_t band_pairs = n > 0 ? b * (b + 1) / 2 + (n - 1 - b) * b : 0;
  return band_pairs + static_cast<int64_t>(extra.size()) / 2;
}

Expected<BandedGraph> banded_from_perms(const std::vector<topo::Perm>& cycles, int64_t T, int64_t window) {
  if (T < 1) return invalid_argument("analysis: T=" + std::to_string(T) + ", expected T >= 1");
  if (window < 0) return invalid_argument("analysis: window=" + std::to_string(window) + ", expected window >= 0");
  for (size_t c = 0; c < cycles.size(); ++c) {
    Status st = topo::validate_perm(cycles[c], T);
    if (!st.is_ok()) return invalid_argument("analysis: cycle " + std::to_string(c) + ": " + st.message());
  }
  BandedGraph g;
  g.n = T;
  g.band = std::min(window, T - 1);
  const int64_t k = static_cast<int64_t>(cycles.size());
  // Each cycle gives node perm[p] the neighbours perm[p - 1] and perm[p + 1]: at most 2k per row.
  std::vector<int32_t> cand(static_cast<size_t>(T) * 2 * k);
  std::vector<int64_t> cnt(T, 0);
  for (int64_t c = 0; c < k; ++c) {
    const topo::Perm& p = cycles[c];
    parallel_for(0, T, [&](int64_t q) {
      const int32_t u = p[q];
      cand[static_cast<size_t>(u) * 2 * k + 2 * c] = p[(q + T - 1) % T];
      cand[static_cast<size_t>(u) * 2 * k + 2 * c + 1] = p[(q + 1) % T];
    });
  }
  const int64_t b = g.band;
  parallel_for(0, T, [&](int64_t i) {
    int32_t* r = cand.data() + i * 2 * k;
    int64_t m = 0;
    for (int64_t e = 0; e < 2 * k; ++e) {
      const int64_t d = r[e] > i ? r[e] - i : i - r[e];
      if (d > b) r[m++] = r[e];  // d == 0 (T = 1) is <= b as well
    }
    std::sort(r, r + m);
    cnt[i] = std::unique(r, r + m) - r;
  });
  g.offsets.assign(T + 1, 0);
  for (int64_t i = 0; i < T; ++i) g.offsets[i + 1] = g.offsets[i] + cnt[i];
  g.extra.resize(g.offsets[T]);
  parallel_for(0, T, [&](int64_t i) {
    std::copy(cand.begin() + i * 2 * k, cand.begin() + i * 2 * k + cnt[i], g.extra.begin() + g.offsets[i]);
  });
  return g;
}

Csr csr_from_banded(const BandedGraph& g) {
  Csr c;
  c.n = g.n;
  c.offsets.assign(g.n + 1, 0);
  for (int64_t i = 0; i < g.n; ++i) c.offsets[i + 1] = c.offsets[i] + g.degree(i);
  c.cols.resize(c.offsets[g.n]);
  parallel_for(0, g.n, [&](int64_t i) {
    int32_t* out = c.cols.data() + c.offsets[i];
    const int32_t* ex = g.extra.data() + g.offsets[i];
    const int32_t* ex_end = g.extra.data() + g.offsets[i + 1];
    const int64_t lo = std::max<int64_t>(0, i - g.band), hi = std::min<int64_t>(g.n - 1, i + g.band);
    // Extras lie outside [lo, hi], so the merged row is: extras < lo, the band without i, extras > hi.
    while (ex != ex_end && *ex < lo) *out++ = *ex++;
    for (int64_t j = lo; j <= hi; ++j)
      if (j != i) *out++ = static_cast<int32_t>(j);
    while (ex != ex_end) *out++ = *ex++;
  });
  return c;
}

void adjacency_matvec(const Csr& g, const double* x, double* y) {
  auto row = [&](int64_t i) {
    double s = 0;
    for (const int32_t* p = g.begin(i); p != g.end(i); ++p) s += x[*p];
    y[i] = s;
  };
  // Threads only when the work amortises a fork/join on a small shared machine.
  if (static_cast<int64_t>(g.cols.size()) < (int64_t{1} << 18)) {
    for (int64_t i = 0; i < g.n; ++i) row(i);
  } else {
    parallel_for_dynamic(0, g.n, 4096, row);
  }
}

void adjacency_matvec(const BandedGraph& g, const double* x, double* y) {
  const int64_t n = g.n, b = g.band, L = 2 * b + 1;
  if (n == 0) return;
  const int64_t* off = g.offsets.data();
  const int32_t* ex = g.extra.data();
  if (b == 0) {
    for (int64_t i = 0; i < n; ++i) {
      double s = 0;
      for (int64_t e = off[i]; e < off[i + 1]; ++e) s += x[ex[e]];
      y[i] = s;
    }
    return;
  }
  // pre[j] = x[block start .. j], suf[j] = x[j .. block end] over blocks [q L, (q + 1) L) clipped to n.
  // Scratch of the calling thread, reused across Lanczos iterations; workers get raw pointers (a
  // thread_local named inside the parallel loop would be the worker's own, empty, instance).
  thread_local std::vector<double> scratch;
  scratch.resize(2 * static_cast<size_t>(n));
  double* pre = scratch.data();
  double* suf = scratch.data() + n;
  const int64_t nblocks = (n + L - 1) / L;
  auto scan = [=](int64_t q) {
    const int64_t s = q * L, e = std::min(n, s + L);
    double acc = 0;
    for (int64_t j = s; j < e; ++j) pre[j] = acc += x[j];
    acc = 0;
    for (int64_t j = e - 1; j >= s; --j) suf[j] = acc += x[j];
  };
  // y[i] = sum of x over [max(0, i - b), min(n - 1, i + b)] minus x[i], plus the extras. With
  // i = q L + r, an unclipped window is one aligned block when r == b (pre[c]) and otherwise ends in the
  // block after a's (suf[a] + pre[c]); block and offset advance incrementally (no divisions per row).
  auto finish = [=](int64_t i0, int64_t i1) {
    int64_t r = i0 % L;
    for (int64_t i = i0; i < i1; ++i, r = (r + 1 == L ? 0 : r + 1)) {
      const int64_t a = i - b, c = i + b;
      double s;
      if (a >= 0 && c <= n - 1) {
        s = r == b ? pre[c] : suf[a] + pre[c];
      } else {  // clipped at an end of the sequence
        const int64_t ac = std::max<int64_t>(0, a), cc = std::min<int64_t>(n - 1, c);
        const int64_t qa = ac / L, qc = cc / L;
        if (qa != qc) s = suf[ac] + pre[cc];
        else if (ac == qa * L) s = pre[cc];  // the window starts its block (left edge)
        else s = suf[ac];                    // the window ends its block (right edge: cc == n - 1)
      }
      s -= x[i];
      for (int64_t e = off[i]; e < off[i + 1]; ++e) s += x[ex[e]];
      y[i] = s;
    }
  };
  if (n >= (int64_t{1} << 16)) {
    constexpr int64_t kChunk = 8192;
    parallel_for(0, nblocks, scan);
    parallel_for(0, (n + kChunk - 1) / kChunk, [&](int64_t ch) { finish(ch * kChunk, std::min(n, ch * kChunk + kChunk)); });
  } else {
    for (int64_t q = 0; q < nblocks; ++q) scan(q);
    finish(0, n);
  }
}

}  // namespace bna::analysis
