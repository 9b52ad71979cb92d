// Work tiles of the QTile forward kernels (dense_fwd, streams_fwd), with GQA packing for small Tq.
// Unpacked (Problem::gqa_pack = 1): one tile = kQt consecutive queries of ONE query head, so a decode
// step (Tq = 1) fills 1 of 16 lanes and each K/V row is read G = Hq / Hkv times. Packed
// (gqa_pack = Gp > 1): one tile = the Tq queries of Gp query heads of one KV head, lane r = t * gp + g
// (query t, head g of the pack; gp = Gp or fewer in the last pack), so the KV head's K/V rows are read
// once per pack and the 16-lane groups are full. Decisions a reader must know:
//  * Bit-identical to the unpacked tiles, which the tests require: every QTile lane computes alone
//    (scores, online softmax and PV are per lane; a key masked to -inf adds exact zeros), so only
//    the sequence of key chunks each query sees matters. Dense and the streams landmarks chunk from
//    key 0 in steps of kKc whatever the tile; the streams band chunks from max(0, first - W) of the
//    query's 16-query group, so a packed tile keeps the unpacked grouping: TileGroup u holds queries
//    [16u, 16u + 16) of every head in the pack (lanes [16u * gp, (16u + 16) * gp), a multiple of 16)
//    with the same first/last positions as the unpacked group.
//  * The planner picks Gp (gqa_pack_heads) and names it in Plan::reason; several packs per KV head
//    only when too few (KV head, pack) items would leave threads idle (Hkv = 1 per call in the HF
//    decoder). Results never depend on Gp or the thread count.
#pragma once

#include <algorithm>
#include <cstdint>

#include "attention/cpu/kernels.hpp"
#include "attention/cpu/micro_tile.hpp"
#include "bna/threads.hpp"

namespace bna::cpu {

// Query heads per packed tile for a forward of (Hq, Hkv, Tq) on `threads` threads; 1 = unpacked.
// Packs only when G > 1 and Tq < kQt (decode and short chunks: an unpacked tile would be partly
// empty). Among pack sizes gp = ceil(G / packs), picks the one with the fewest rounds of 16-lane groups
// per thread, ceil(items / threads) * groups per item, the fewest packs on a tie.
inline int64_t gqa_pack_heads(int64_t Hq, int64_t Hkv, int64_t Tq, int threads) {
  const int64_t G = Hkv > 0 ? Hq / Hkv : 1;
  if (G <= 1 || Tq >= kQt || Tq < 1) return 1;
  const int64_t th = std::max(1, threads);
  auto rounds = [&](int64_t items, int64_t groups) { return (items + th - 1) / th * groups; };
  int64_t best_gp = 1, best = rounds(Hq, (Tq + 15) / 16);  // unpacked: Hq tiles of ceil(Tq/16) groups
  bool packed = false;
  for (int64_t packs = 1; packs <= G; ++packs) {
    const int64_t gp = (G + packs - 1) / packs;
    if (gp == 1) break;
    const int64_t lanes = gp * Tq, tiles = (lanes + kQt - 1) / kQt;
    const int64_t c = rounds(Hkv * ((G + gp - 1) / gp) * tiles, std::min<int64_t>(kQt / 16, (lanes + 15) / 16));
    // Packing wins ties against unpacked (it reads K/V fewer times); fewer packs win ties among packs.
    if (!packed ? c <= best : c < best) {
      best = c;
      best_gp = gp;
      packed = true;
    }
  }
  return best_gp;
}

// Runs fn(item) for every item of a tile loop: dynamic schedule, longest tiles first as numbered; a
// single item (a packed decode step of one KV head, as the HF decoder calls it) runs on the calling
// thread, since on a loaded machine waking a thread team that has nothing to do costs a scheduler tick.
template <class F>
void for_each_tile(int64_t items, F&& fn) {
  if (items == 1) {
    fn(0);
    return;
  }
  parallel_for_dynamic(0, items, 1, fn);
}

// Rows of a tile sharing one band key span: lanes [r0, r1) (r0 % 16 == 0), queries at positions
// first..last (the unpacked 16-query group they belong to).
struct TileGroup {
  int r0 = 0, r1 = 0;
  int64_t first = 0, last = 0;
};

struct WorkTile {
  QTileRows rows;  // nq = 0: nothing to do (a short last pack)
  int64_t hk = 0;
  int ngroups = 0;
  TileGroup group[kQt / 16];
};

// The item space of a forward over Problem p, longest tiles first within each (head, pack).
class TileWork {
 public:
  explicit TileWork(const Problem& p) : p_(p) {
    G_ = p.Hq / p.Hkv;
    gp_ = std::max<int64_t>(1, std::min(p.gqa_pack, G_));
    if (gp_ == 1) {
      packs_ = 1;
      tiles_ = (p.Tq + kQt - 1) / kQt;
      items_ = p.Hq * tiles_;
    } else {
      packs_ = (G_ + gp_ - 1) / gp_;
      tiles_ = (gp_ * p.Tq + kQt - 1) / kQt;
      items_ = p.Hkv * packs_ * tiles_;
    }
  }
  int64_t items() const { return items_; }
  bool packed() const { return gp_ > 1; }

  WorkTile tile(int64_t item) const {
    WorkTile w;
    const int64_t t = tiles_ - 1 - item % tiles_;
    if (gp_ == 1) {
      const int64_t hq = item / tiles_;
      w.hk = hq / G_;
      w.rows = qtile_rows(p_, hq, t);
      for (int r = 0; r < w.rows.nq; r += 16) {
        const int r1 = std::min(r + 16, w.rows.nq);
        w.group[w.ngroups++] = {r, r1, w.rows.pos[r], w.rows.pos[r1 - 1]};
      }
      return w;
    }
    w.hk = item / (packs_ * tiles_);
    const int64_t pack = (item / tiles_) % packs_;
    const int64_t h0 = w.hk * G_ + pack * gp_;                  // first query head of the pack
    const int64_t gp = std::min(gp_, G_ - pack * gp_);          // heads in this pack
    const int64_t lanes = gp * p_.Tq, l0 = t * kQt;
    const int nq = static_cast<int>(std::clamp<int64_t>(lanes - l0, 0, kQt));
    w.rows.nq = nq;
    for (int r = 0; r < nq; ++r) {
      const int64_t i = (l0 + r) / gp, hq = h0 + (l0 + r) % gp;
      w.rows.q[r] = p_.q + (hq * p_.Tq + i) * p_.dh;
      w.rows.o[r] = p_.o + (hq * p_.Tq + i) * p_.dh;
      w.rows.lse[r] = p_.lse != nullptr ? p_.lse + hq * p_.Tq + i : nullptr;  // lse may be absent (HF paged)
      w.rows.pos[r] = p_.q_offset + i;
    }
    for (int64_t u = 0; u * 16 < p_.Tq; ++u) {
      const int64_t i1 = std::min<int64_t>(u * 16 + 16, p_.Tq);
      const int64_t r0 = std::max<int64_t>(u * 16 * gp - l0, 0), r1 = std::min<int64_t>(i1 * gp - l0, nq);
      if (r0 >= r1) continue;
      w.group[w.ngroups++] = {static_cast<int>(r0), static_cast<int>(r1), p_.q_offset + u * 16, p_.q_offset + i1 - 1};
    }
    return w;
  }

 private:
  const Problem& p_;
  int64_t G_ = 1, gp_ = 1, packs_ = 1, tiles_ = 0, items_ = 0;
};

}  // namespace bna::cpu
