// Incremental butterfly graph for decode: per KV head, `num_cycles` Hamiltonian cycles over the
// tokens seen so far plus the window and landmark rules, extended one token at a time without a
// rebuild. Rows follow the graph ABI rule of bna/graph.hpp exactly (cycle neighbours ascending, past
// window, landmarks, self; CYCLE > LANDMARK > WINDOW), materialised on demand from O(T) state:
//   prev/next of every node in every cycle (int32 [H, num_cycles, T]) - the window and landmarks are
//   derived, never stored.
// Append rules (docs/decode.md):
//   kRandomInsertion: token t goes after a uniformly random node a < t of each cycle (O(1) per head and
//     cycle). Every cyclic order of 0..t is equally likely (as for a random Hamiltonian cycle), but
//     the draws differ from Topology's Fisher-Yates kRandom, so the graph equals build_heads on THIS
//     object's cycles (to_abi()), not Topology::construct with kRandom. Cycles of one head are
//     independent (not edge-disjoint); a neighbour reached twice appears once (rows are sets).
//   kOnlineInsertion: token t goes into the edge (a, b) maximising s(a,t) + s(t,b) - s(a,b) on routing
//     vectors (topo::OnlineInsertion, O(t d) per head). One cycle; the graph after appending T tokens
//     equals Topology{strategy = online_insertion}.construct(T, routing) row for row.
// Appending token t changes the rows of t's cycle neighbours (their prev/next becomes t); for decode
// this is invisible (t > a, b is masked by causality for rows a, b), and it is what makes every row
// equal the batch build at the same length.
#pragma once

#include <cstdint>
#include <vector>

#include "bna/graph.hpp"
#include "bna/rng.hpp"
#include "bna/status.hpp"
#include "bna/topology.hpp"

namespace bna::topo {

enum class AppendRule { kRandomInsertion, kOnlineInsertion };
const char* append_rule_name(AppendRule r);  // "random_insertion", "online_insertion"

struct DecodeGraphOptions {
  int64_t n_heads = 1;              // KV heads
  int64_t num_cycles = 1;           // kOnlineInsertion: exactly 1
  int64_t window = 64;              // W >= 0: past keys i-W..i-1
  int64_t landmark_stride = 64;     // S >= 0 (0 = none): landmarks 0, S, 2S, ... < i-W
  bool include_self = true;
  AppendRule rule = AppendRule::kRandomInsertion;
  int64_t routing_dim = 0;          // d of the routing vectors (kOnlineInsertion only, >= 1)
  uint64_t seed = 0;                // kRandomInsertion: head h draws from Rng(head_seed(seed, h))
};

class DecodeGraph {
 public:
  // Errors name the option: n_heads/num_cycles < 1, window/landmark_stride < 0, online insertion with
  // num_cycles != 1 or routing_dim < 1.
  static Expected<DecodeGraph> create(const DecodeGraphOptions& opt);

  // Appends token t = size() to every head. routing: f32 [n_heads, routing_dim], the new token's
  // routing vector per head (kOnlineInsertion; must be null for kRandomInsertion). Errors leave the
  // graph unchanged.
  Status append(const float* routing = nullptr);
  // Appends n tokens; routing f32 [n, n_heads, routing_dim] for kOnlineInsertion.
  Status append_many(int64_t n, const float* routing = nullptr);

  int64_t size() const { return T_; }
  int64_t heads() const { return opt_.n_heads; }
  const DecodeGraphOptions& options() const { return opt_; }

  // Upper bound on the length of any row at the current size: 2*num_cycles + W + ceil(T/S) + 1.
  int64_t max_row_len() const;
  // Row i of head h at the current size, written to idx/type (room for max_row_len()); returns its
  // length. Same entries, order and types as row i of to_abi(). Requires 0 <= h < heads(),
  // 0 <= i < size() (asserted). Thread-safe against other const calls.
  int64_t row(int64_t h, int64_t i, int32_t* idx, uint8_t* type) const;
  // prev and next of node i in cycle c of head h as the graph holds them now. Right after token i was
  // appended they are its cycle neighbours in its decode row (both < i, or i itself for i = 0); later
  // appends may change them. Requires valid h, c and 0 <= i < size() (asserted).
  void cycle_neighbours(int64_t h, int64_t c, int64_t i, int32_t* prev, int32_t* next) const;
  // Cycle c of head h in cycle order starting at node 0 (perm[pos] = node).
  Perm cycle(int64_t h, int64_t c) const;
  // The ABI graph at the current size (graph::build_heads on cycle()); error when size() == 0.
  Expected<graph::GraphAbi> to_abi() const;

 private:
  explicit DecodeGraph(const DecodeGraphOptions& o) : opt_(o) {}
  DecodeGraphOptions opt_;
  int64_t T_ = 0;
  std::vector<std::vector<int32_t>> next_, prev_;  // [h * num_cycles + c][node]
  std::vector<Rng> rng_;                           // per head (random insertion)
  std::vector<OnlineInsertion> online_;            // per head (online insertion)
  std::vector<std::vector<float>> routing_;        // per head [T, d] (online insertion)
};

}  // namespace bna::topo
