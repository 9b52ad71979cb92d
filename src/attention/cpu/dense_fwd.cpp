// Dense causal forward: query tiles of kBq rows against contiguous key chunks of kBk keys, online
// softmax. Causality is only evaluated on chunks that cross the tile's first query position; chunks
// wholly in the past need no mask. Parallel over (query head, query tile), dynamic schedule because
// later tiles have more keys.
#include "attention/cpu/kernels.hpp"
#include "attention/cpu/tile.hpp"
#include "bna/threads.hpp"

namespace bna::cpu {

void dense_fwd(const Problem& p, const FwdScratch& ws) {
  const int64_t G = p.Hq / p.Hkv;
  const int64_t ntiles = (p.Tq + kBq - 1) / kBq;
  const float cbias = p.edge_bias ? p.edge_bias[static_cast<int>(graph::EdgeType::kWindow)] : 0.0f;
  const bool has_bias = p.edge_bias != nullptr;
  // Reverse tile order inside each head so the longest tiles start first under dynamic scheduling.
  parallel_for_dynamic(0, p.Hq * ntiles, 1, [&](int64_t item) {
    const int64_t hq = item / ntiles, t = ntiles - 1 - item % ntiles;
    const int64_t hk = hq / G;
    TileAttn ta(ws.base + ws.per_thread * omp_get_thread_num(), p.dh, p.scale);
    const int64_t i0 = t * kBq;
    const int nq = static_cast<int>(p.Tq - i0 < kBq ? p.Tq - i0 : kBq);
    const float* q[kBq];
    int64_t pos[kBq];
    float* o[kBq];
    float* lse[kBq];
    for (int r = 0; r < nq; ++r) {
      q[r] = p.q + (hq * p.Tq + i0 + r) * p.dh;
      o[r] = p.o + (hq * p.Tq + i0 + r) * p.dh;
      lse[r] = p.lse + hq * p.Tq + i0 + r;
      pos[r] = p.q_offset + i0 + r;
    }
    ta.begin(nq, q, pos);
    const int64_t pmin = p.q_offset + i0, pmax = p.q_offset + i0 + nq - 1;
    const int64_t nk = (pmax + 1 < p.Tk ? pmax + 1 : p.Tk);
    const float* K = p.k + hk * p.Tk * p.dh;
    const float* V = p.v + hk * p.Tk * p.dh;
    ta.key_range(K, V, 0, 1, nk, [&](int64_t j0, int n, float* S, int ld) {
      if (has_bias)
        for (int r = 0; r < nq; ++r)
          for (int j = 0; j < n; ++j) S[r * ld + j] += cbias;
      if (j0 + n - 1 <= pmin) return;
      for (int r = 0; r < nq; ++r)
        for (int j = 0; j < n; ++j)
          if (j0 + j > pos[r]) S[r * ld + j] = kNegInf;
    });
    ta.finish(o, lse);
  });
}

}  // namespace bna::cpu
