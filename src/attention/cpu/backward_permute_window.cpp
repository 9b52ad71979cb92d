// Backward of permute-window attention. For cycle c of the KV head, the query at position pos has
// rank r = inv[pos] and candidates perm[r+o], o in [-w, w] (ranks wrap mod T when circular, else
// out-of-range ranks are dropped); a candidate j is allowed iff j <= pos (original order) and j < Tk.
// As in the forward, a circular band with 2w+1 >= T covers every rank once (no double count): it is
// the linear band with w = T-1.
// Edge types: rank offsets +-1 are CYCLE, every other offset (self included) is WINDOW.
// Several cycles:
//  * kUnionLogMultiplicity: one softmax over every (cycle, offset) candidate. Each copy of a key is
//    its own entry, which is exactly "score + log(multiplicity)" over the deduplicated union.
//  * kAverage: out = mean over cycles of each cycle's own softmax output. The forward's single lse
//    cannot recover C softmaxes, so each cycle's LSE is recomputed here (see docs/backward.md).
// A PermsOnly with H = 1 serves every KV head.
#include "attention/cpu/backward.hpp"
#include "attention/cpu/backward_core.hpp"
#include "bna/graph.hpp"

namespace bna::cpu {

void permute_window_bwd(const GradProblem& gp, const topo::PermsOnly& P, int64_t w, attn::MultiCycleMode mode,
                        bool circular) {
  const int64_t Tk = gp.fwd.Tk;
  BNA_ASSERT(P.H == gp.fwd.Hkv || P.H == 1);
  BNA_ASSERT(P.num_cycles >= 1 && w >= 0);
  BNA_ASSERT(gp.fwd.q_offset + gp.fwd.Tq <= P.T);
  const int64_t C = P.num_cycles, T = P.T;
  if (circular && 2 * w + 1 >= T) circular = false, w = T - 1;
  // One cycle: both modes are one softmax, which reuses the forward's lse.
  const bool average = mode == attn::MultiCycleMode::kAverage && C > 1;
  const float seg_weight = 1.0f / static_cast<float>(C);
  constexpr auto kCycle = static_cast<uint8_t>(graph::EdgeType::kCycle);
  constexpr auto kWindow = static_cast<uint8_t>(graph::EdgeType::kWindow);
  bwd_detail::backward_rows(gp, [&, Tk](int64_t hkv, int64_t pos, bwd_detail::RowSegments& rs) {
    const int64_t h = P.H == 1 ? 0 : hkv;
    for (int64_t c = 0; c < C; ++c) {
      const int32_t* perm = P.perm_of(h, c);
      const int64_t r = P.inv_of(h, c)[pos];
      for (int64_t o = -w; o <= w; ++o) {
        int64_t rr = r + o;
        if (circular) {
          rr %= T;
          if (rr < 0) rr += T;
        } else if (rr < 0 || rr >= T) {
          continue;
        }
        const int32_t j = perm[rr];
        if (j <= pos && j < Tk) rs.add(j, (o == 1 || o == -1) ? kCycle : kWindow);
      }
      if (average) rs.close_segment(seg_weight);
    }
    if (!average) rs.close_segment(1.0f);
  });
}

}  // namespace bna::cpu
