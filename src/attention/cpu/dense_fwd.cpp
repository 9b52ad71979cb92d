// Dense causal forward on the QTile engine (micro_tile.hpp): query tiles of kQt rows against
// contiguous key chunks of kKc keys. Chunks wholly in the past need no mask; the diagonal chunk runs
// per 16-query group clipped to the keys that group can see, so no score above the diagonal is
// computed beyond the 16-row granularity. Parallel over (query head, query tile), dynamic schedule,
// longest tiles first.
#include "attention/cpu/kernels.hpp"
#include "attention/cpu/micro_tile.hpp"
#include "bna/threads.hpp"

namespace bna::cpu {

void dense_fwd(const Problem& p, const FwdScratch& ws) {
  const int64_t G = p.Hq / p.Hkv;
  const int64_t ntiles = (p.Tq + kQt - 1) / kQt;
  const bool has_bias = p.edge_bias != nullptr;
  const float cbias = has_bias ? p.edge_bias[static_cast<int>(graph::EdgeType::kWindow)] : 0.0f;
  parallel_for_dynamic(0, p.Hq * ntiles, 1, [&](int64_t item) {
    const int64_t hq = item / ntiles, t = ntiles - 1 - item % ntiles;
    const int64_t hk = hq / G;
    QTile qt(ws.base + ws.per_thread * omp_get_thread_num(), p.dh, p.scale);
    QTileRows rows = qtile_rows(p, hq, t);
    const int nq = rows.nq;
    const int64_t* pos = rows.pos;
    qt.begin(nq, rows.q, pos);
    qtile_causal_range(qt, p.k + hk * p.Tk * p.dh, p.v + hk * p.Tk * p.dh, 0, p.Tk, has_bias, cbias);
    qt.finish(rows.o, rows.lse);
  });
}

}  // namespace bna::cpu
