// CPU attention backward kernels (internal), one batch element at a time, f32 contiguous, layouts as in
// kernels.hpp. Each kernel overwrites dq/dk/dv (and d_edge_bias when non-null) of the GradProblem and
// uses the forward's o and lse as inputs (an lse of -inf marks an empty row: its dq is 0).
// Implemented in src/attention/cpu/backward_*.cpp; dispatched from src/attention/run_backward.cpp.
#pragma once

#include <cstdint>

#include "attention/cpu/kernels.hpp"

namespace bna::cpu {

void dense_bwd(const GradProblem&);
void gather_bwd(const GradProblem&, const graph::GraphAbi&);
void streams_bwd(const GradProblem&, const StreamsGraph&);
void permute_window_bwd(const GradProblem&, const topo::PermsOnly&, int64_t w, attn::MultiCycleMode, bool circular);
void block_sparse_bwd(const GradProblem&, const topo::BlockSparseLayout&);

}  // namespace bna::cpu
