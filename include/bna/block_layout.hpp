// Block-sparse row layout (BSR) consumed by block-sparse attention.
// Query block b (tokens [b*Bs, min((b+1)*Bs, T))) attends key blocks indices[indptr[b] .. indptr[b+1])
// of head h; token-level causality (key <= query) is applied by attention. Indices within a row are
// ascending and unique. One layout per KV head (H rows of indptr), shared by each GQA group.
#pragma once

#include <cstdint>
#include <vector>

#include "bna/status.hpp"

namespace bna::topo {

struct BlockSparseLayout {
  int64_t H = 1;           // KV heads
  int64_t T = 0;           // tokens
  int64_t block_size = 0;  // Bs
  int64_t n_blocks = 0;    // N = ceil(T / Bs)
  std::vector<int32_t> indptr;   // [H, N + 1], offsets into indices (per head, starting at 0)
  std::vector<int32_t> indices;  // per head concatenated; head h's offsets are relative to head_base[h]
  std::vector<int64_t> head_base;  // [H], start of head h in indices

  const int32_t* row_begin(int64_t h, int64_t b) const {
    return indices.data() + head_base[h] + indptr[h * (n_blocks + 1) + b];
  }
  const int32_t* row_end(int64_t h, int64_t b) const {
    return indices.data() + head_base[h] + indptr[h * (n_blocks + 1) + b + 1];
  }
};

// Checks shapes, ascending unique in-range indices. Errors name head, block and position.
Status validate_block_layout(const BlockSparseLayout& L);

}  // namespace bna::topo
