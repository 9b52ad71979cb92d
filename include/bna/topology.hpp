// Topology builders: Hamiltonian cycle strategies and the Topology runtime that turns them into the
// graph ABI (construct) or into bare cycle permutations (construct_perms_only).
// Determinism: a Topology holds no generator state. Head h of every call draws from a fresh
// Rng(seed + 7919*h), so the same arguments always give the same graph.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "bna/graph.hpp"
#include "bna/rng.hpp"
#include "bna/status.hpp"

namespace bna::topo {

using Perm = std::vector<int32_t>;  // perm[pos] = node, a permutation of 0..T-1

// ---- permutations -------------------------------------------------------------------------------
Status validate_perm(const Perm& perm, int64_t T);       // names the first bad position/value
Perm inverse_perm(const Perm& perm);                     // inv[node] = pos
// next[perm[p]] = perm[(p+1) mod T], prev[perm[(p+1) mod T]] = perm[p].
void cycle_prev_next(const Perm& perm, std::vector<int32_t>& prev, std::vector<int32_t>& next);

// ---- cycle strategies (token or block level; T >= 1 everywhere) ---------------------------------
Perm cycle_random(int64_t T, Rng& rng);  // uniform random permutation (Fisher-Yates)
// The same permutation (same draws as Rng::shuffle of 0..T-1) written into out[0..T). Draws are made
// ahead of the swaps so the random accesses can be prefetched (~4x faster once T exceeds L2).
void cycle_random_into(int32_t* out, int64_t T, Rng& rng);
// Nearest-neighbour tour maximising s(x,y) = r_x . r_y / sqrt(d); ties -> lowest index.
// r: f32 [T, d] row-major. O(T^2 d) time, O(T) memory (similarities computed on the fly).
Expected<Perm> cycle_greedy(const float* r, int64_t T, int64_t d, int64_t start = 0);
// Online insertion: holds a cycle over 0..t-1 and inserts node t at the edge maximising
// s(a,t) + s(t,b) - s(a,b) (first on ties), O(t d) per insertion, no rebuild.
class OnlineInsertion {
 public:
  OnlineInsertion() = default;
  explicit OnlineInsertion(Perm initial) : perm_(std::move(initial)) {}
  // r: f32 [>= t+1, d]; inserts node t = size(). Error when r has fewer rows.
  Status insert_next(const float* r, int64_t rows, int64_t d);
  const Perm& perm() const { return perm_; }
  int64_t size() const { return static_cast<int64_t>(perm_.size()); }

 private:
  Perm perm_;
};
Expected<Perm> cycle_online_insertion(const float* r, int64_t T, int64_t d);
// Split 0..T-1 into k=clamp(num_clusters,1,T) contiguous clusters (first T mod k get one extra),
// shuffle each, then round-robin over a fresh random cluster order each round.
Perm cycle_regular_partition(int64_t T, int64_t num_clusters, Rng& rng);
// Largest k for which edge-disjoint Hamiltonian cycles exist: floor((T-1)/2) for T >= 3, else 0.
int64_t max_edge_disjoint_cycles(int64_t T);
// Walecki decomposition: floor((T-1)/2) pairwise edge-disjoint cycles of K_T, deterministic.
std::vector<Perm> cycles_walecki(int64_t T);
// k edge-disjoint Hamiltonian cycles for every 1 <= k <= max_edge_disjoint_cycles(T) (T <= 2: k = 1
// allowed, the trivial cycle). Constructive (Walecki), randomised by a seeded relabelling of nodes
// and a random choice of which k of the decomposition's cycles to use.
Expected<std::vector<Perm>> cycles_edge_disjoint(int64_t T, int64_t k, Rng& rng);
struct CoveringResult { std::vector<Perm> cycles; double coverage = 0; };
// Cycles until `target` of the T(T-1)/2 pairs are covered or max_cycles is reached: relabelled
// Walecki cycles first (each adds T new pairs), then greedy best-of-candidates random cycles.
CoveringResult cycles_covering(int64_t T, int64_t max_cycles, double target, Rng& rng);
// Number of distinct undirected pairs covered by the union of the cycles, and whether they are
// pairwise edge-disjoint.
int64_t count_covered_pairs(const std::vector<Perm>& cycles, int64_t T);
bool are_edge_disjoint(const std::vector<Perm>& cycles, int64_t T);

// ---- Topology runtime --------------------------------------------------------------------------
enum class Strategy { kRandom, kGreedy, kOnlineInsertion, kRegularPartition, kEdgeDisjoint, kCovering };
const char* strategy_name(Strategy s);  // "random", "greedy", "online_insertion", "regular_partition", "edge_disjoint", "covering"
Expected<Strategy> parse_strategy(std::string_view s);  // error lists the accepted names
bool strategy_needs_routing(Strategy s);  // greedy, online_insertion

inline constexpr uint64_t kHeadSeedStride = 7919;
inline uint64_t head_seed(uint64_t seed, int64_t h) { return seed + kHeadSeedStride * static_cast<uint64_t>(h); }

struct TopologyOptions {
  int64_t n_heads = 1;
  Strategy strategy = Strategy::kRandom;
  int64_t num_cycles = 1;
  bool edge_disjoint = true;        // random with num_cycles > 1: use cycles_edge_disjoint
  int64_t regular_num_clusters = 8;
  uint64_t seed = 0;
  int64_t window = 64;
  int64_t landmark_stride = 64;     // 0 = no landmarks
  bool include_self = true;
  bool enforce_hamiltonian = true;  // validate the backbone in construct()
  double coverage_target = 0.99;    // covering strategy
};

// Routing vectors for greedy / online insertion: one f32 [T, d] matrix per head.
struct Routing {
  const float* data = nullptr;
  int64_t T = 0, d = 0;
};

// Cycle permutations and inverses only: O(T) per head and cycle, no rows.
struct PermsOnly {
  int64_t H = 0, T = 0, num_cycles = 0;
  std::vector<int32_t> perm;  // [H, num_cycles, T]: perm[pos] = node
  std::vector<int32_t> inv;   // [H, num_cycles, T]: inv[node] = pos
  const int32_t* perm_of(int64_t h, int64_t c) const { return perm.data() + (h * num_cycles + c) * T; }
  const int32_t* inv_of(int64_t h, int64_t c) const { return inv.data() + (h * num_cycles + c) * T; }
};

class Topology {
 public:
  // Validates the options: n_heads >= 1, num_cycles >= 1, window >= 0, landmark_stride >= 0,
  // regular_num_clusters >= 1, coverage_target in [0, 1].
  static Expected<Topology> create(const TopologyOptions& opt);
  const TopologyOptions& options() const { return opt_; }

  // Cycle permutations of every head (cycles[h][c]). routing: one entry per head, required for
  // greedy / online insertion (error otherwise), ignored by the rest.
  Expected<std::vector<std::vector<Perm>>> cycles(int64_t T, const std::vector<Routing>* routing = nullptr) const;
  // The full ABI [H, T, D], validated per options.enforce_hamiltonian.
  Expected<graph::GraphAbi> construct(int64_t T, const std::vector<Routing>* routing = nullptr) const;
  // Perms and inverses only, for strategies that need no routing (error for greedy/online).
  Expected<PermsOnly> construct_perms_only(int64_t T) const;

 private:
  explicit Topology(const TopologyOptions& o) : opt_(o) {}
  TopologyOptions opt_;
};

}  // namespace bna::topo
