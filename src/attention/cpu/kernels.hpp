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
};

}  // namespace bna::cpu
