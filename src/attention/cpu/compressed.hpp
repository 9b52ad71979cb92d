// Compressed butterfly attention (CPU): exact attention over the last `tail` raw tokens plus
// mean-pooled summaries of routed earlier blocks, as one softmax.
// Decision (fixes reference §8.1/§20.6): ONE cutoff rule for prefill, chunked prefill and decode.
// Query at absolute position pos has window start c = max(0, pos - tail + 1) and attends
//   raw keys        [c, pos]
//   summary blocks  j in routing row (kv head, pos / Bs) with (j+1)*Bs <= c   (so j < pos / Bs)
// Both depend only on pos and K/V[0..pos], so results do not depend on how a prompt is chunked.
// The streams are disjoint (a summarised block ends at or before c).
// Layouts (f32, contiguous): q/o [Hq, Tq, dh], k/v [Hkv, Tk, dh], lse [Hq, Tq]; see kernels.hpp.
// Summaries [n_blocks, Hkv, dh] are written by one function (summarise_blocks) whether they live in a
// caller's CompressedSummaries cache or in the plan's workspace, so both give bit-identical results.
#pragma once

#include <cstdint>
#include <vector>

#include "attention/cpu/kernels.hpp"
#include "bna/block_layout.hpp"
#include "bna/status.hpp"

namespace bna::cpu {

// Block means of K and V over complete blocks only (a block's summary never changes once written).
struct CompressedSummaries {
  int64_t Hkv = 0, dh = 0, Bs = 0;
  int64_t n_blocks = 0;   // complete blocks summarised: blocks [0, n_blocks)
  std::vector<float> k;   // [n_blocks, Hkv, dh]: appending a block appends at the end
  std::vector<float> v;   // [n_blocks, Hkv, dh]
};

// Read-only view of summaries, wherever they are stored.
struct SummaryView {
  const float* k = nullptr;  // [n_blocks, Hkv, dh]
  const float* v = nullptr;
  int64_t Hkv = 0, dh = 0, Bs = 0, n_blocks = 0;
};
inline SummaryView view_of(const CompressedSummaries& s) { return {s.k.data(), s.v.data(), s.Hkv, s.dh, s.Bs, s.n_blocks}; }

// Writes the means of blocks [j0, j1) of k, v [Hkv, Tk, dh] (j1 * Bs <= Tk) to sk/sv + j*Hkv*dh.
// Parallel over (block, head); f32 sums in token order, then one multiply by 1/Bs.
void summarise_blocks(const float* k, const float* v, int64_t Hkv, int64_t Tk, int64_t dh, int64_t Bs, int64_t j0,
                      int64_t j1, float* sk, float* sv);

// Extends s to every complete block of the first Tk tokens of k, v [Hkv, Tk, dh]; existing blocks are
// kept, so a growing cache pays only for new blocks. s is initialised on first use (s.Bs == 0).
// Errors: Bs < 1, Hkv/dh different from s's, Tk < 0.
Status extend_summaries(CompressedSummaries& s, const float* k, const float* v, int64_t Hkv, int64_t Tk,
                        int64_t dh, int64_t Bs);

// Per-thread scratch floats of compressed_fwd for rows of at most max_keys keys (raw + summaries).
size_t compressed_scratch_floats_per_thread(int64_t max_keys);
// The longest row: min(tail, Tk) raw keys plus the longest routing row.
int64_t compressed_max_keys(const topo::BlockSparseLayout& routing, int64_t tail, int64_t Tk);

// Forward over p (o and lse written; edge_bias ignored). routing: block rows per KV head (H = Hkv or
// 1), block_size = s.Bs, covering every query block. tail >= 1. ws: per-thread scratch sized by
// compressed_scratch_floats_per_thread(compressed_max_keys(...)) for omp_get_max_threads() threads,
// or nullptr to allocate it here (once, outside the row loop).
// Errors name the argument: tail < 1, block size mismatch, routing too short for the last query,
// summaries missing a block the last query may route to, head or dh mismatch.
Status compressed_fwd(const Problem& p, const topo::BlockSparseLayout& routing, int64_t tail, const SummaryView& s,
                      const FwdScratch* ws = nullptr);
inline Status compressed_fwd(const Problem& p, const topo::BlockSparseLayout& routing, int64_t tail,
                             const CompressedSummaries& s) {
  return compressed_fwd(p, routing, tail, view_of(s), nullptr);
}

}  // namespace bna::cpu
