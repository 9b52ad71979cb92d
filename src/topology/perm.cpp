// Permutation helpers and undirected edge sets of cycle permutations.
// Edge sets are sorted vectors of packed keys lo*T+hi (no hash sets): O(k T) memory for k cycles and
// cache-friendly sort/unique, which is what count_covered_pairs and are_edge_disjoint need.
#include <algorithm>
#include <string>

#include "bna/topology.hpp"

namespace bna::topo {

Status validate_perm(const Perm& perm, int64_t T) {
  if (T < 1) return invalid_argument("perm: T=" + std::to_string(T) + ", expected T >= 1");
  if (static_cast<int64_t>(perm.size()) != T) {
    return invalid_argument("perm: length " + std::to_string(perm.size()) + ", expected T=" + std::to_string(T));
  }
  std::vector<uint8_t> seen(static_cast<size_t>(T), 0);
  for (int64_t p = 0; p < T; ++p) {
    const int32_t v = perm[p];
    if (v < 0 || v >= T) {
      return invalid_argument("perm: position " + std::to_string(p) + " holds " + std::to_string(v) +
                              ", expected a node in [0, " + std::to_string(T) + ")");
    }
    if (seen[v]) {
      return invalid_argument("perm: position " + std::to_string(p) + " repeats node " + std::to_string(v));
    }
    seen[v] = 1;
  }
  return Status::ok();
}

Perm inverse_perm(const Perm& perm) {
  Perm inv(perm.size());
  for (size_t p = 0; p < perm.size(); ++p) {
    BNA_ASSERT(perm[p] >= 0 && static_cast<size_t>(perm[p]) < perm.size());
    inv[perm[p]] = static_cast<int32_t>(p);
  }
  return inv;
}

void cycle_prev_next(const Perm& perm, std::vector<int32_t>& prev, std::vector<int32_t>& next) {
  const size_t T = perm.size();
  prev.assign(T, -1);
  next.assign(T, -1);
  for (size_t p = 0; p < T; ++p) {
    const int32_t a = perm[p], b = perm[p + 1 == T ? 0 : p + 1];
    BNA_ASSERT(a >= 0 && static_cast<size_t>(a) < T && b >= 0 && static_cast<size_t>(b) < T);
    next[a] = b;
    prev[b] = a;
  }
}

namespace {

// Appends the undirected edges of one cycle (wrap-around, no self pairs) as keys lo*T+hi, deduplicated
// within the cycle (T = 2 lists its single edge twice).
void append_cycle_edges(const Perm& perm, int64_t T, std::vector<uint64_t>& keys) {
  BNA_ASSERT(static_cast<int64_t>(perm.size()) == T);
  if (T <= 1) return;
  const size_t begin = keys.size();
  for (int64_t p = 0; p < T; ++p) {
    const uint64_t a = static_cast<uint64_t>(perm[p]);
    const uint64_t b = static_cast<uint64_t>(perm[p + 1 == T ? 0 : p + 1]);
    if (a == b) continue;
    keys.push_back(a < b ? a * T + b : b * T + a);
  }
  if (T <= 2) {
    std::sort(keys.begin() + begin, keys.end());
    keys.erase(std::unique(keys.begin() + begin, keys.end()), keys.end());
  }
}

}  // namespace

int64_t count_covered_pairs(const std::vector<Perm>& cycles, int64_t T) {
  std::vector<uint64_t> keys;
  keys.reserve(cycles.size() * static_cast<size_t>(std::max<int64_t>(T, 0)));
  for (const Perm& c : cycles) append_cycle_edges(c, T, keys);
  std::sort(keys.begin(), keys.end());
  return static_cast<int64_t>(std::unique(keys.begin(), keys.end()) - keys.begin());
}

bool are_edge_disjoint(const std::vector<Perm>& cycles, int64_t T) {
  std::vector<uint64_t> keys;
  keys.reserve(cycles.size() * static_cast<size_t>(std::max<int64_t>(T, 0)));
  for (const Perm& c : cycles) append_cycle_edges(c, T, keys);
  std::sort(keys.begin(), keys.end());
  return std::adjacent_find(keys.begin(), keys.end()) == keys.end();
}

}  // namespace bna::topo
