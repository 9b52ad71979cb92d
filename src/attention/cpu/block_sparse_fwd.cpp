// Block-sparse forward on the QTile engine: query block b of Bs tokens attends the key blocks of its
// BSR row, token causality (key <= query position) applied inside each block. A query block is
// processed as query tiles of up to kQt rows; each key block is a contiguous key range handled by
// qtile_causal_range (no mask off the diagonal, 16-row groups on it). Every key is typed WINDOW for
// edge bias (a block layout carries no edge types).
#include <algorithm>

#include "attention/cpu/kernels.hpp"
#include "attention/cpu/micro_tile.hpp"
#include "bna/threads.hpp"

namespace bna::cpu {

void block_sparse_fwd(const Problem& p, const topo::BlockSparseLayout& L, const FwdScratch& ws) {
  const int64_t G = p.Hq / p.Hkv;
  const int64_t Bs = L.block_size;
  const int64_t sub = (Bs + kQt - 1) / kQt;  // query tiles per block
  const int64_t qb0 = p.q_offset / Bs;
  const int64_t qb1 = (p.q_offset + p.Tq - 1) / Bs;
  const int64_t nitems_b = (qb1 - qb0 + 1) * sub;
  const bool has_bias = p.edge_bias != nullptr;
  const float cbias = has_bias ? p.edge_bias[static_cast<int>(graph::EdgeType::kWindow)] : 0.0f;
  parallel_for_dynamic(0, p.Hq * nitems_b, 1, [&](int64_t item) {
    const int64_t hq = item / nitems_b, rest = nitems_b - 1 - item % nitems_b;
    const int64_t hk = hq / G;
    const int64_t b = qb0 + rest / sub;
    // Query positions of this tile, clipped to the call's query range.
    const int64_t t0 = std::max(b * Bs + (rest % sub) * kQt, p.q_offset);
    const int64_t t1 = std::min({b * Bs + (rest % sub + 1) * kQt, (b + 1) * Bs, p.q_offset + p.Tq});
    if (t0 >= t1) return;
    QTile qt(ws.base + ws.per_thread * omp_get_thread_num(), p.dh, p.scale);
    const int nq = static_cast<int>(t1 - t0);
    const float* q[kQt];
    int64_t pos[kQt];
    float* o[kQt];
    float* lse[kQt];
    for (int r = 0; r < nq; ++r) {
      const int64_t i = t0 + r - p.q_offset;
      q[r] = p.q + (hq * p.Tq + i) * p.dh;
      o[r] = p.o + (hq * p.Tq + i) * p.dh;
      lse[r] = p.lse + hq * p.Tq + i;
      pos[r] = t0 + r;
    }
    qt.begin(nq, q, pos);
    const float* K = p.k + hk * p.Tk * p.dh;
    const float* V = p.v + hk * p.Tk * p.dh;
    for (const int32_t* kb = L.row_begin(hk, b); kb != L.row_end(hk, b); ++kb) {
      const int64_t k0 = static_cast<int64_t>(*kb) * Bs;
      if (k0 > pos[nq - 1]) continue;  // wholly in the future of every row
      qtile_causal_range(qt, K, V, k0, std::min(k0 + Bs, p.Tk), has_bias, cbias);
    }
    qt.finish(o, lse);
  });
}

}  // namespace bna::cpu
