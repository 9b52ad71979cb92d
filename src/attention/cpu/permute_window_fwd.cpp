// Permute-window forward: the band of +-w ranks around each query in a cycle's order, causality on
// original positions (perm[rank_k] <= perm[rank_q]). No permuted copies of Q/K/V exist: a query tile
// is kQt consecutive ranks (QTile, micro_tile.hpp; lanes carry position and rank for the masks), run
// per 16-rank group over its key ranks [first - w, last + w]; queries and keys are read through perm
// and outputs stored through perm. Prefill (Tq == Tk) uses those rank tiles; rectangular calls (Tq < Tk) and the
// multi-cycle union mode build one key list per (KV head, query row), shared by the G query heads.
// Circular mode wraps ranks mod T; a circular band wider than T covers every rank once (the
// upstream double count, reference §20.16, is not reproduced), i.e. it equals the full causal prefix.
#include <algorithm>
#include <climits>
#include <cmath>

#include "attention/cpu/kernels.hpp"
#include "attention/cpu/micro_tile.hpp"
#include "bna/threads.hpp"

namespace bna::cpu {
namespace {

constexpr uint8_t kCycleT = static_cast<uint8_t>(graph::EdgeType::kCycle);
constexpr uint8_t kWindowT = static_cast<uint8_t>(graph::EdgeType::kWindow);

// Writes row r of the finished tile into o/lse (first cycle) or adds it (o += o_c,
// lse = logaddexp(lse, lse_c)) for the average mode.
void emit_row(const TileAttn& ta, int r, int64_t dh, float* o, float* lse, bool first) {
  const float l = ta.l(r);
  const float* a = ta.acc(r);
  const float inv = l > 0.0f ? 1.0f / l : 0.0f;
  const float lc = l > 0.0f ? ta.m(r) + std::log(l) : kNegInf;
  if (first) {
    for (int64_t d = 0; d < dh; ++d) o[d] = a[d] * inv;
    *lse = lc;
    return;
  }
  for (int64_t d = 0; d < dh; ++d) o[d] += a[d] * inv;
  const float mx = std::max(*lse, lc);
  if (mx != kNegInf) *lse = mx + std::log(std::exp(*lse - mx) + std::exp(lc - mx));
}

}  // namespace

void permute_window_fwd(const Problem& p, const topo::PermsOnly& perms, int64_t w, attn::MultiCycleMode mode,
                        bool circular, const FwdScratch& ws) {
  const int64_t G = p.Hq / p.Hkv;
  const int64_t T = perms.T;
  const int64_t ncyc = perms.num_cycles;
  if (circular && 2 * w + 1 >= T) circular = false, w = T - 1;
  w = std::min<int64_t>(w, T - 1);
  const float* bias = p.edge_bias;
  const bool average = mode == attn::MultiCycleMode::kAverage || ncyc == 1;
  auto wrap = [&](int64_t raw) { return circular ? ((raw % T) + T) % T : raw; };
  auto in_range = [&](int64_t raw) { return circular || (raw >= 0 && raw < T); };

  if (average && p.Tq == T && p.q_offset == 0) {
    const int64_t ntiles = (T + kQt - 1) / kQt;
    for (int64_t c = 0; c < ncyc; ++c) {
      parallel_for_dynamic(0, p.Hq * ntiles, 1, [&](int64_t item) {
        const int64_t hq = item / ntiles, t = item % ntiles;
        const int64_t hk = hq / G;
        const int32_t* perm = perms.perm_of(hk, c);
        QTile qt(ws.base + ws.per_thread * omp_get_thread_num(), p.dh, p.scale);
        const int64_t s0 = t * kQt;
        const int nq = static_cast<int>(T - s0 < kQt ? T - s0 : kQt);
        const float* q[kQt];
        int64_t pos[kQt], rank[kQt];
        float* o[kQt];
        float* lse[kQt];
        for (int r = 0; r < nq; ++r) {
          pos[r] = perm[s0 + r];
          rank[r] = s0 + r;
          q[r] = p.q + (hq * p.Tq + pos[r]) * p.dh;
          o[r] = p.o + (hq * p.Tq + pos[r]) * p.dh;
          lse[r] = p.lse + hq * p.Tq + pos[r];
        }
        qt.begin(nq, q, pos, rank);
        const float* K = p.k + hk * p.Tk * p.dh;
        const float* V = p.v + hk * p.Tk * p.dh;
        int64_t* kpos = qt.extra_i64();
        // Per 16-rank group: key raw ranks [klo, khi] (linear mode clips them to [0, T)).
        for (int gr = 0; gr < nq; gr += 16) {
          const int64_t glast = s0 + (gr + 15 < nq ? gr + 15 : nq - 1);
          int64_t klo = s0 + gr - w, khi = glast + w;
          if (!circular) klo = std::max<int64_t>(klo, 0), khi = std::min<int64_t>(khi, T - 1);
          const int64_t nk = khi - klo + 1;
          for (int64_t j = 0; j < nk; ++j) kpos[j] = perm[wrap(klo + j)];
          qt.key_list(K, V, kpos, nk, gr, gr + 16, [&](QScores& sc, int64_t j0) {
            for (int j = 0; j < sc.n; ++j) {
              const int32_t kr = static_cast<int32_t>(klo + j0 + j);
              if (bias) {
                sc.add(j, bias[kWindowT]);
                sc.add_diff(j, kr, -1, 1, bias[kCycleT] - bias[kWindowT], true);
                sc.add_diff(j, kr, 0, 0, bias[kWindowT] - bias[kCycleT], true);
              }
              if (kr < glast - w || kr > s0 + gr + w) sc.keep_diff(j, kr, static_cast<int32_t>(-w), static_cast<int32_t>(w), true);
              sc.keep_diff(j, static_cast<int32_t>(kpos[j0 + j]), 0, INT_MAX);
            }
          });
        }
        qt.finish(o, lse, c > 0);
      });
    }
  } else {
    parallel_for_dynamic(0, p.Hkv * p.Tq, 8, [&](int64_t item) {
      const int64_t hk = item / p.Tq, i = item % p.Tq;
      const int64_t pos = p.q_offset + i;
      TileAttn ta(ws.base + ws.per_thread * omp_get_thread_num(), p.dh, p.scale);
      int64_t* kpos = ta.extra_i64();
      const int64_t max_keys = (average ? 1 : ncyc) * (2 * w + 1);
      float* kb = reinterpret_cast<float*>(kpos + max_keys);
      const float* K = p.k + hk * p.Tk * p.dh;
      const float* V = p.v + hk * p.Tk * p.dh;
      const int64_t passes = average ? ncyc : 1;
      for (int64_t pass = 0; pass < passes; ++pass) {
        int64_t nk = 0;
        const int64_t c_begin = average ? pass : 0, c_end = average ? pass + 1 : ncyc;
        for (int64_t c = c_begin; c < c_end; ++c) {
          const int32_t* perm = perms.perm_of(hk, c);
          const int64_t rq = perms.inv_of(hk, c)[pos];
          for (int64_t off = -w; off <= w; ++off) {
            if (!in_range(rq + off)) continue;
            const int64_t kj = perm[wrap(rq + off)];
            if (kj > pos) continue;
            kpos[nk] = kj;
            kb[nk] = bias ? ((off == 1 || off == -1) ? bias[kCycleT] : bias[kWindowT]) : 0.0f;
            ++nk;
          }
        }
        for (int64_t g0 = 0; g0 < G; g0 += kBq) {
          const int nq = static_cast<int>(G - g0 < kBq ? G - g0 : kBq);
          const float* q[kBq];
          int64_t qp[kBq];
          for (int r = 0; r < nq; ++r) {
            q[r] = p.q + ((hk * G + g0 + r) * p.Tq + i) * p.dh;
            qp[r] = pos;
          }
          ta.begin(nq, q, qp);
          ta.keys(K, V, kpos, nk, [&](int64_t j0, int n, float* S, int ld) {
            if (!bias) return;
            for (int r = 0; r < nq; ++r)
              for (int j = 0; j < n; ++j) S[r * ld + j] += kb[j0 + j];
          });
          for (int r = 0; r < nq; ++r) {
            const int64_t hq = hk * G + g0 + r;
            emit_row(ta, r, p.dh, p.o + (hq * p.Tq + i) * p.dh, p.lse + hq * p.Tq + i, pass == 0);
          }
        }
      }
    });
  }
  if (average && ncyc > 1) {
    const float inv = 1.0f / static_cast<float>(ncyc);
    const float logn = std::log(static_cast<float>(ncyc));
    parallel_for(0, p.Hq * p.Tq, [&](int64_t row) {
      float* o = p.o + row * p.dh;
      for (int64_t d = 0; d < p.dh; ++d) o[d] *= inv;
      if (p.lse[row] != kNegInf) p.lse[row] -= logn;
    });
  }
}

}  // namespace bna::cpu
