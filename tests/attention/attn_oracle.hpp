// Test helper for the attention forward paths: a float64 oracle (naive masked softmax over an
// explicit allowed-key multiset), the same math in f32 with the kernels' rounding points (the
// low-precision reference), the pass rule of docs/numerics.md, and hand-built graphs (ABI rows,
// perms, block layouts) that do not depend on the topology library. Each path's allowed keys are
// written here independently of the kernels, straight from the semantics in attention.hpp.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "bna/attention.hpp"
#include "bna/dtype.hpp"

namespace bna::test {

struct KeyEntry {
  int64_t j;
  uint8_t type;
};
// Lists of allowed keys for (KV head, query position). Several lists = average of their softmaxes
// (permute-window average mode); one list = one softmax over the multiset.
using KeyLists = std::function<std::vector<std::vector<KeyEntry>>(int64_t hk, int64_t pos)>;

struct RefResult {
  std::vector<double> out;  // [B, Hq, Tq, dh]
  std::vector<double> lse;  // [B, Hq, Tq]
};

// Reference attention. lowp = false: float64 everywhere. lowp = true: f32 scores/softmax/accumulation
// and the output rounded to `dtype` (the kernels' rounding points).
template <class Real>
RefResult reference_impl(const std::vector<float>& q, const std::vector<float>& k, const std::vector<float>& v,
                         const attn::Shape& s, float scale, const float* bias, const KeyLists& lists) {
  RefResult r;
  r.out.assign(s.B * s.Hq * s.Tq * s.dh, 0.0);
  r.lse.assign(s.B * s.Hq * s.Tq, 0.0);
  const int64_t G = s.Hq / s.Hkv;
  std::vector<Real> acc(s.dh), sc;
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t hq = 0; hq < s.Hq; ++hq)
      for (int64_t i = 0; i < s.Tq; ++i) {
        const int64_t hk = hq / G, pos = s.q_offset + i;
        const auto ls = lists(hk, pos);
        const float* qr = q.data() + ((b * s.Hq + hq) * s.Tq + i) * s.dh;
        std::vector<double> o(s.dh, 0.0);
        double lse_sum = 0.0;  // sum over lists of exp(lse_c) relative to lse_max
        std::vector<double> lses;
        for (const auto& lst : ls) {
          sc.assign(lst.size(), Real(0));
          Real mx = -std::numeric_limits<Real>::infinity();
          for (size_t e = 0; e < lst.size(); ++e) {
            const float* kr = k.data() + ((b * s.Hkv + hk) * s.Tk + lst[e].j) * s.dh;
            Real d = 0;
            for (int64_t c = 0; c < s.dh; ++c) d += Real(qr[c]) * Real(kr[c]);
            sc[e] = d * Real(scale) + (bias ? Real(bias[lst[e].type]) : Real(0));
            mx = std::max(mx, sc[e]);
          }
          if (lst.empty()) { lses.push_back(-INFINITY); continue; }
          Real l = 0;
          std::fill(acc.begin(), acc.end(), Real(0));
          for (size_t e = 0; e < lst.size(); ++e) {
            const Real p = std::exp(sc[e] - mx);
            l += p;
            const float* vr = v.data() + ((b * s.Hkv + hk) * s.Tk + lst[e].j) * s.dh;
            for (int64_t c = 0; c < s.dh; ++c) acc[c] += p * Real(vr[c]);
          }
          for (int64_t c = 0; c < s.dh; ++c) o[c] += double(acc[c] / l);
          lses.push_back(double(mx + std::log(l)));
        }
        const double n = double(ls.size());
        double lmax = -INFINITY;
        for (double x : lses) lmax = std::max(lmax, x);
        for (double x : lses) lse_sum += lmax == -INFINITY ? 0.0 : std::exp(x - lmax);
        const int64_t row = (b * s.Hq + hq) * s.Tq + i;
        for (int64_t c = 0; c < s.dh; ++c) r.out[row * s.dh + c] = o[c] / n;
        r.lse[row] = lmax == -INFINITY ? -INFINITY : lmax + std::log(lse_sum / n);
      }
  return r;
}

inline RefResult reference64(const std::vector<float>& q, const std::vector<float>& k, const std::vector<float>& v,
                             const attn::Shape& s, float scale, const float* bias, const KeyLists& lists) {
  return reference_impl<double>(q, k, v, s, scale, bias, lists);
}
inline RefResult reference_lowp(const std::vector<float>& q, const std::vector<float>& k, const std::vector<float>& v,
                                const attn::Shape& s, float scale, const float* bias, const KeyLists& lists) {
  RefResult r = reference_impl<float>(q, k, v, s, scale, bias, lists);
  for (double& x : r.out) x = round_to(s.dtype, static_cast<float>(x));
  for (double& x : r.lse) x = static_cast<float>(x);
  return r;
}

// Absolute floors of the pass rule per output dtype (docs/numerics.md).
inline double floor_for(DType t) {
  switch (t) {
    case DType::kBF16: return 8e-3;
    case DType::kF16: return 1e-3;
    default: return 1e-5;
  }
}

struct Check {
  bool pass = true;
  std::string why;
};

// max|got - ref64| <= 2 max|lp - ref64| + floor and the same for the means; -inf must match -inf
// exactly; NaN or a stray Inf never passes.
inline Check fa3_rule(const std::vector<double>& got, const std::vector<double>& ref64, const std::vector<double>& lp,
                      double floor, const char* what) {
  Check c;
  double max_e = 0, max_lp = 0, sum_e = 0, sum_lp = 0;
  size_t n = 0;
  for (size_t e = 0; e < got.size(); ++e) {
    if (std::isnan(got[e])) { c.pass = false; c.why = std::string(what) + ": NaN at " + std::to_string(e); return c; }
    if (std::isinf(ref64[e]) || std::isinf(got[e])) {
      if (got[e] != ref64[e]) {
        c.pass = false;
        c.why = std::string(what) + ": at " + std::to_string(e) + " got " + std::to_string(got[e]) + " expected " + std::to_string(ref64[e]);
        return c;
      }
      continue;
    }
    const double err = std::fabs(got[e] - ref64[e]), elp = std::fabs(lp[e] - ref64[e]);
    max_e = std::max(max_e, err);
    max_lp = std::max(max_lp, elp);
    sum_e += err;
    sum_lp += elp;
    ++n;
  }
  const double bound = 2 * max_lp + floor;
  const double mean_e = n ? sum_e / n : 0, mean_bound = (n ? 2 * sum_lp / n : 0) + floor;
  if (!(max_e <= bound) || !(mean_e <= mean_bound)) {
    std::ostringstream os;
    os << what << ": max err " << max_e << " (bound " << bound << "), mean err " << mean_e << " (bound " << mean_bound << ")";
    c.pass = false;
    c.why = os.str();
  }
  return c;
}

// Fresh N(0, 1) inputs rounded through dtype; `raw` holds them in dtype for the API.
struct Inputs {
  std::vector<float> q, k, v;                 // values as the kernel sees them (rounded to dtype)
  std::vector<uint16_t> q16, k16, v16;        // bf16/f16 bit patterns
};
inline Inputs make_inputs(const attn::Shape& s, uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  Inputs in;
  auto fill = [&](std::vector<float>& x, std::vector<uint16_t>& x16, int64_t n) {
    x.resize(n);
    x16.resize(s.dtype == DType::kF32 ? 0 : n);
    for (int64_t e = 0; e < n; ++e) {
      const float f = nd(gen);
      if (s.dtype == DType::kF32) { x[e] = f; continue; }
      x16[e] = s.dtype == DType::kBF16 ? float_to_bf16(f) : float_to_f16(f);
      x[e] = s.dtype == DType::kBF16 ? bf16_to_float(x16[e]) : f16_to_float(x16[e]);
    }
  };
  fill(in.q, in.q16, s.B * s.Hq * s.Tq * s.dh);
  fill(in.k, in.k16, s.B * s.Hkv * s.Tk * s.dh);
  fill(in.v, in.v16, s.B * s.Hkv * s.Tk * s.dh);
  return in;
}

// ---- hand-built graphs ------------------------------------------------------------------------
inline std::vector<int32_t> random_perm(int64_t T, std::mt19937_64& gen) {
  std::vector<int32_t> p(T);
  for (int64_t i = 0; i < T; ++i) p[i] = static_cast<int32_t>(i);
  std::shuffle(p.begin(), p.end(), gen);
  return p;
}

// ABI rows per graph.hpp: cycle prev/next (ascending union over cycles), window i-W..i-1, landmarks
// 0,S,..<i, self (WINDOW); duplicates merged keeping the first position and the highest priority.
inline graph::GraphAbi butterfly_abi(int64_t H, int64_t T, int64_t W, int64_t S, int ncyc, uint64_t seed,
                                     bool include_self = true) {
  std::mt19937_64 gen(seed);
  const auto prio = [](uint8_t t) { return t == 1 ? 3 : t == 4 ? 2 : t == 3 ? 1 : t == 2 ? 0 : -1; };
  std::vector<std::vector<std::vector<std::pair<int32_t, uint8_t>>>> rows(H, std::vector<std::vector<std::pair<int32_t, uint8_t>>>(T));
  graph::GraphAbi g;
  g.H = H;
  g.T = T;
  g.meta.window = W;
  g.meta.landmark_stride = S;
  g.meta.num_cycles = ncyc;
  g.meta.include_self = include_self;
  int64_t D = 1;
  for (int64_t h = 0; h < H; ++h) {
    std::vector<std::vector<int32_t>> cyc_nb(T);
    for (int c = 0; c < ncyc && T > 1; ++c) {
      const auto p = random_perm(T, gen);
      for (int64_t r = 0; r < T; ++r) {
        cyc_nb[p[r]].push_back(p[(r + 1) % T]);
        cyc_nb[p[r]].push_back(p[(r + T - 1) % T]);
      }
    }
    for (int64_t i = 0; i < T; ++i) {
      auto& row = rows[h][i];
      auto add = [&](int32_t j, uint8_t t) {
        for (auto& e : row)
          if (e.first == j) { if (prio(t) > prio(e.second)) e.second = t; return; }
        row.push_back({j, t});
      };
      auto& cn = cyc_nb[i];
      std::sort(cn.begin(), cn.end());
      for (int32_t j : cn) if (j != i) add(j, 1);
      for (int64_t j = std::max<int64_t>(0, i - W); j < i; ++j) add(static_cast<int32_t>(j), 2);
      if (S > 0) for (int64_t j = 0; j < i; j += S) add(static_cast<int32_t>(j), 3);
      if (include_self) add(static_cast<int32_t>(i), 2);
      D = std::max<int64_t>(D, row.size());
    }
  }
  g.D = D;
  g.neigh_idx.assign(H * T * D, -1);
  g.edge_type.assign(H * T * D, 0);
  for (int64_t h = 0; h < H; ++h)
    for (int64_t i = 0; i < T; ++i)
      for (size_t c = 0; c < rows[h][i].size(); ++c) {
        g.neigh_idx[(h * T + i) * D + c] = rows[h][i][c].first;
        g.edge_type[(h * T + i) * D + c] = rows[h][i][c].second;
      }
  return g;
}

inline topo::PermsOnly make_perms(int64_t H, int64_t T, int64_t ncyc, uint64_t seed) {
  std::mt19937_64 gen(seed);
  topo::PermsOnly P;
  P.H = H;
  P.T = T;
  P.num_cycles = ncyc;
  P.perm.resize(H * ncyc * T);
  P.inv.resize(H * ncyc * T);
  for (int64_t hc = 0; hc < H * ncyc; ++hc) {
    const auto p = random_perm(T, gen);
    for (int64_t r = 0; r < T; ++r) {
      P.perm[hc * T + r] = p[r];
      P.inv[hc * T + p[r]] = static_cast<int32_t>(r);
    }
  }
  return P;
}

// Block rows: self, previous block, and block 0 (ascending, unique). drop_self_row0 leaves block 0's
// row empty on head 0 (empty query rows).
inline topo::BlockSparseLayout make_blocks(int64_t H, int64_t T, int64_t Bs, bool drop_row0 = false) {
  topo::BlockSparseLayout L;
  L.H = H;
  L.T = T;
  L.block_size = Bs;
  L.n_blocks = (T + Bs - 1) / Bs;
  for (int64_t h = 0; h < H; ++h) {
    L.head_base.push_back(static_cast<int64_t>(L.indices.size()));
    int32_t off = 0;
    L.indptr.push_back(0);
    for (int64_t b = 0; b < L.n_blocks; ++b) {
      std::vector<int32_t> row;
      if (!(drop_row0 && h == 0 && b == 0)) {
        row.push_back(0);
        if (b >= 1) row.push_back(static_cast<int32_t>(b - 1));
        row.push_back(static_cast<int32_t>(b));
        // a future block too: token causality must remove it
        if (b + 1 < L.n_blocks && b % 2 == 1) row.push_back(static_cast<int32_t>(b + 1));
        std::sort(row.begin(), row.end());
        row.erase(std::unique(row.begin(), row.end()), row.end());
      }
      for (int32_t x : row) L.indices.push_back(x);
      off += static_cast<int32_t>(row.size());
      L.indptr.push_back(off);
    }
  }
  return L;
}

// ---- allowed-key lists, written from the semantics ----------------------------------------------
inline KeyLists dense_lists() {
  return [](int64_t, int64_t pos) {
    std::vector<KeyEntry> l;
    for (int64_t j = 0; j <= pos; ++j) l.push_back({j, 2});
    return std::vector<std::vector<KeyEntry>>{l};
  };
}
inline KeyLists abi_lists(const graph::GraphAbi& g) {
  return [&g](int64_t hk, int64_t pos) {
    std::vector<KeyEntry> l;
    for (int64_t c = 0; c < g.D; ++c) {
      const int32_t j = g.row(hk, pos)[c];
      if (j >= 0 && j <= pos) l.push_back({j, g.row_types(hk, pos)[c]});
    }
    return std::vector<std::vector<KeyEntry>>{l};
  };
}
inline KeyLists perm_lists(const topo::PermsOnly& P, int64_t w, attn::MultiCycleMode mode, bool circular) {
  return [&P, w, mode, circular](int64_t hk, int64_t pos) {
    const int64_t T = P.T;
    std::vector<std::vector<KeyEntry>> out;
    std::vector<KeyEntry> uni;
    for (int64_t c = 0; c < P.num_cycles; ++c) {
      std::vector<KeyEntry> l;
      const int64_t r = P.inv_of(hk, c)[pos];
      if (circular && 2 * w + 1 >= T) {
        for (int64_t rr = 0; rr < T; ++rr) {  // every rank once (the full prefix), linear typing
          const int64_t j = P.perm_of(hk, c)[rr];
          if (j <= pos) l.push_back({j, uint8_t(std::llabs(rr - r) == 1 ? 1 : 2)});
        }
      } else {
        for (int64_t o = -w; o <= w; ++o) {
          int64_t rr = r + o;
          if (circular) rr = ((rr % T) + T) % T;
          else if (rr < 0 || rr >= T) continue;
          const int64_t j = P.perm_of(hk, c)[rr];
          if (j <= pos) l.push_back({j, uint8_t(o == 1 || o == -1 ? 1 : 2)});
        }
      }
      if (mode == attn::MultiCycleMode::kAverage) out.push_back(l);
      else uni.insert(uni.end(), l.begin(), l.end());
    }
    if (mode != attn::MultiCycleMode::kAverage) out.push_back(uni);
    return out;
  };
}
inline KeyLists block_lists(const topo::BlockSparseLayout& L) {
  return [&L](int64_t hk, int64_t pos) {
    std::vector<KeyEntry> l;
    const int64_t b = pos / L.block_size;
    for (const int32_t* kb = L.row_begin(hk, b); kb != L.row_end(hk, b); ++kb)
      for (int64_t j = *kb * L.block_size; j < std::min((*kb + 1) * L.block_size, L.T); ++j)
        if (j <= pos) l.push_back({j, 2});
    return std::vector<std::vector<KeyEntry>>{l};
  };
}

}  // namespace bna::test
