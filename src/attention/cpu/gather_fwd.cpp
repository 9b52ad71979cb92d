// Gather forward over any graph ABI: for each (KV head, query row) the neighbour list is read
// straight from neigh_idx (no [T, D, dh] gather), filtered by causality once, and attended by the
// G query heads of the group together, so every gathered K/V row serves G queries. Rows are
// multisets: a repeated index gets one softmax term per copy. With G < 4 the 4-row score tile would
// be mostly padding, so each query head runs the per-row form (attend_row in micro_tile.hpp: gathered
// dot products with K/V prefetch, one vector exp pass, then the weighted V sum).
#include "attention/cpu/kernels.hpp"
#include "attention/cpu/micro_tile.hpp"
#include "bna/threads.hpp"

namespace bna::cpu {

void gather_fwd(const Problem& p, const graph::GraphAbi& g, const FwdScratch& ws) {
  const int64_t G = p.Hq / p.Hkv;
  const int64_t D = g.D;
  parallel_for_dynamic(0, p.Hkv * p.Tq, 16, [&](int64_t item) {
    const int64_t hk = item / p.Tq, i = item % p.Tq;
    const int64_t pos = p.q_offset + i;
    TileAttn ta(ws.base + ws.per_thread * omp_get_thread_num(), p.dh, p.scale);
    int64_t* kpos = ta.extra_i64();
    uint8_t* ktype = reinterpret_cast<uint8_t*>(kpos + D);
    const int32_t* row = g.row(hk, pos);
    const uint8_t* types = g.row_types(hk, pos);
    int64_t nk = 0;
    for (int64_t c = 0; c < D; ++c) {
      const int32_t j = row[c];
      if (j < 0) break;
      if (j > pos) continue;
      kpos[nk] = j;
      ktype[nk] = types[c];
      ++nk;
    }
    const float* K = p.k + hk * p.Tk * p.dh;
    const float* V = p.v + hk * p.Tk * p.dh;
    if (G < 4) {
      float* kb = reinterpret_cast<float*>(kpos + D + (D + 7) / 8);
      if (p.edge_bias)
        for (int64_t e = 0; e < nk; ++e) kb[e] = p.edge_bias[ktype[e]];
      float* sbuf = kb + D;
      for (int64_t g0 = 0; g0 < G; ++g0) {
        const int64_t hq = hk * G + g0;
        attend_row(p.q + (hq * p.Tq + i) * p.dh, K, V, kpos, p.edge_bias ? kb : nullptr, nk, p.scale, p.dh, sbuf,
                   p.o + (hq * p.Tq + i) * p.dh, p.lse + hq * p.Tq + i);
      }
      return;
    }
    for (int64_t g0 = 0; g0 < G; g0 += kBq) {
      const int nq = static_cast<int>(G - g0 < kBq ? G - g0 : kBq);
      const float* q[kBq];
      int64_t qp[kBq];
      float* o[kBq];
      float* lse[kBq];
      for (int r = 0; r < nq; ++r) {
        const int64_t hq = hk * G + g0 + r;
        q[r] = p.q + (hq * p.Tq + i) * p.dh;
        o[r] = p.o + (hq * p.Tq + i) * p.dh;
        lse[r] = p.lse + hq * p.Tq + i;
        qp[r] = pos;
      }
      ta.begin(nq, q, qp);
      if (p.edge_bias) {
        ta.keys(K, V, kpos, nk, [&](int64_t j0, int n, float* S, int ld) {
          for (int r = 0; r < nq; ++r)
            for (int j = 0; j < n; ++j) S[r * ld + j] += p.edge_bias[ktype[j0 + j]];
        });
      } else {
        ta.keys(K, V, kpos, nk, [](int64_t, int, float*, int) {});
      }
      ta.finish(o, lse);
    }
  });
}

}  // namespace bna::cpu
