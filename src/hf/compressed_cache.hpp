// The two-pool KV cache of one compressed-butterfly layer of the HF model, and attention over it.
//
// Decisions a reader must know:
// * Rule (the runtime's Path::kCompressed, docs/numerics.md): query at position pos attends raw keys
//   [c, pos], c = max(0, pos - L + 1), then the means of the blocks j of its routing row (pos / Bs)
//   with (j + 1) * Bs <= c, in row order, as ONE f32 softmax with the max taken first. Each row
//   depends only on pos and K/V[0..pos], so one-shot prefill, chunked prefill and decode agree.
// * Pools, per KV head: a raw ring of R = max(L, Bs) rows (token j in slot j mod R) and the block
//   means of K and V [Hkv, n_summaries, dh], n_summaries = max(0, capacity - L) / Bs: the last block a
//   query of a cache of that capacity can use. After a call with Tk tokens, later queries need raw
//   rows >= Tk - L + 1 (the tail) and >= floor(Tk / Bs) * Bs (the partial block, for its mean): both
//   are suffixes of at most max(L, Bs) - 1 rows, so the ring always holds them. During a call the
//   chunk's own rows are read from the chunk's K/V (never from a [T, ...] buffer).
// * Order within a call: summarise the blocks the chunk completes (their older rows are still in the
//   ring), attend, then write the chunk's last rows into the ring.
// * The math is the runtime's to the bit: block means are f32 sums in token order times 1.0f / Bs,
//   and the score / softmax loop uses the same dot and axpy as src/attention/cpu/compressed.cpp, so
//   the model's logits equal those of the full-K/V reference mode (tested).
#pragma once

#include <cstdint>
#include <vector>

#include "bna/block_layout.hpp"
#include "bna/hf.hpp"
#include "bna/status.hpp"

namespace bna::hf::detail {

struct CompressedPools {
  int64_t Hkv = 0, dh = 0, L = 0, Bs = 0;
  int64_t R = 0;              // ring rows per KV head
  int64_t n_summaries = 0;    // summary slots per KV head
  std::vector<float> ring_k, ring_v;  // [Hkv, R, dh]
  std::vector<float> sum_k, sum_v;    // [Hkv, n_summaries, dh]
  size_t bytes() const { return (ring_k.size() + ring_v.size() + sum_k.size() + sum_v.size()) * sizeof(float); }
};

// The routing of the compressed layer with ordinal `ordinal` among the model's compressed layers: the
// butterfly block layout over `capacity` tokens, H = 1 (shared by every KV head). Errors: those of
// topo::butterfly_block_layout (named).
Expected<topo::BlockSparseLayout> compressed_routing(const CompressedOptions& o, int64_t capacity, int64_t ordinal);
size_t routing_bytes(const topo::BlockSparseLayout& r);

// Empty pools for a cache of `capacity` tokens (>= 1). o.tail, o.block >= 1 (checked by the caller).
CompressedPools make_pools(int64_t Hkv, int64_t dh, int64_t capacity, const CompressedOptions& o);

// Fills empty pools from a full cache k, v [Hkv, cap, dh] holding tokens [0, pos) (set_attention
// mid-sequence): the means of the complete blocks and the last raw rows.
void pools_from_full(CompressedPools& P, const float* k, const float* v, int64_t cap, int64_t pos);

// One layer's compressed attention for the n new tokens at positions p0 .. p0 + n - 1, whose K/V are
// k, v [n, Hkv, dh] (the projection layout); the pools hold tokens [0, p0). q, o [Hq, n, dh] with
// G = Hq / Hkv query heads per KV head; scale as the runtime's. Updates the pools to hold [0, p0 + n).
// Errors: a query block beyond the routing layout (a capacity mismatch; named).
Status compressed_attend(CompressedPools& P, const topo::BlockSparseLayout& routing, const float* q, const float* k,
                         const float* v, int64_t p0, int64_t n, int64_t G, float scale, float* o);

}  // namespace bna::hf::detail
