// Backward of block-sparse attention: the query at position pos (block pos / Bs) attends every key of
// the listed key blocks of its block with j <= pos (and j < Tk). Keys are untyped: the forward's one
// WINDOW bias per score is part of its lse, so it is added to every score here, but it cancels in the
// softmax and its exact gradient (0) is what d_edge_bias gets.
// A layout with H = 1 serves every KV head.
#include <algorithm>

#include "attention/cpu/backward.hpp"
#include "attention/cpu/backward_core.hpp"
#include "bna/graph.hpp"

namespace bna::cpu {

void block_sparse_bwd(const GradProblem& gp, const topo::BlockSparseLayout& L) {
  const int64_t Tk = gp.fwd.Tk;
  const float shift =
      gp.fwd.edge_bias != nullptr ? gp.fwd.edge_bias[static_cast<int>(graph::EdgeType::kWindow)] : 0.0f;
  BNA_ASSERT(L.H == gp.fwd.Hkv || L.H == 1);
  BNA_ASSERT(L.block_size >= 1 && L.n_blocks >= 1);
  bwd_detail::backward_rows(gp, [&L, Tk, shift](int64_t hkv, int64_t pos, bwd_detail::RowSegments& rs) {
    const int64_t h = L.H == 1 ? 0 : hkv;
    const int64_t bs = L.block_size;
    const int64_t qb = std::min(pos / bs, L.n_blocks - 1);
    const int64_t last = std::min(pos, Tk - 1);
    for (const int32_t* kb = L.row_begin(h, qb); kb != L.row_end(h, qb); ++kb) {
      const int64_t j0 = int64_t{*kb} * bs;
      const int64_t j1 = std::min(j0 + bs - 1, last);
      for (int64_t j = j0; j <= j1; ++j) rs.add(static_cast<int32_t>(j), 0, shift);
    }
    rs.close_segment(1.0f);
  });
}

}  // namespace bna::cpu
