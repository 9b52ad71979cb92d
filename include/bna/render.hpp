// Self-contained SVG pictures of attention masks: the token-level (query, key) mask of one head of a
// graph ABI, and the block mask of one head of a block-sparse layout. Ranges up to kRenderMaxCells
// per axis draw one cell per pair; longer ranges aggregate ceil(range / kRenderMaxCells) pairs per
// cell, coloured by the most frequent edge type in the cell with opacity rising with its density.
#pragma once

#include <cstdint>
#include <string>

#include "bna/block_layout.hpp"
#include "bna/graph.hpp"
#include "bna/status.hpp"

namespace bna::graph {

inline constexpr int64_t kRenderMaxCells = 1024;

// Mask of head `head` for queries [row_begin, row_end) and keys [col_begin, col_end): a cell per
// (query i, key j) with j in row i, coloured by edge type (legend with pair counts per type), axes
// labelled with token indices. causal = true drops pairs with j > i and greys that region (what
// attention actually uses); false draws every listed pair. Errors: head outside [0, H), a range
// not satisfying 0 <= begin < end <= T, or buffers whose size is not H*T*D.
Expected<std::string> render_mask_svg(const GraphAbi& g, int64_t head, int64_t row_begin, int64_t row_end,
                                      int64_t col_begin, int64_t col_end, bool causal);

// Block mask of head `head`: N x N cells (aggregated past kRenderMaxCells), query block rows, key
// block columns, self blocks and other attended blocks in two colours, non-causal region greyed.
// Errors: an invalid layout (validate_block_layout) or head outside [0, H).
Expected<std::string> render_block_layout_svg(const topo::BlockSparseLayout& L, int64_t head);

}  // namespace bna::graph
