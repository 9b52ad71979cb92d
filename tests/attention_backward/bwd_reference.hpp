// Test helper: a reference forward + backward of attention over a generic row description, templated
// on the scalar (double = oracle, float = the low-precision reference of the numerics policy), and
// builders that describe every CPU path's rows in that form, written independently of the kernels.
//
// A row is a list of softmax segments; the row output is sum_c weight_c * softmax_c(V). A segment is
// a multiset of keys, each with an edge type (0 = untyped: no bias) and an additive score term.
// One segment per row is ordinary attention; several are permute-window kAverage.
// The reference's lse: the segment's LSE for one segment, the mean over non-empty segments otherwise,
// -inf for an empty row.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "attention/cpu/kernels.hpp"
#include "bna/block_layout.hpp"
#include "bna/graph.hpp"
#include "bna/rng.hpp"
#include "bna/topology.hpp"

namespace bna::testref {

struct Segment {
  double weight = 1.0;
  std::vector<int32_t> keys;
  std::vector<uint8_t> types;
  std::vector<double> add;
  void push(int32_t j, uint8_t t, double a = 0.0) { keys.push_back(j); types.push_back(t); add.push_back(a); }
};
using Row = std::vector<Segment>;

struct Dims {
  int64_t Hq = 1, Hkv = 1, Tq = 0, Tk = 0, dh = 0, q_offset = 0;
  double scale = 1.0;
};

// rows[hkv * Tq + i]: the row of query i (position q_offset + i) of KV head hkv.
struct RowSpec {
  std::vector<Row> rows;
  const Row& at(const Dims& d, int64_t hkv, int64_t i) const { return rows[static_cast<size_t>(hkv * d.Tq + i)]; }
};

template <class F>
struct Grads {
  std::vector<F> dq, dk, dv;
  F dbias[5] = {0, 0, 0, 0, 0};
};

namespace detail {
template <class F>
F dotn(const F* a, const F* b, int64_t n) {
  F s = 0;
  for (int64_t d = 0; d < n; ++d) s += a[d] * b[d];
  return s;
}
// Scores and LSE of one segment; returns -inf for an empty segment.
template <class F>
F segment_scores(const Dims& d, const Segment& s, const F* q, const F* kh, const F* bias, std::vector<F>& sc) {
  sc.resize(s.keys.size());
  F m = -std::numeric_limits<F>::infinity();
  for (size_t x = 0; x < s.keys.size(); ++x) {
    F v = static_cast<F>(d.scale) * dotn(q, kh + s.keys[x] * d.dh, d.dh) + static_cast<F>(s.add[x]);
    if (bias != nullptr && s.types[x] != 0) v += bias[s.types[x]];
    sc[x] = v;
    m = std::max(m, v);
  }
  if (s.keys.empty()) return m;
  F l = 0;
  for (F v : sc) l += std::exp(v - m);
  return m + std::log(l);
}
}  // namespace detail

// out [Hq, Tq, dh], lse [Hq, Tq]; q [Hq, Tq, dh], k/v [Hkv, Tk, dh]; bias [5] or nullptr.
template <class F>
void forward(const Dims& d, const RowSpec& spec, const std::vector<F>& q, const std::vector<F>& k,
             const std::vector<F>& v, const F* bias, std::vector<F>& out, std::vector<F>& lse) {
  const int64_t G = d.Hq / d.Hkv;
  out.assign(static_cast<size_t>(d.Hq * d.Tq * d.dh), F(0));
  lse.assign(static_cast<size_t>(d.Hq * d.Tq), -std::numeric_limits<F>::infinity());
  std::vector<F> sc;
  for (int64_t hq = 0; hq < d.Hq; ++hq) {
    const int64_t hkv = hq / G;
    const F* kh = k.data() + hkv * d.Tk * d.dh;
    const F* vh = v.data() + hkv * d.Tk * d.dh;
    for (int64_t i = 0; i < d.Tq; ++i) {
      const F* qr = q.data() + (hq * d.Tq + i) * d.dh;
      F* o = out.data() + (hq * d.Tq + i) * d.dh;
      F lse_sum = 0;
      int nonempty = 0;
      for (const Segment& s : spec.at(d, hkv, i)) {
        if (s.keys.empty()) continue;
        const F lse_c = detail::segment_scores(d, s, qr, kh, bias, sc);
        for (size_t x = 0; x < s.keys.size(); ++x) {
          const F p = static_cast<F>(s.weight) * std::exp(sc[x] - lse_c);
          for (int64_t c = 0; c < d.dh; ++c) o[c] += p * vh[s.keys[x] * d.dh + c];
        }
        lse_sum += lse_c;
        ++nonempty;
      }
      if (nonempty > 0) lse[static_cast<size_t>(hq * d.Tq + i)] = lse_sum / static_cast<F>(nonempty);
    }
  }
}

// Gradients of sum(dout * out) through forward(); every segment's LSE recomputed in F.
template <class F>
Grads<F> backward(const Dims& d, const RowSpec& spec, const std::vector<F>& q, const std::vector<F>& k,
                  const std::vector<F>& v, const F* bias, const std::vector<F>& dout) {
  const int64_t G = d.Hq / d.Hkv;
  Grads<F> g;
  g.dq.assign(q.size(), F(0));
  g.dk.assign(k.size(), F(0));
  g.dv.assign(v.size(), F(0));
  std::vector<F> sc, p, dp;
  const F scale = static_cast<F>(d.scale);
  for (int64_t hq = 0; hq < d.Hq; ++hq) {
    const int64_t hkv = hq / G;
    const F* kh = k.data() + hkv * d.Tk * d.dh;
    const F* vh = v.data() + hkv * d.Tk * d.dh;
    F* dkh = g.dk.data() + hkv * d.Tk * d.dh;
    F* dvh = g.dv.data() + hkv * d.Tk * d.dh;
    for (int64_t i = 0; i < d.Tq; ++i) {
      const F* qr = q.data() + (hq * d.Tq + i) * d.dh;
      const F* dor = dout.data() + (hq * d.Tq + i) * d.dh;
      F* dqr = g.dq.data() + (hq * d.Tq + i) * d.dh;
      for (const Segment& s : spec.at(d, hkv, i)) {
        if (s.keys.empty()) continue;
        const F lse_c = detail::segment_scores(d, s, qr, kh, bias, sc);
        const size_t n = s.keys.size();
        p.resize(n);
        dp.resize(n);
        F D = 0;
        for (size_t x = 0; x < n; ++x) {
          p[x] = std::exp(sc[x] - lse_c);
          dp[x] = static_cast<F>(s.weight) * detail::dotn(dor, vh + s.keys[x] * d.dh, d.dh);
          D += p[x] * dp[x];
        }
        for (size_t x = 0; x < n; ++x) {
          const int64_t j = s.keys[x];
          const F ds = p[x] * (dp[x] - D);
          for (int64_t c = 0; c < d.dh; ++c) {
            dqr[c] += scale * ds * kh[j * d.dh + c];
            dkh[j * d.dh + c] += scale * ds * qr[c];
            dvh[j * d.dh + c] += p[x] * static_cast<F>(s.weight) * dor[c];
          }
          if (s.types[x] != 0) g.dbias[s.types[x]] += ds;
        }
      }
    }
  }
  return g;
}

// ---- row builders, one per CPU path ----------------------------------------------------------

// Dense and block-sparse keys are untyped; `shift` is the forward's constant per-score bias
// (bias[WINDOW] when edge bias is on): it changes the lse, not the output, and has zero gradient.
inline RowSpec dense_rows(const Dims& d, double shift = 0.0) {
  RowSpec r;
  for (int64_t h = 0; h < d.Hkv; ++h)
    for (int64_t i = 0; i < d.Tq; ++i) {
      Segment s;
      for (int64_t j = 0; j <= d.q_offset + i && j < d.Tk; ++j) s.push(static_cast<int32_t>(j), 0, shift);
      r.rows.push_back({s});
    }
  return r;
}

inline RowSpec gather_rows(const Dims& d, const graph::GraphAbi& g) {
  RowSpec r;
  for (int64_t h = 0; h < d.Hkv; ++h)
    for (int64_t i = 0; i < d.Tq; ++i) {
      const int64_t pos = d.q_offset + i;
      Segment s;
      for (int64_t c = 0; c < g.D; ++c) {
        const int32_t j = g.row(h, pos)[c];
        if (j >= 0 && j <= pos && j < d.Tk) s.push(j, g.row_types(h, pos)[c]);
      }
      r.rows.push_back({s});
    }
  return r;
}

// The ABI graph that a StreamsGraph describes: band U landmarks U extras, typed as its contract says.
inline graph::GraphAbi streams_to_abi(const cpu::StreamsGraph& sg) {
  graph::GraphAbi g;
  g.H = sg.Hkv;
  g.T = sg.T;
  std::vector<std::vector<std::pair<int32_t, uint8_t>>> rows(static_cast<size_t>(sg.Hkv * sg.T));
  for (int64_t h = 0; h < sg.Hkv; ++h)
    for (int64_t i = 0; i < sg.T; ++i) {
      auto& row = rows[static_cast<size_t>(h * sg.T + i)];
      const size_t base = static_cast<size_t>((h * sg.T + i) * sg.C);
      for (int64_t c = 0; c < sg.C; ++c)
        if (sg.extra[base + c] >= 0) row.push_back({sg.extra[base + c], sg.extra_type[base + c]});
      for (int64_t j = std::max<int64_t>(0, i - sg.W); j <= i; ++j) {
        uint8_t t = (sg.S > 0 && j < i && j % sg.S == 0) ? 3 : 2;
        for (int64_t c = 0; c < sg.C; ++c)
          if (sg.band_override[base + c] == j) t = sg.band_override_type[base + c];
        row.push_back({static_cast<int32_t>(j), t});
      }
      if (sg.S > 0)
        for (int64_t j = 0; j < i - sg.W; j += sg.S) {
          uint8_t t = 3;
          for (int64_t c = 0; c < sg.C; ++c)
            if (!sg.landmark_override.empty() && sg.landmark_override[base + c] == j) t = sg.landmark_override_type[base + c];
          row.push_back({static_cast<int32_t>(j), t});
        }
    }
  size_t D = 1;
  for (auto& row : rows) D = std::max(D, row.size());
  g.D = static_cast<int64_t>(D);
  g.neigh_idx.assign(static_cast<size_t>(g.H * g.T) * D, -1);
  g.edge_type.assign(static_cast<size_t>(g.H * g.T) * D, 0);
  for (size_t r = 0; r < rows.size(); ++r)
    for (size_t c = 0; c < rows[r].size(); ++c) {
      g.neigh_idx[r * D + c] = rows[r][c].first;
      g.edge_type[r * D + c] = rows[r][c].second;
    }
  return g;
}

// Per cycle c: ranks r-w..r+w (wrapped or dropped), keys j <= pos; offsets +-1 typed CYCLE (1), the
// rest WINDOW (2). average: one segment per cycle with weight 1/C; else one segment of all copies.
// A circular band with 2w+1 >= T holds every rank exactly once (the forward's rule).
inline RowSpec permute_rows(const Dims& d, const topo::PermsOnly& P, int64_t w, bool average, bool circular) {
  RowSpec r;
  const int64_t T = P.T, C = P.num_cycles;
  if (circular && 2 * w + 1 >= T) circular = false, w = T - 1;
  for (int64_t h = 0; h < d.Hkv; ++h)
    for (int64_t i = 0; i < d.Tq; ++i) {
      const int64_t pos = d.q_offset + i;
      Row row;
      Segment all;
      for (int64_t c = 0; c < C; ++c) {
        Segment s;
        s.weight = 1.0 / static_cast<double>(C);
        const int64_t rank = P.inv_of(h, c)[pos];
        for (int64_t o = -w; o <= w; ++o) {
          int64_t rr = rank + o;
          if (circular) rr = ((rr % T) + T) % T;
          if (rr < 0 || rr >= T) continue;
          const int32_t j = P.perm_of(h, c)[rr];
          if (j <= pos && j < d.Tk) s.push(j, std::abs(o) == 1 ? 1 : 2);
        }
        if (average) {
          row.push_back(s);
        } else {
          for (size_t x = 0; x < s.keys.size(); ++x) all.push(s.keys[x], s.types[x]);
        }
      }
      if (!average) row.push_back(all);
      r.rows.push_back(row);
    }
  return r;
}

inline RowSpec block_rows(const Dims& d, const topo::BlockSparseLayout& L, double shift = 0.0) {
  RowSpec r;
  for (int64_t h = 0; h < d.Hkv; ++h)
    for (int64_t i = 0; i < d.Tq; ++i) {
      const int64_t pos = d.q_offset + i;
      const int64_t qb = pos / L.block_size;
      Segment s;
      for (const int32_t* b = L.row_begin(h, qb); b != L.row_end(h, qb); ++b)
        for (int64_t j = int64_t{*b} * L.block_size; j < (*b + 1) * L.block_size; ++j)
          if (j <= pos && j < d.Tk) s.push(static_cast<int32_t>(j), 0, shift);
      r.rows.push_back({s});
    }
  return r;
}

// ---- random inputs and graphs --------------------------------------------------------------------

inline std::vector<float> randn(size_t n, Rng& rng) {
  std::vector<float> x(n);
  for (auto& e : x) e = static_cast<float>(rng.normal());
  return x;
}
inline std::vector<double> widen(const std::vector<float>& x) { return {x.begin(), x.end()}; }
inline std::vector<float> narrow(const std::vector<double>& x) {
  std::vector<float> y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = static_cast<float>(x[i]);
  return y;
}

// Random ABI [H, T, D] of sets: random earlier/later keys with random types 1..4, self as WINDOW,
// -1 padded. Rows listed in `empty_rows` hold only future keys (or nothing), so they are empty
// after causal masking.
inline graph::GraphAbi random_abi(int64_t H, int64_t T, int64_t D, Rng& rng, const std::set<int64_t>& empty_rows) {
  graph::GraphAbi g;
  g.H = H;
  g.T = T;
  g.D = D;
  g.neigh_idx.assign(static_cast<size_t>(H * T * D), -1);
  g.edge_type.assign(static_cast<size_t>(H * T * D), 0);
  for (int64_t h = 0; h < H; ++h)
    for (int64_t i = 0; i < T; ++i) {
      std::set<int32_t> used;
      std::vector<std::pair<int32_t, uint8_t>> row;
      const bool empty = empty_rows.count(i) > 0;
      if (!empty) { row.push_back({static_cast<int32_t>(i), 2}); used.insert(static_cast<int32_t>(i)); }
      const int64_t want = static_cast<int64_t>(rng.uniform_below(static_cast<uint64_t>(D)));
      for (int64_t a = 0; a < 4 * D && static_cast<int64_t>(row.size()) < want; ++a) {
        int32_t j = static_cast<int32_t>(rng.uniform_below(static_cast<uint64_t>(T)));
        if (empty && j <= i) continue;
        if (used.insert(j).second) row.push_back({j, static_cast<uint8_t>(1 + rng.uniform_below(4))});
      }
      rng.shuffle(row);
      for (size_t c = 0; c < row.size(); ++c) {
        g.neigh_idx[static_cast<size_t>((h * T + i) * D) + c] = row[c].first;
        g.edge_type[static_cast<size_t>((h * T + i) * D) + c] = row[c].second;
      }
    }
  return g;
}

// Random StreamsGraph: extras avoid band and landmarks; overrides retype random band keys and random
// landmarks left of the band (landmark_override), as a cycle neighbour on a landmark does.
inline cpu::StreamsGraph random_streams(int64_t H, int64_t T, int64_t W, int64_t S, int64_t C, Rng& rng) {
  cpu::StreamsGraph sg;
  sg.Hkv = H; sg.T = T; sg.W = W; sg.S = S; sg.C = C;
  const size_t n = static_cast<size_t>(H * T * C);
  sg.extra.assign(n, -1); sg.extra_type.assign(n, 0);
  sg.band_override.assign(n, -1); sg.band_override_type.assign(n, 0);
  sg.landmark_override.assign(n, -1); sg.landmark_override_type.assign(n, 0);
  for (int64_t h = 0; h < H; ++h)
    for (int64_t i = 0; i < T; ++i) {
      const size_t base = static_cast<size_t>((h * T + i) * C);
      int64_t ne = 0, no = 0, nl = 0;
      std::set<int32_t> used;
      for (int64_t a = 0; a < 3 * C; ++a) {
        const int32_t j = static_cast<int32_t>(rng.uniform_below(static_cast<uint64_t>(T)));
        const bool in_band = j >= i - W && j <= i;
        const bool landmark = S > 0 && j % S == 0 && j < i;
        if (!used.insert(j).second) continue;
        if (in_band && no < C && rng.uniform01() < 0.5) {
          sg.band_override[base + no] = j;
          sg.band_override_type[base + no] = static_cast<uint8_t>(rng.uniform01() < 0.5 ? 1 : 4);
          ++no;
        } else if (!in_band && landmark && nl < C && rng.uniform01() < 0.5) {
          sg.landmark_override[base + nl] = j;
          sg.landmark_override_type[base + nl] = static_cast<uint8_t>(rng.uniform01() < 0.5 ? 1 : 4);
          ++nl;
        } else if (!in_band && !landmark && ne < C) {
          sg.extra[base + ne] = j;
          sg.extra_type[base + ne] = static_cast<uint8_t>(rng.uniform01() < 0.5 ? 1 : 4);
          ++ne;
        }
      }
    }
  return sg;
}

inline topo::PermsOnly random_perms(int64_t H, int64_t T, int64_t C, Rng& rng) {
  topo::PermsOnly P;
  P.H = H; P.T = T; P.num_cycles = C;
  P.perm.resize(static_cast<size_t>(H * C * T));
  P.inv.resize(P.perm.size());
  for (int64_t hc = 0; hc < H * C; ++hc) {
    std::vector<int32_t> p(static_cast<size_t>(T));
    for (int64_t t = 0; t < T; ++t) p[t] = static_cast<int32_t>(t);
    rng.shuffle(p);
    for (int64_t t = 0; t < T; ++t) {
      P.perm[static_cast<size_t>(hc * T + t)] = p[t];
      P.inv[static_cast<size_t>(hc * T + p[t])] = static_cast<int32_t>(t);
    }
  }
  return P;
}

// Random block layout: each query block lists a random subset of blocks 0..b (self with prob 3/4,
// so some rows are empty), plus sometimes one future block (removed by token causality).
inline topo::BlockSparseLayout random_blocks(int64_t H, int64_t T, int64_t bs, Rng& rng) {
  topo::BlockSparseLayout L;
  L.H = H; L.T = T; L.block_size = bs; L.n_blocks = (T + bs - 1) / bs;
  for (int64_t h = 0; h < H; ++h) {
    L.head_base.push_back(static_cast<int64_t>(L.indices.size()));
    L.indptr.push_back(0);
    int32_t count = 0;
    for (int64_t b = 0; b < L.n_blocks; ++b) {
      for (int64_t kb = 0; kb < L.n_blocks; ++kb) {
        const bool take = kb == b ? rng.uniform01() < 0.75 : kb < b ? rng.uniform01() < 0.4 : rng.uniform01() < 0.1;
        if (take) { L.indices.push_back(static_cast<int32_t>(kb)); ++count; }
      }
      L.indptr.push_back(count);
    }
  }
  return L;
}

}  // namespace bna::testref
