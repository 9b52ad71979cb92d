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

// Work (rows * G * max_keys * dh multiply-adds per score or PV pass) below which decode_fwd runs
// on the calling thread: 2^18 is an estimated ~0.1 ms of one core (not swept); an HF Butterfly decode step (one KV head,
// G = 2..7, a few hundred keys, dh 64) is 10-50x less, and a team wake-up costs 5-20 us idle, a
// scheduler tick (4 ms) on a loaded machine.
inline constexpr int64_t kDecodeThreadedWork = int64_t(1) << 18;
// Whether decode_fwd opens a thread team for `rows` (KV head, query) rows of G query heads.
bool decode_fwd_threaded(int64_t rows, int64_t G, int64_t max_keys, int64_t dh, int64_t threaded_work = kDecodeThreadedWork);

// partials: decode_partial_floats(...) floats; ws: per-thread scratch as above. threaded_work: the
// threshold above (tests pass 0 or INT64_MAX to force either branch; the bits are the same).
void decode_fwd(const Problem& p, const DecodeRows& rows, int64_t n_splits, float* partials, const FwdScratch& ws,
                int64_t threaded_work = kDecodeThreadedWork);

}  // namespace bna::cpu
