// Backward of gather attention over an explicit ABI graph: the row of query position pos is row pos
// of the graph's KV head, every entry idx >= 0 with idx <= pos (and idx < Tk) attended with its edge
// type. A repeated index counts once per copy (rows are multisets in the kernels, sets in valid ABIs).
// A graph with H = 1 serves every KV head.
#include "attention/cpu/backward.hpp"
#include "attention/cpu/backward_core.hpp"

namespace bna::cpu {

void gather_bwd(const GradProblem& gp, const graph::GraphAbi& g) {
  const int64_t Tk = gp.fwd.Tk;
  BNA_ASSERT(g.H == gp.fwd.Hkv || g.H == 1);
  BNA_ASSERT(gp.fwd.q_offset + gp.fwd.Tq <= g.T);
  bwd_detail::backward_rows(gp, [&g, Tk](int64_t hkv, int64_t pos, bwd_detail::RowSegments& rs) {
    const int64_t h = g.H == 1 ? 0 : hkv;
    const int32_t* idx = g.row(h, pos);
    const uint8_t* ty = g.row_types(h, pos);
    for (int64_t c = 0; c < g.D; ++c) {
      const int32_t j = idx[c];
      if (j < 0) break;  // pads only at the end of a row
      if (j <= pos && j < Tk) rs.add(j, ty[c]);
    }
    rs.close_segment(1.0f);
  });
}

}  // namespace bna::cpu
