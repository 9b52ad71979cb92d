// Dense causal forward on the QTile engine (micro_tile.hpp): query tiles of kQt rows against
// contiguous key chunks of kKc keys. Chunks wholly in the past need no mask; the diagonal chunk runs
// per 16-query group clipped to the keys that group can see, so no score above the diagonal is
// computed beyond the 16-row granularity. Parallel over (query head, query tile), dynamic schedule,
// longest tiles first. Small Tq (decode, short chunks): p.gqa_pack > 1 packs the query heads of a KV
// head into one tile (gqa_pack.hpp), parallel over (KV head, pack, tile); bit-identical results.
#include "attention/cpu/gqa_pack.hpp"
#include "attention/cpu/kernels.hpp"
#include "attention/cpu/micro_tile.hpp"
#include "bna/threads.hpp"

namespace bna::cpu {

void dense_fwd(const Problem& p, const FwdScratch& ws) {
  const TileWork work(p);
  const bool has_bias = p.edge_bias != nullptr;
  const float cbias = has_bias ? p.edge_bias[static_cast<int>(graph::EdgeType::kWindow)] : 0.0f;
  for_each_tile(work.items(), [&](int64_t item) {
    const WorkTile w = work.tile(item);
    const QTileRows& rows = w.rows;
    if (rows.nq == 0) return;
    const int64_t hk = w.hk;
    QTile qt(ws.base + ws.per_thread * omp_get_thread_num(), p.dh, p.scale);
    qt.begin(rows.nq, rows.q, rows.pos);
    qtile_causal_range(qt, p.k + hk * p.Tk * p.dh, p.v + hk * p.Tk * p.dh, 0, p.Tk, has_bias, cbias);
    qt.finish(rows.o, rows.lse);
  });
}

}  // namespace bna::cpu
