// CPU attention kernels (internal). Everything is f32 and contiguous, one batch element at a time:
//   q [Hq, Tq, dh], k/v [Hkv, Tk, dh], o [Hq, Tq, dh], lse [Hq, Tq].
// The runtime (src/attention/) converts bf16/f16 inputs to f32 once, loops over B, and calls these.
// Query i has absolute position q_offset + i; key j is allowed only if j <= that position.
// An empty row writes o = 0 and lse = -inf. Accumulation in f32 with online softmax.
#pragma once

#include <cstdint>
#include <vector>

#include "bna/attention.hpp"
#include "bna/block_layout.hpp"
#include "bna/graph.hpp"
#include "bna/topology.hpp"

namespace bna::cpu {

struct Problem {
  const float* q = nullptr;
  const float* k = nullptr;
  const float* v = nullptr;
  float* o = nullptr;
  float* lse = nullptr;
  int64_t Hq = 1, Hkv = 1, Tq = 0, Tk = 0, dh = 0;
  int64_t q_offset = 0;
  float scale = 1.0f;
  const float* edge_bias = nullptr;  // [5] indexed by edge code, or nullptr
  // dense_fwd / streams_fwd: query heads of one KV head packed into one query tile (gqa_pack.hpp);
  // 1 = one head per tile. Set by the planner for small Tq; results are bit-identical either way.
  int64_t gqa_pack = 1;
};

// Backward: o and lse of the forward are inputs; dq/dk/dv are overwritten (not accumulated);
// d_edge_bias (if not null) is overwritten with the gradient of the 5 bias entries.
struct GradProblem {
  Problem fwd;
  const float* dout = nullptr;
  float* dq = nullptr;
  float* dk = nullptr;
  float* dv = nullptr;
  float* d_edge_bias = nullptr;
};

// Streams view of an ABI graph: row i of KV head h equals, as a set,
//   band [max(0, i-W), i]  U  landmarks {m*S < i}  U  extra[h, i, 0..C)  (extras are disjoint from both).
// Types: a band key is WINDOW unless it is a landmark (LANDMARK) or listed in `band_override`
// (a cycle/rewire neighbour inside the band keeps its higher-priority type, used only by edge bias).
struct StreamsGraph {
  int64_t Hkv = 0, T = 0, W = 0, S = 0, C = 0;  // S = 0: no landmarks
  std::vector<int32_t> extra;       // [Hkv, T, C], -1 padded at the end
  std::vector<uint8_t> extra_type;  // [Hkv, T, C]
  // Band keys whose type is neither WINDOW nor LANDMARK: [Hkv, T, C] like extra, -1 padded.
  std::vector<int32_t> band_override;
  std::vector<uint8_t> band_override_type;
  // Landmarks outside the band whose ABI type is not LANDMARK (a cycle or rewire neighbour that
  // falls on a landmark keeps its higher-priority type): [Hkv, T, C] like extra, -1 padded. Used only
  // by edge bias. typed_landmarks counts them over the whole graph. Filled by streams_from_abi.
  std::vector<int32_t> landmark_override;
  std::vector<uint8_t> landmark_override_type;
  int64_t typed_landmarks = 0;
  // Sizes the six [Hkv, T, C] slot arrays for the current Hkv, T, C: indices -1, types 0.
  void allocate_slots() {
    const size_t sz = static_cast<size_t>(Hkv * T * C);
    extra.assign(sz, -1);
    extra_type.assign(sz, 0);
    band_override.assign(sz, -1);
    band_override_type.assign(sz, 0);
    landmark_override.assign(sz, -1);
    landmark_override_type.assign(sz, 0);
  }
};

// ---- forward kernels (src/attention/cpu/*_fwd.cpp) --------------------------------------------
// Per-thread scratch for the forward kernels: `per_thread` floats for each of num_threads() threads,
// 64-byte aligned, sized by fwd_scratch_floats_per_thread(dh, max_keys_per_row).
struct FwdScratch {
  float* base = nullptr;
  size_t per_thread = 0;
};
// max_keys_per_row: the longest explicit key list a kernel builds per query row (gather: D;
// union permute-window: num_cycles*(2w+1); streams: C); 0 for dense / block-sparse.
size_t fwd_scratch_floats_per_thread(int64_t dh, int64_t max_keys_per_row);

// Untyped paths (dense, block-sparse) type every key WINDOW for edge bias.
void dense_fwd(const Problem& p, const FwdScratch& ws);
// Row i of KV head h is g.row(h, q_offset + i) (a multiset: duplicates count twice); requires g.T == Tk.
void gather_fwd(const Problem& p, const graph::GraphAbi& g, const FwdScratch& ws);
// Streams needs a shared workspace of streams_workspace_floats(p, S) floats (64-byte aligned) for
// the compacted landmark keys and values K[m*S], V[m*S] of every KV head (T/S rows each: 1/S of K/V).
size_t streams_workspace_floats(int64_t Hkv, int64_t Tk, int64_t dh, int64_t S);
void streams_fwd(const Problem& p, const StreamsGraph& g, const FwdScratch& ws, float* landmark_ws);
// Band offsets -w..w in cycle order of each cycle; offset +-1 is typed CYCLE, the rest WINDOW.
// Average: o = mean over cycles of the per-cycle outputs, lse = log(mean_c exp(lse_c)).
// Union: one softmax over every (cycle, offset) entry, i.e. each key weighted by its multiplicity.
void permute_window_fwd(const Problem& p, const topo::PermsOnly& perms, int64_t w, attn::MultiCycleMode mode,
                        bool circular, const FwdScratch& ws);
void block_sparse_fwd(const Problem& p, const topo::BlockSparseLayout& L, const FwdScratch& ws);

// Verifies that every row of `abi` is, as a set, band [max(0,i-W), i] U landmarks {m*S < i} U extras
// and builds the StreamsGraph (extras and band overrides, C = the longest such list). Errors name
// the first head/row that does not match, e.g. "streams: head 0 row 17: key 3 is not in the band,
// a landmark or an extra" or "streams: head 2 row 40: band key 39 missing".
Expected<StreamsGraph> streams_from_abi(const graph::GraphAbi& abi, int64_t W, int64_t S);

// The same StreamsGraph built from cycle permutations alone (src/attention/cpu/streams_from_perms.cpp),
// never materialising [H, T, D]: equals streams_from_abi(construct(T), W, S) for a topology with self
// loops and no rewires. Errors: W or S < 0, empty or inconsistent perms.
Expected<StreamsGraph> streams_from_perms(const topo::PermsOnly& perms, int64_t W, int64_t S);

}  // namespace bna::cpu
