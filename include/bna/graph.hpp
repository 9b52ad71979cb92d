// The graph ABI: the backend-agnostic contract between topology builders and attention.
//   neigh_idx  int32 [H, T, D], row-major, -1 = padding (pads only at the end of a row)
//   edge_type  uint8 [H, T, D], PAD=0 CYCLE=1 WINDOW=2 LANDMARK=3 REWIRE=4
// Rows are sets (no duplicate neighbour) in first-insertion order: cycle neighbours (ascending union
// of every cycle's prev/next), past window i-W..i-1, landmarks 0,S,2S..<i, rewires, self. When one
// neighbour is reached by several rules the higher-priority type wins
// (CYCLE > REWIRE > LANDMARK > WINDOW) but the position of first insertion is kept.
// D = longest row over all heads (minimum 1). Causality is applied by attention, not here.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bna/status.hpp"

namespace bna::graph {

enum class EdgeType : uint8_t { kPad = 0, kCycle = 1, kWindow = 2, kLandmark = 3, kRewire = 4 };
inline constexpr int kNumEdgeTypes = 5;
const char* edge_type_name(EdgeType t);  // "pad", "cycle", "window", "landmark", "rewire"
// Merge priority: WINDOW 0 < LANDMARK 1 < REWIRE 2 < CYCLE 3 (PAD -1).
int edge_priority(EdgeType t);

// Everything needed to rebuild or explain a graph. Serialized as JSON next to the arrays.
struct GraphMeta {
  std::string strategy = "random";
  int64_t window = 0;
  int64_t landmark_stride = 0;  // 0 = no landmarks
  int num_cycles = 0;
  uint64_t seed = 0;
  bool include_self = true;
  // cycle_perms[h][c] is cycle c of head h in cycle order: perm[pos] = node (length T). May be empty
  // for graphs that have no cycle backbone (e.g. loaded from foreign files).
  std::vector<std::vector<std::vector<int32_t>>> cycle_perms;
};

struct GraphAbi {
  int64_t H = 0, T = 0, D = 0;
  std::vector<int32_t> neigh_idx;  // [H, T, D]
  std::vector<uint8_t> edge_type;  // [H, T, D]
  GraphMeta meta;

  const int32_t* row(int64_t h, int64_t i) const { return neigh_idx.data() + (h * T + i) * D; }
  const uint8_t* row_types(int64_t h, int64_t i) const { return edge_type.data() + (h * T + i) * D; }
  size_t nbytes() const { return neigh_idx.size() * 4 + edge_type.size(); }
};

// Per-head input of the row builder. Cycle neighbours come from `cycle_perms` (each a permutation
// of 0..T-1 in cycle order); rewires are optional extra neighbours per node (any order).
struct RowRules {
  int64_t T = 0;
  int64_t window = 0;           // >= 0
  int64_t landmark_stride = 0;  // 0 = none, else >= 1
  bool include_self = true;
};

// Build a single head's rows (H = 1). Errors: T < 1, window < 0, stride < 0, a perm that is not a
// permutation of 0..T-1, rewire list of wrong length or out-of-range entries.
Expected<GraphAbi> build_head(const RowRules& rules, const std::vector<std::vector<int32_t>>& cycle_perms,
                              const std::vector<std::vector<int32_t>>* rewire = nullptr);

// Build all heads at once into one [H, T, D] buffer (D = longest row over heads), in parallel over
// rows with O(T) scratch per thread. cycle_perms_by_head[h] holds head h's cycles.
Expected<GraphAbi> build_heads(const RowRules& rules,
                               const std::vector<std::vector<std::vector<int32_t>>>& cycle_perms_by_head,
                               const std::vector<std::vector<std::vector<int32_t>>>* rewire_by_head = nullptr);

// Same as build_heads but writes into `g`, reusing its arrays' memory when they are large enough
// (repeated builds then never page-fault fresh memory). g's previous contents and meta are replaced;
// on error g is left in an unspecified but valid state.
Status build_heads_into(GraphAbi& g, const RowRules& rules,
                        const std::vector<std::vector<std::vector<int32_t>>>& cycle_perms_by_head,
                        const std::vector<std::vector<std::vector<int32_t>>>* rewire_by_head = nullptr);

// Sizes g.neigh_idx and g.edge_type to g.H*g.T*g.D entries. Existing capacity is reused; entries
// beyond the old size are zero, the rest keep their old values. Errors: H, T or D < 1, size overflow,
// out of memory.
Status allocate_arrays(GraphAbi& g);

// Stack single- or multi-head graphs of equal T along H, padding rows to the largest D.
Expected<GraphAbi> stack_heads(const std::vector<GraphAbi>& heads);

struct ValidateOptions {
  int64_t expect_heads = -1;   // -1 = do not check
  int64_t expect_tokens = -1;
  bool enforce_hamiltonian = true;
};
// Index range, pad placement (pads only at the end, PAD exactly where idx == -1), edge codes,
// no duplicate neighbour in a row, and (optionally) a connected cycle backbone: every node has >= 2
// CYCLE neighbours (>= 1 when T = 2) and the CYCLE edges connect all T nodes. Errors name head,
// row and column: "graph: head 3 row 17 col 5: index 4096 out of range [0, 4096)".
Status validate(const GraphAbi& g, const ValidateOptions& opt = {});

struct GraphMetrics {
  int64_t heads = 0, tokens = 0, max_degree = 0;
  double degree_mean = 0; int64_t degree_min = 0, degree_max = 0;
  double shortcut_rate = 0;       // (CYCLE or REWIRE entries with |j-i| > 1) / max(1, CYCLE or REWIRE entries)
  double reachability_proxy = 0;  // mean #distinct nodes reached within bfs_hops hops (source included)
  int64_t edge_type_counts[kNumEdgeTypes] = {0, 0, 0, 0, 0};  // indexed by EdgeType code
  int bfs_hops = 4;
};
// reachability_proxy is averaged over at most `max_sources` (head, node) sources, evenly spaced over
// the flattened H*T rows (all rows when H*T <= max_sources; <= 0 = all), so metrics stay cheap at long
// T: one source can cost O(T*D) at 4 hops. The sample is deterministic.
GraphMetrics metrics(const GraphAbi& g, int bfs_hops = 4, int64_t max_sources = 64);

}  // namespace bna::graph
