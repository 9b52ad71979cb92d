// Decode forward (CPU): a few query rows against a long KV cache, rows given as explicit key lists
// (from an ABI graph or a topo::DecodeGraph), split along keys (split-K) with an exact LSE merge.
// Layouts as in kernels.hpp: q/o [Hq, Tq, dh], k/v [Hkv, Tk, dh], lse [Hq, Tq], f32 contiguous.
// Decisions: the key list of a (KV head, query) row is built once and serves the G query heads of the
// group (K/V rows loaded once per group); work items are (KV head, query, split) so a single decode
// token still spreads over every core; each split writes a normalised partial (lse_s, o_s) that a
// second pass merges: m = max lse_s, o = sum e^(lse_s - m) o_s / sum e^(lse_s - m), lse = m + log(sum).
// An empty row gives o = 0, lse = -inf.
#pragma once

#include <cstdint>

#include "attention/cpu/kernels.hpp"

namespace bna::cpu {

// Key lists of every (KV head, query) row: idx/type [Hkv, Tq, max_keys], len [Hkv, Tq]. Keys must be
// causal (j <= q_offset + i) and in [0, Tk); the caller filters.
struct DecodeRows {
  int32_t* idx = nullptr;
  uint8_t* type = nullptr;
  int32_t* len = nullptr;
  int64_t max_keys = 0;
};

// Splits per row for a problem with `rows` (KV head, query) rows of at most max_keys keys on
// `threads` threads: enough items for 2 per thread, each split >= 32 keys.
int64_t decode_num_splits(int64_t rows, int64_t max_keys, int threads);
// Workspace floats: partials [Hq, Tq, n_splits, dh + 2] = (lse_s, 1 if non-empty else 0, o_s[dh]).
size_t decode_partial_floats(int64_t Hq, int64_t Tq, int64_t dh, int64_t n_splits);
// Per-thread scratch floats: one forward tile (tile.hpp) plus the key list of one split.
size_t decode_scratch_floats_per_thread(int64_t dh, int64_t max_keys, int64_t n_splits);

// partials: decode_partial_floats(...) floats; ws: per-thread scratch as above.
void decode_fwd(const Problem& p, const DecodeRows& rows, int64_t n_splits, float* partials, const FwdScratch& ws);

}  // namespace bna::cpu
