// Causal (directed, layered) diagnostics: prefix reachability through a stack of layer graphs, causal
// distances of one repeated graph, and pair coverage with and without the causal mask.
// Decisions: reach sets are bitset rows (uint64 words); row i only touches its first ceil((i+1)/64)
// words because R(j) lies inside [0, j] for every j <= i, which halves the work. The update is
// synchronous (layer l reads only layer l-1 sets), matching how a transformer layer sees its inputs.
#include <algorithm>
#include <bit>
#include <cmath>
#include <numeric>
#include <string>

#include "bna/analysis.hpp"
#include "bna/rng.hpp"
#include "bna/threads.hpp"

namespace bna::analysis {

namespace {

// Triangular bitset storage: row i has words(i) = i/64 + 1 words (R(i) lies inside [0, i]).
inline int64_t tri_words(int64_t i) { return i / 64 + 1; }
inline int64_t tri_offset(int64_t i) {
  const int64_t q = i / 64, r = i % 64;
  return 64 * (q * (q + 1) / 2) + r * (q + 1);
}

// A bitset row with implicit leading words: words [0, fw) are all ones, or (fw == 0) words [0, lz) are
// all zero; only words [max(fw, lz), nw) are stored (the buffer may hold stale data below that).
struct RowRef {
  const uint64_t* w;
  int64_t nw, fw, lz;
};

// Accumulates sources into one output row over words [x, nw): x = max fw of the sources when any is
// positive (the output's leading ones), else the min lz (the output's leading zeros).
struct RowAcc {
  uint64_t* out;
  int64_t nw;
  int64_t x = 0, fw = 0, lz = 0;
};

void or_into(uint64_t* out, int64_t x, const RowRef& s) {
  const int64_t from = std::max(x, std::max(s.fw, s.lz));
  for (int64_t w = from; w < s.nw; ++w) out[w] |= s.w[w];
}

// out[x, nw) = OR of the sources; sets fw/lz of the result. Sources must have nw <= out_nw.
template <class Sources>
void combine(uint64_t* out, int64_t out_nw, const Sources& src, int64_t nsrc, int64_t& fw_out, int64_t& lz_out) {
  int64_t F = 0, Z = out_nw;
  for (int64_t k = 0; k < nsrc; ++k) {
    F = std::max(F, src[k].fw);
    Z = std::min(Z, src[k].lz);
  }
  const int64_t x = F > 0 ? F : Z;
  std::fill(out + x, out + out_nw, uint64_t{0});
  for (int64_t k = 0; k < nsrc; ++k) or_into(out, x, src[k]);
  int64_t w = x;
  if (F > 0 || x == 0) {  // leading ones continue from x
    while (w < out_nw && out[w] == ~uint64_t{0}) ++w;
    fw_out = w;
    lz_out = 0;
    if (w == 0) {  // no leading ones: count leading zeros instead
      while (w < out_nw && out[w] == 0) ++w;
      lz_out = w;
    }
  } else {
    while (w < out_nw && out[w] == 0) ++w;
    fw_out = 0;
    lz_out = w;
  }
}

}  // namespace

Expected<Reachability> causal_reachability(int64_t T, const LayerRowsFn& layer_rows, const ReachabilityOptions& opt) {
  if (T < 1 || T > opt.max_T)
    return invalid_argument("analysis: reachability with T=" + std::to_string(T) + ", expected 1 <= T <= max_T=" +
                            std::to_string(opt.max_T) + " (bitsets need T^2/8 bytes)");
  if (opt.max_layers < 1)
    return invalid_argument("analysis: max_layers=" + std::to_string(opt.max_layers) + ", expected >= 1");
  const int64_t total = tri_offset(T);
  std::vector<uint64_t> cur(total), nxt(total);
  std::vector<int64_t> fw(T, 0), lz(T, 0), nfw(T, 0), nlz(T, 0);
  for (int64_t i = 0; i < T; ++i) {
    uint64_t* row = cur.data() + tri_offset(i);
    std::fill(row, row + tri_words(i), uint64_t{0});
    row[i / 64] = uint64_t{1} << (i % 64);
    lz[i] = i / 64;  // R_0(i) = {i}: the words below i's word are zero
  }
  Reachability r;
  r.T = T;
  std::vector<double> cov(T, 1.0);
  for (int64_t l = 0; l < opt.max_layers; ++l) {
    const bool all_full = !r.mean_coverage.empty() && r.layers_to_full >= 0;
    if (all_full) {  // reach sets only grow: every later layer is full too
      r.mean_coverage.push_back(1.0);
      r.min_coverage.push_back(1.0);
      r.fraction_seeing.push_back(1.0);
      continue;
    }
    auto rows = layer_rows(l);
    if (!rows) return rows.status();
    if (rows->T != T)
      return invalid_argument("analysis: layer " + std::to_string(l) + " has T=" + std::to_string(rows->T) +
                              ", expected T=" + std::to_string(T));
    const CausalRows& cr = *rows;
    if (static_cast<int64_t>(cr.offsets.size()) != T + 1 || cr.offsets[0] != 0 ||
        cr.offsets[T] != static_cast<int64_t>(cr.preds.size()))
      return invalid_argument("analysis: layer " + std::to_string(l) + " has " + std::to_string(cr.offsets.size()) +
                              " row offsets for " + std::to_string(cr.preds.size()) + " preds, expected T+1=" +
                              std::to_string(T + 1) + " ending at the pred count");
    // Block size for the run structure: the longest run of consecutive predecessors (a causal window),
    // capped so the two block buffers stay small. Runs of length >= kMinRun use the buffers.
    constexpr int64_t kMinRun = 4, kMaxBlock = 512;
    int64_t B = 1;
    for (int64_t i = 0; i < T; ++i) {
      int64_t run = 0;
      for (int64_t e = cr.offsets[i]; e < cr.offsets[i + 1]; ++e) {
        const int32_t j = cr.preds[e];
        run = (e > cr.offsets[i] && j == cr.preds[e - 1] + 1) ? run + 1 : 1;
        B = std::max(B, run);
      }
    }
    B = std::min(B, kMaxBlock);
    const bool use_blocks = B >= kMinRun;
    const int64_t nblocks = (T + B - 1) / B;
    auto ref = [&](int64_t j) { return RowRef{cur.data() + tri_offset(j), tri_words(j), fw[j], lz[j]}; };
    parallel_for_dynamic(0, nblocks, 1, [&](int64_t c) {
      const int64_t b0 = c * B, b1 = std::min(T, b0 + B);
      // P[r] = OR of R(b0 .. b0 + r) (prefix inside block c), S[r] = OR of R(p0 + r .. b0 - 1) (suffix
      // inside block c - 1, p0 = b0 - B). Stored with the row width of their last (widest) row.
      thread_local std::vector<uint64_t> pbuf, sbuf;
      thread_local std::vector<int64_t> pmeta, smeta;  // fw, lz pairs
      const int64_t pw = tri_words(b1 - 1), sw = c > 0 ? tri_words(b0 - 1) : 0;
      bool have_p = false, have_s = false;
      auto build_p = [&] {
        pbuf.resize(static_cast<size_t>(B) * pw);
        pmeta.resize(2 * B);
        for (int64_t q = b0; q < b1; ++q) {
          uint64_t* out = pbuf.data() + (q - b0) * pw;
          const int64_t nw = tri_words(q);
          RowRef src[2] = {ref(q), {}};
          int64_t ns = 1;
          if (q > b0) src[ns++] = RowRef{pbuf.data() + (q - 1 - b0) * pw, tri_words(q - 1), pmeta[2 * (q - 1 - b0)],
                                         pmeta[2 * (q - 1 - b0) + 1]};
          combine(out, nw, src, ns, pmeta[2 * (q - b0)], pmeta[2 * (q - b0) + 1]);
        }
        have_p = true;
      };
      auto build_s = [&] {
        const int64_t p0 = b0 - B;
        sbuf.resize(static_cast<size_t>(B) * sw);
        smeta.resize(2 * B);
        for (int64_t q = b0 - 1; q >= p0; --q) {
          uint64_t* out = sbuf.data() + (q - p0) * sw;
          RowRef src[2] = {ref(q), {}};
          int64_t ns = 1;
          if (q < b0 - 1) src[ns++] = RowRef{sbuf.data() + (q + 1 - p0) * sw, sw, smeta[2 * (q + 1 - p0)],
                                             smeta[2 * (q + 1 - p0) + 1]};
          combine(out, sw, src, ns, smeta[2 * (q - p0)], smeta[2 * (q - p0) + 1]);
        }
        have_s = true;
      };
      auto pref = [&](int64_t q) {
        return RowRef{pbuf.data() + (q - b0) * pw, tri_words(q), pmeta[2 * (q - b0)], pmeta[2 * (q - b0) + 1]};
      };
      auto sref = [&](int64_t q) {
        const int64_t p0 = b0 - B;
        return RowRef{sbuf.data() + (q - p0) * sw, sw, smeta[2 * (q - p0)], smeta[2 * (q - p0) + 1]};
      };
      thread_local std::vector<RowRef> src;
      for (int64_t i = b0; i < b1; ++i) {
        src.clear();
        src.push_back(ref(i));
        const int64_t e0 = cr.offsets[i], e1 = cr.offsets[i + 1];
        for (int64_t e = e0; e < e1;) {
          int64_t a = cr.preds[e];
          int64_t f = e + 1;
          while (f < e1 && cr.preds[f] == cr.preds[f - 1] + 1) ++f;
          const int64_t bb = cr.preds[f - 1];
          e = f;
          if (a < 0 || bb >= i) {  // defensive: rows from a callback may be unfiltered
            for (int64_t g = f - (bb - a + 1); g < f; ++g) {
              const int32_t j = cr.preds[g];
              if (j >= 0 && j < i) src.push_back(ref(j));
            }
            continue;
          }
          if (use_blocks && bb - a + 1 >= kMinRun) {
            // Part of the run before block c - 1 goes row by row; the rest lies in blocks c - 1 .. c.
            const int64_t lo = std::max<int64_t>(0, b0 - B);
            for (; a < std::min(bb + 1, lo); ++a) src.push_back(ref(a));
            if (a > bb) continue;
            const int64_t qa = a / B, qb = bb / B;
            if (qa == c - 1 && qb == c) {
              if (!have_s) build_s();
              if (!have_p) build_p();
              src.push_back(sref(a));
              src.push_back(pref(bb));
              continue;
            }
            if (qa == c && a == b0) {
              if (!have_p) build_p();
              src.push_back(pref(bb));
              continue;
            }
            if (qa == c - 1 && qb == c - 1 && bb == b0 - 1) {
              if (!have_s) build_s();
              src.push_back(sref(a));
              continue;
            }
          }
          for (int64_t j = a; j <= bb; ++j) src.push_back(ref(j));
        }
        uint64_t* out = nxt.data() + tri_offset(i);
        const int64_t nw = tri_words(i);
        combine(out, nw, src, static_cast<int64_t>(src.size()), nfw[i], nlz[i]);
        int64_t pop = 64 * nfw[i];
        for (int64_t w = std::max(nfw[i], nlz[i]); w < nw; ++w) pop += std::popcount(out[w]);
        cov[i] = i == 0 ? 1.0 : static_cast<double>(pop - 1) / static_cast<double>(i);
      }
    });
    cur.swap(nxt);
    fw.swap(nfw);
    lz.swap(nlz);
    double mean = 0, mn = 1.0;
    int64_t seeing = 0, full = 0;
    for (int64_t i = 1; i < T; ++i) {
      mean += cov[i];
      mn = std::min(mn, cov[i]);
      seeing += cov[i] >= opt.position_threshold;
      full += cov[i] >= 1.0;
    }
    const int64_t npos = T - 1;
    r.mean_coverage.push_back(npos ? mean / npos : 1.0);
    r.min_coverage.push_back(npos ? mn : 1.0);
    const double frac = npos ? static_cast<double>(seeing) / npos : 1.0;
    r.fraction_seeing.push_back(frac);
    if (r.layers_to_p95 < 0 && frac >= opt.fraction_threshold) r.layers_to_p95 = l + 1;
    if (r.layers_to_full < 0 && full == npos) r.layers_to_full = l + 1;
  }
  return r;
}

Expected<Reachability> causal_reachability(const std::vector<graph::GraphAbi>& layers, const ReachabilityOptions& opt) {
  if (layers.empty()) return invalid_argument("analysis: reachability with 0 layer graphs, expected >= 1");
  const int64_t T = layers[0].T;
  std::vector<CausalRows> rows(layers.size());
  for (size_t l = 0; l < layers.size(); ++l) {
    if (layers[l].T != T)
      return invalid_argument("analysis: layer graph " + std::to_string(l) + " has T=" + std::to_string(layers[l].T) +
                              ", expected T=" + std::to_string(T));
    auto r = causal_rows_from_abi(layers[l]);
    if (!r) return r.status();
    rows[l] = std::move(r).value();
  }
  return causal_reachability(
      T, [&](int64_t l) -> Expected<CausalRows> { return rows[l % rows.size()]; }, opt);
}

Expected<CausalDiameter> causal_diameter(const CausalRows& rows, int64_t num_sources, uint64_t seed) {
  if (num_sources < 1)
    return invalid_argument("analysis: num_sources=" + std::to_string(num_sources) + ", expected >= 1");
  const int64_t T = rows.T;
  CausalDiameter d;
  if (T <= 1) return d;
  // Successor CSR: j -> i for every j in preds(i).
  std::vector<int64_t> off(T + 1, 0);
  for (int64_t i = 0; i < T; ++i)
    for (int64_t e = rows.offsets[i]; e < rows.offsets[i + 1]; ++e) ++off[rows.preds[e] + 1];
  for (int64_t i = 0; i < T; ++i) off[i + 1] += off[i];
  std::vector<int32_t> succ(off[T]);
  std::vector<int64_t> pos(off.begin(), off.end() - 1);
  for (int64_t i = 0; i < T; ++i)
    for (int64_t e = rows.offsets[i]; e < rows.offsets[i + 1]; ++e) succ[pos[rows.preds[e]]++] = static_cast<int32_t>(i);
  std::vector<int64_t> src(T - 1);
  std::iota(src.begin(), src.end(), 0);
  Rng rng(mix_seed(seed, 0xca05));
  rng.shuffle(src);
  src.resize(std::min<int64_t>(num_sources, T - 1));
  const int64_t ns = static_cast<int64_t>(src.size());
  std::vector<std::vector<int64_t>> hist(ns);
  std::vector<int64_t> unreached(ns, 0), pairs(ns, 0);
  parallel_for_dynamic(0, ns, 1, [&](int64_t k) {
    std::vector<int32_t> dist(T, -1), queue(T);
    int64_t head = 0, tail = 0;
    queue[tail++] = static_cast<int32_t>(src[k]);
    dist[src[k]] = 0;
    while (head < tail) {
      const int32_t u = queue[head++];
      for (int64_t e = off[u]; e < off[u + 1]; ++e)
        if (dist[succ[e]] < 0) { dist[succ[e]] = dist[u] + 1; queue[tail++] = succ[e]; }
    }
    auto& h = hist[k];
    for (int64_t i = src[k] + 1; i < T; ++i) {
      ++pairs[k];
      if (dist[i] < 0) { ++unreached[k]; continue; }
      if (static_cast<int64_t>(h.size()) <= dist[i]) h.resize(dist[i] + 1, 0);
      ++h[dist[i]];
    }
  });
  std::vector<int64_t> total;
  int64_t npairs = 0, nun = 0;
  for (int64_t k = 0; k < ns; ++k) {
    if (total.size() < hist[k].size()) total.resize(hist[k].size(), 0);
    for (size_t x = 0; x < hist[k].size(); ++x) total[x] += hist[k][x];
    npairs += pairs[k];
    nun += unreached[k];
  }
  d.unreachable_fraction = npairs ? static_cast<double>(nun) / npairs : 0.0;
  const int64_t count = npairs - nun;
  if (count == 0) return d;
  double sum = 0;
  for (size_t x = 0; x < total.size(); ++x) {
    sum += double(x) * total[x];
    if (total[x]) d.max_distance = static_cast<int64_t>(x);
  }
  d.mean_distance = sum / count;
  auto quantile = [&](double q) {
    const int64_t rank = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(q * count)));
    int64_t acc = 0;
    for (size_t x = 0; x < total.size(); ++x) {
      acc += total[x];
      if (acc >= rank) return static_cast<double>(x);
    }
    return static_cast<double>(total.size() - 1);
  };
  d.median_distance = quantile(0.5);
  d.p90_distance = quantile(0.9);
  return d;
}

Expected<EdgeCoverage> edge_coverage(const graph::GraphAbi& g, bool causal_only, int64_t head) {
  EdgeCoverage c;
  c.causal_only = causal_only;
  c.total_pairs = g.T * (g.T - 1) / 2;
  if (!causal_only) {
    auto csr = csr_from_abi(g, head);
    if (!csr) return csr.status();
    c.covered = csr->num_edges();
  } else {
    if (head >= g.H)
      return invalid_argument("analysis: head=" + std::to_string(head) + ", expected head < H=" + std::to_string(g.H));
    if (static_cast<int64_t>(g.neigh_idx.size()) != g.H * g.T * g.D)
      return invalid_argument("analysis: neigh_idx has " + std::to_string(g.neigh_idx.size()) +
                              " entries, expected H*T*D=" + std::to_string(g.H * g.T * g.D));
    const int64_t h0 = head < 0 ? 0 : head, h1 = head < 0 ? g.H : head + 1;
    std::vector<int64_t> per_row(g.T, 0);
    std::vector<uint8_t> bad(g.T, 0);
    parallel_for(0, g.T, [&](int64_t i) {
      std::vector<int32_t> js;
      for (int64_t h = h0; h < h1; ++h) {
        const int32_t* r = g.row(h, i);
        for (int64_t d = 0; d < g.D && r[d] >= 0; ++d) {
          if (r[d] >= g.T) bad[i] = 1;
          else if (r[d] < i) js.push_back(r[d]);
        }
      }
      std::sort(js.begin(), js.end());
      per_row[i] = std::unique(js.begin(), js.end()) - js.begin();
    });
    for (int64_t i = 0; i < g.T; ++i) {
      if (bad[i]) return invalid_argument("analysis: row " + std::to_string(i) + " has an index >= T=" + std::to_string(g.T));
      c.covered += per_row[i];
    }
  }
  c.fraction = c.total_pairs > 0 ? static_cast<double>(c.covered) / c.total_pairs : 1.0;
  return c;
}

Expected<EdgeCoverage> edge_coverage(const std::vector<topo::Perm>& cycles, int64_t T, bool causal_only) {
  auto csr = csr_from_perms(cycles, T, 0);
  if (!csr) return csr.status();
  EdgeCoverage c;
  c.causal_only = causal_only;
  c.total_pairs = T * (T - 1) / 2;
  c.covered = csr->num_edges();  // the later endpoint's row lists every cycle edge: both modes agree
  c.fraction = c.total_pairs > 0 ? static_cast<double>(c.covered) / c.total_pairs : 1.0;
  return c;
}

}  // namespace bna::analysis
