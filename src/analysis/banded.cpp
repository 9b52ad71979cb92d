// Implicit banded permutation graphs (window band + cycle extras) and their one-pass operator kernel
// (adjacency, normalised adjacency, Laplacian), used as the plain matvec and as the fused Lanczos step,
// single-column or on a block of 2-4 interleaved columns (block Lanczos).
// Decisions: the band sum over [i - b, i + b] is a sliding window restarted from a direct sum every
// L = 2b + 1 rows, so each sum carries at most ~3L roundings (no long running sums whose rounding grows
// with T, no scratch arrays) and, with the fixed row chunks, does not depend on the thread count. Cycle
// neighbours already inside the band are dropped from `extra`, so multi-edges collapse exactly as in
// csr_from_perms; their gathers are prefetched a fixed number of rows ahead.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "bna/analysis.hpp"
#include "bna/status.hpp"
#include "bna/threads.hpp"
#include "operators.hpp"

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
  detail::banded_step(g, Operator::kAdjacency, nullptr, x, 1.0, y, 0.0, nullptr);
}

namespace detail {
namespace {

// Rows are processed in fixed chunks (the unit of threading and of the dot-product reduction).
constexpr int64_t kChunk = 8192;
// Prefetch the extras of the row this far ahead: a random gather from an 8 MiB vector costs ~20 ns
// when it waits for memory; rows in flight hide that (measured 23 -> 6.6 ms for 2M gathers; at T = 1M,
// 128, 512 and 2048 rows ahead were within noise of each other).
constexpr int64_t kPrefetchRows = 512;
// ... into L2, not L1 (x86 prefetcht2; locality 3 would be prefetcht0): 512 rows ahead means ~1,000
// gathered lines in flight, twice what L1 holds, so prefetcht0 evicted lines (its own and the band's)
// before their use. T = 1M, one thread, 11 runs each interleaved: 4.2 / 10.1 ms (min / median) with
// prefetcht0, 3.5 / 3.7 ms into L2 (64 to 512 rows ahead alike).
constexpr int kPrefetchLocality = 1;

template <Operator kOp, bool kAxpy, bool kQ>
std::pair<double, double> banded_step_impl(const BandedGraph& g, const BandedPlan* plan, const double* x, double sx,
                                           double* u, double cu, const double* q) {
  const double* dsc = plan ? plan->dscale.data() : nullptr;
  const double* deg = plan ? plan->degree.data() : nullptr;
  const int32_t* slots = plan && !plan->slots.empty() ? plan->slots.data() : nullptr;
  const int64_t ks = plan ? plan->num_slots : 0;
  const int64_t n = g.n, b = g.band, L = 2 * b + 1;
  const int64_t* off = g.offsets.data();
  const int32_t* ex = g.extra.data();
  // Normalised: the band sums and gathers read t = deg^-1/2 * x, written in a first pass, so the random
  // gathers touch one [n] vector (at T = 1M, gathering x and deg^-1/2 separately left the last-level
  // cache and made a step 5x slower).
  const double* src = x;
  if constexpr (kOp == Operator::kNormalized) {
    thread_local std::vector<double> scaled;  // of the calling thread; workers write through the pointer
    scaled.resize(n);
    double* t = scaled.data();
    auto scale = [&](int64_t ch) {
      const int64_t r0 = ch * kChunk, r1 = std::min(n, r0 + kChunk);
      for (int64_t i = r0; i < r1; ++i) t[i] = dsc[i] * x[i];
    };
    const int64_t nch = (n + kChunk - 1) / kChunk;
    if (n >= (int64_t{1} << 16)) parallel_for(0, nch, scale);
    else for (int64_t ch = 0; ch < nch; ++ch) scale(ch);
    src = t;
  }
  const int64_t nchunks = (n + kChunk - 1) / kChunk;
  // Rows [i0, i1) of a chunk; kInterior: the window [i - b - 1, i + b] and the prefetch row lie inside
  // [0, n), so the loop carries no bound checks; kSlots: 2 (one cycle: two fixed slots, the common
  // case), -1 (num_slots fixed slots) or 0 (CSR offsets). Locals with __restrict keep the pointers in
  // registers (the stores to u could otherwise alias the closure); the arithmetic, and so every rounding,
  // is the same in every variant.
  auto rows = [&]<bool kInterior, int kSlots>(int64_t i0, int64_t i1, double& S, int64_t& until_reset, double& ax,
                                              double& aq) {
    const double* __restrict sv = src;
    const double* __restrict xs = x;
    const double* __restrict qs = q;
    const double* __restrict dv = kOp == Operator::kNormalized ? dsc : deg;
    const int32_t* __restrict sl = slots;
    double* __restrict us = u;
    const int64_t kpf = kPrefetchRows, kss = kSlots == 2 ? 2 : ks;
    double s_ = S, ax_ = ax, aq_ = aq;
    int64_t left = until_reset;
    for (int64_t i = i0; i < i1; ++i) {
      // s_ = sum of src over [max(0, i - b), min(n - 1, i + b)].
      if (left == 0) {
        const int64_t lo = std::max<int64_t>(0, i - b), hi = std::min<int64_t>(n - 1, i + b);
        // Four partial sums: a single chain of 2b adds every 2b + 1 rows would cost ~4 cycles a row.
        double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        int64_t j = lo;
        for (; j + 3 <= hi; j += 4) { s0 += sv[j]; s1 += sv[j + 1]; s2 += sv[j + 2]; s3 += sv[j + 3]; }
        for (; j <= hi; ++j) s0 += sv[j];
        s_ = (s0 + s1) + (s2 + s3);
        left = L;
      } else if constexpr (kInterior) {  // one dependent add per row: entering and leaving terms first
        s_ += sv[i + b] - sv[i - b - 1];
      } else {
        s_ += (i + b < n ? sv[i + b] : 0.0) - (i - b - 1 >= 0 ? sv[i - b - 1] : 0.0);
      }
      --left;
      double nb = s_ - sv[i];
      if constexpr (kSlots != 0) {  // fixed slots per row, -1 padded: no offsets to stream
        if (kInterior || i + kpf < n)
          for (int64_t e = (i + kpf) * kss; e < (i + kpf + 1) * kss; ++e)
            if (sl[e] >= 0) __builtin_prefetch(sv + sl[e], 0, kPrefetchLocality);
        for (int64_t e = i * kss; e < (i + 1) * kss; ++e)
          if (sl[e] >= 0) nb += sv[sl[e]];
      } else {
        if (kInterior || i + kpf < n)
          for (int64_t e = off[i + kpf]; e < off[i + kpf + 1]; ++e) __builtin_prefetch(sv + ex[e], 0, kPrefetchLocality);
        for (int64_t e = off[i]; e < off[i + 1]; ++e) nb += sv[ex[e]];
      }
      double opx;
      if constexpr (kOp == Operator::kAdjacency) opx = nb;
      else if constexpr (kOp == Operator::kNormalized) opx = dv[i] * nb;
      else opx = dv[i] * xs[i] - nb;
      double ui = sx * opx;
      if constexpr (kAxpy) ui -= cu * us[i];
      us[i] = ui;
      ax_ += xs[i] * ui;
      if constexpr (kQ) aq_ += qs[i] * ui;
    }
    S = s_;
    until_reset = left;
    ax = ax_;
    aq = aq_;
  };
  // Interior rows: i - b - 1 >= 0 and i + max(b, prefetch distance) < n.
  const int64_t in_lo = b + 1, in_hi = n - std::max<int64_t>(b, kPrefetchRows) - 1;
  auto chunk_as = [&]<int kSlots>(int64_t r0, int64_t r1, double& dx, double& dq) {
    double S = 0, ax = 0, aq = 0;
    int64_t until_reset = 0;
    const int64_t a0 = std::clamp(in_lo, r0, r1), a1 = std::clamp(in_hi, a0, r1);
    rows.template operator()<false, kSlots>(r0, a0, S, until_reset, ax, aq);
    rows.template operator()<true, kSlots>(a0, a1, S, until_reset, ax, aq);
    rows.template operator()<false, kSlots>(a1, r1, S, until_reset, ax, aq);
    dx = ax;
    dq = aq;
  };
  auto chunk = [&](int64_t ch, double& dx, double& dq) {
    const int64_t r0 = ch * kChunk, r1 = std::min(n, r0 + kChunk);
    if (!slots) chunk_as.template operator()<0>(r0, r1, dx, dq);
    else if (ks == 2) chunk_as.template operator()<2>(r0, r1, dx, dq);
    else chunk_as.template operator()<-1>(r0, r1, dx, dq);
  };
  if (nchunks == 1) {
    double dx, dq;
    chunk(0, dx, dq);
    return {dx, dq};
  }
  thread_local std::vector<double> part;  // of the calling thread; workers write through the pointer
  part.assign(2 * static_cast<size_t>(nchunks), 0.0);
  double* pp = part.data();
  auto run = [&](int64_t ch) { chunk(ch, pp[2 * ch], pp[2 * ch + 1]); };
  // Threads only when a pass amortises a fork/join on the small shared machine.
  if (n >= (int64_t{1} << 16)) parallel_for(0, nchunks, run);
  else for (int64_t ch = 0; ch < nchunks; ++ch) run(ch);
  double dx = 0, dq = 0;
  for (int64_t ch = 0; ch < nchunks; ++ch) { dx += pp[2 * ch]; dq += pp[2 * ch + 1]; }
  return {dx, dq};
}

template <Operator kOp>
std::pair<double, double> dispatch(const BandedGraph& g, const BandedPlan* p, const double* x, double sx, double* u,
                                   double cu, const double* q) {
  if (cu != 0) {
    if (q) return banded_step_impl<kOp, true, true>(g, p, x, sx, u, cu, q);
    return banded_step_impl<kOp, true, false>(g, p, x, sx, u, cu, q);
  }
  if (q) return banded_step_impl<kOp, false, true>(g, p, x, sx, u, cu, q);
  return banded_step_impl<kOp, false, false>(g, p, x, sx, u, cu, q);
}

// The block step: b interleaved columns ([n][b] row-major), so each band entry and each random cycle
// gather loads the b values of a row from one cache line. Same row walk, chunking, restarts and prefetch
// as the single-column kernel; per row u[i] <- (Op x)[i] S - u[i] C (b x b, row-major) and G += x[i]^T u[i].
template <Operator kOp, int kB, bool kAxpy>
void banded_block_impl(const BandedGraph& g, const BandedPlan* plan, const double* x, const double* Sm, double* u,
                       const double* Cm, double* G) {
  const double* dsc = plan ? plan->dscale.data() : nullptr;
  const double* deg = plan ? plan->degree.data() : nullptr;
  const int32_t* slots = plan && !plan->slots.empty() ? plan->slots.data() : nullptr;
  const int64_t ks = plan ? plan->num_slots : 0;
  const int64_t n = g.n, b = g.band, L = 2 * b + 1;
  const int64_t* off = g.offsets.data();
  const int32_t* ex = g.extra.data();
  const double* src = x;
  if constexpr (kOp == Operator::kNormalized) {
    thread_local std::vector<double> scaled;
    scaled.resize(static_cast<size_t>(n) * kB);
    double* t = scaled.data();
    auto scale = [&](int64_t ch) {
      const int64_t r0 = ch * kChunk, r1 = std::min(n, r0 + kChunk);
      for (int64_t i = r0; i < r1; ++i)
        for (int c = 0; c < kB; ++c) t[i * kB + c] = dsc[i] * x[i * kB + c];
    };
    const int64_t nch = (n + kChunk - 1) / kChunk;
    if (n >= (int64_t{1} << 16)) parallel_for(0, nch, scale);
    else for (int64_t ch = 0; ch < nch; ++ch) scale(ch);
    src = t;
  }
  double S[kB * kB], C[kB * kB];
  for (int k = 0; k < kB * kB; ++k) { S[k] = Sm[k]; C[k] = kAxpy ? Cm[k] : 0.0; }
  const int64_t nchunks = (n + kChunk - 1) / kChunk;
  // kTwo: one cycle, two fixed slots per row (the common case, as in the single-column kernel).
  auto rows = [&]<bool kInterior, bool kTwo>(int64_t i0, int64_t i1, double* s_io, int64_t& until_reset,
                                             double* acc_io) {
    const double* __restrict sv = src;
    const double* __restrict xs = x;
    const double* __restrict dv = kOp == Operator::kNormalized ? dsc : deg;
    const int32_t* __restrict sl = slots;
    double* __restrict us = u;
    const int64_t kpf = kPrefetchRows, kss = kTwo ? 2 : ks;
    int64_t left = until_reset;
    double s_[kB], acc[kB * kB];  // locals, so they stay in registers
    for (int c = 0; c < kB; ++c) s_[c] = s_io[c];
    for (int k = 0; k < kB * kB; ++k) acc[k] = acc_io[k];
    for (int64_t i = i0; i < i1; ++i) {
      if (left == 0) {
        const int64_t lo = std::max<int64_t>(0, i - b), hi = std::min<int64_t>(n - 1, i + b);
        double s0[kB], s1[kB];
        for (int c = 0; c < kB; ++c) { s0[c] = 0; s1[c] = 0; }
        int64_t j = lo;
        for (; j + 1 <= hi; j += 2)
          for (int c = 0; c < kB; ++c) { s0[c] += sv[j * kB + c]; s1[c] += sv[(j + 1) * kB + c]; }
        for (; j <= hi; ++j)
          for (int c = 0; c < kB; ++c) s0[c] += sv[j * kB + c];
        for (int c = 0; c < kB; ++c) s_[c] = s0[c] + s1[c];
        left = L;
      } else {
        for (int c = 0; c < kB; ++c) {
          const double in = kInterior || i + b < n ? sv[(i + b) * kB + c] : 0.0;
          const double out = kInterior || i - b - 1 >= 0 ? sv[(i - b - 1) * kB + c] : 0.0;
          s_[c] += in - out;
        }
      }
      --left;
      double nb[kB];
      for (int c = 0; c < kB; ++c) nb[c] = s_[c] - sv[i * kB + c];
      if (kTwo || sl) {
        if (kInterior || i + kpf < n)
          for (int64_t e = (i + kpf) * kss; e < (i + kpf + 1) * kss; ++e)
            if (sl[e] >= 0) __builtin_prefetch(sv + static_cast<int64_t>(sl[e]) * kB, 0, kPrefetchLocality);
        for (int64_t e = i * kss; e < (i + 1) * kss; ++e)
          if (sl[e] >= 0)
            for (int c = 0; c < kB; ++c) nb[c] += sv[static_cast<int64_t>(sl[e]) * kB + c];
      } else {
        if (kInterior || i + kpf < n)
          for (int64_t e = off[i + kpf]; e < off[i + kpf + 1]; ++e) __builtin_prefetch(sv + static_cast<int64_t>(ex[e]) * kB, 0, kPrefetchLocality);
        for (int64_t e = off[i]; e < off[i + 1]; ++e)
          for (int c = 0; c < kB; ++c) nb[c] += sv[static_cast<int64_t>(ex[e]) * kB + c];
      }
      double opx[kB], uo[kB], un[kB];
      for (int c = 0; c < kB; ++c) {
        if constexpr (kOp == Operator::kAdjacency) opx[c] = nb[c];
        else if constexpr (kOp == Operator::kNormalized) opx[c] = dv[i] * nb[c];
        else opx[c] = dv[i] * xs[i * kB + c] - nb[c];
        uo[c] = us[i * kB + c];
      }
      for (int c = 0; c < kB; ++c) {
        double v = 0;
        for (int k = 0; k < kB; ++k) v += opx[k] * S[k * kB + c];
        if constexpr (kAxpy)
          for (int k = 0; k < kB; ++k) v -= uo[k] * C[k * kB + c];
        un[c] = v;
        us[i * kB + c] = v;
      }
      for (int k = 0; k < kB; ++k)
        for (int c = 0; c < kB; ++c) acc[k * kB + c] += xs[i * kB + k] * un[c];
    }
    until_reset = left;
    for (int c = 0; c < kB; ++c) s_io[c] = s_[c];
    for (int k = 0; k < kB * kB; ++k) acc_io[k] = acc[k];
  };
  const int64_t in_lo = b + 1, in_hi = n - std::max<int64_t>(b, kPrefetchRows) - 1;
  auto chunk = [&](int64_t ch, double* acc) {
    const int64_t r0 = ch * kChunk, r1 = std::min(n, r0 + kChunk);
    double s_[kB] = {};
    int64_t until_reset = 0;
    for (int k = 0; k < kB * kB; ++k) acc[k] = 0;
    const int64_t a0 = std::clamp(in_lo, r0, r1), a1 = std::clamp(in_hi, a0, r1);
    if (slots && ks == 2) {
      rows.template operator()<false, true>(r0, a0, s_, until_reset, acc);
      rows.template operator()<true, true>(a0, a1, s_, until_reset, acc);
      rows.template operator()<false, true>(a1, r1, s_, until_reset, acc);
    } else {
      rows.template operator()<false, false>(r0, a0, s_, until_reset, acc);
      rows.template operator()<true, false>(a0, a1, s_, until_reset, acc);
      rows.template operator()<false, false>(a1, r1, s_, until_reset, acc);
    }
  };
  thread_local std::vector<double> part;
  part.assign(static_cast<size_t>(kB * kB) * nchunks, 0.0);
  double* pp = part.data();
  auto run = [&](int64_t ch) { chunk(ch, pp + ch * kB * kB); };
  if (n >= (int64_t{1} << 16)) parallel_for(0, nchunks, run);
  else for (int64_t ch = 0; ch < nchunks; ++ch) run(ch);
  for (int k = 0; k < kB * kB; ++k) G[k] = 0;
  for (int64_t ch = 0; ch < nchunks; ++ch)
    for (int k = 0; k < kB * kB; ++k) G[k] += pp[ch * kB * kB + k];
}

template <Operator kOp, int kB>
void block_dispatch_axpy(const BandedGraph& g, const BandedPlan* p, const double* x, const double* S, double* u,
                         const double* C, double* G) {
  if (C) banded_block_impl<kOp, kB, true>(g, p, x, S, u, C, G);
  else banded_block_impl<kOp, kB, false>(g, p, x, S, u, C, G);
}

template <Operator kOp>
void block_dispatch(const BandedGraph& g, const BandedPlan* p, int nb, const double* x, const double* S, double* u,
                    const double* C, double* G) {
  switch (nb) {
    case 1: return block_dispatch_axpy<kOp, 1>(g, p, x, S, u, C, G);
    case 2: return block_dispatch_axpy<kOp, 2>(g, p, x, S, u, C, G);
    case 3: return block_dispatch_axpy<kOp, 3>(g, p, x, S, u, C, G);
    case 4: return block_dispatch_axpy<kOp, 4>(g, p, x, S, u, C, G);
  }
  BNA_ASSERT(false && "banded_block_step: block size outside [1, 4]");
}

}  // namespace

BandedPlan make_banded_plan(const BandedGraph& g, Operator op) {
  BandedPlan p;
  int64_t kmax = 0;
  for (int64_t i = 0; i < g.n; ++i) kmax = std::max(kmax, g.offsets[i + 1] - g.offsets[i]);
  if (kmax <= kMaxSlots) {
    p.num_slots = kmax;
    p.slots.assign(static_cast<size_t>(g.n) * kmax, -1);
    parallel_for(0, g.n, [&](int64_t i) {
      std::copy(g.extra.begin() + g.offsets[i], g.extra.begin() + g.offsets[i + 1], p.slots.begin() + i * kmax);
    });
  }
  if (op != Operator::kAdjacency) {
    p.degree.resize(g.n);
    if (op == Operator::kNormalized) p.dscale.resize(g.n);
    for (int64_t i = 0; i < g.n; ++i) {
      const double d = static_cast<double>(g.degree(i));
      p.degree[i] = d;
      if (op == Operator::kNormalized) p.dscale[i] = d > 0 ? 1.0 / std::sqrt(d) : 0.0;
    }
  }
  return p;
}

std::pair<double, double> banded_step(const BandedGraph& g, Operator op, const BandedPlan* plan, const double* x,
                                      double sx, double* u, double cu, const double* q) {
  if (g.n == 0) return {0.0, 0.0};
  BandedPlan local;
  if (!plan && op != Operator::kAdjacency) {  // the scales are needed; slots are not
    local = make_banded_plan(g, op);
    local.slots.clear();
    plan = &local;
  }
  switch (op) {
    case Operator::kAdjacency: return dispatch<Operator::kAdjacency>(g, plan, x, sx, u, cu, q);
    case Operator::kNormalized: return dispatch<Operator::kNormalized>(g, plan, x, sx, u, cu, q);
    case Operator::kLaplacian: return dispatch<Operator::kLaplacian>(g, plan, x, sx, u, cu, q);
  }
  return {0.0, 0.0};
}

void banded_block_step(const BandedGraph& g, Operator op, const BandedPlan* plan, int nb, const double* x,
                       const double* S, double* u, const double* C, double* G) {
  if (g.n == 0) { std::fill(G, G + nb * nb, 0.0); return; }
  BandedPlan local;
  if (!plan && op != Operator::kAdjacency) {
    local = make_banded_plan(g, op);
    local.slots.clear();
    plan = &local;
  }
  switch (op) {
    case Operator::kAdjacency: return block_dispatch<Operator::kAdjacency>(g, plan, nb, x, S, u, C, G);
    case Operator::kNormalized: return block_dispatch<Operator::kNormalized>(g, plan, nb, x, S, u, C, G);
    case Operator::kLaplacian: return block_dispatch<Operator::kLaplacian>(g, plan, nb, x, S, u, C, G);
  }
}

}  // namespace detail

}  // namespace bna::analysis
