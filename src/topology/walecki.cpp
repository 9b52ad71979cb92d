// Multi-cycle constructions: the Walecki decomposition of K_T, edge-disjoint cycles drawn from it, and
// covering cycles.
// One formula serves every T >= 3: hub T-1, zig-zag over Z_{T-1}, cycle i = [hub, i, i+1, i-1, i+2,
// i-2, ...] mod (T-1) for i = 0..floor((T-1)/2)-1. For odd T the cycles partition K_T; for even T they
// leave one perfect matching uncovered. Randomness only relabels nodes and picks/orders cycles, so
// every k <= floor((T-1)/2) succeeds (the original's rejection sampler failed for k >= 4).
#include <algorithm>
#include <numeric>
#include <string>

#include "bna/topology.hpp"

namespace bna::topo {

namespace {

// Walecki cycle i of K_T (T >= 3, 0 <= i < floor((T-1)/2)), mapped through sigma when given.
void walecki_cycle_into(int64_t T, int64_t i, const int32_t* sigma, int32_t* out) {
  const int64_t M = T - 1;
  out[0] = static_cast<int32_t>(M);
  out[1] = static_cast<int32_t>(i);
  int64_t up = i, down = i;
  for (int64_t p = 2; p < T; ++p) {
    if (p & 1) {
      down = down == 0 ? M - 1 : down - 1;
      out[p] = static_cast<int32_t>(down);
    } else {
      up = up + 1 == M ? 0 : up + 1;
      out[p] = static_cast<int32_t>(up);
    }
  }
  if (sigma != nullptr)
    for (int64_t p = 0; p < T; ++p) out[p] = sigma[out[p]];
}

}  // namespace

int64_t max_edge_disjoint_cycles(int64_t T) { return T >= 3 ? (T - 1) / 2 : 0; }

std::vector<Perm> cycles_walecki(int64_t T) {
  std::vector<Perm> cycles(static_cast<size_t>(max_edge_disjoint_cycles(T)));
  for (size_t i = 0; i < cycles.size(); ++i) {
    cycles[i].resize(static_cast<size_t>(T));
    walecki_cycle_into(T, static_cast<int64_t>(i), nullptr, cycles[i].data());
  }
  return cycles;
}

Expected<std::vector<Perm>> cycles_edge_disjoint(int64_t T, int64_t k, Rng& rng) {
  if (T < 1) return invalid_argument("edge_disjoint: T=" + std::to_string(T) + ", expected T >= 1");
  const int64_t kmax = T <= 2 ? 1 : max_edge_disjoint_cycles(T);
  if (k < 1 || k > kmax) {
    return invalid_argument("edge_disjoint: num_cycles k=" + std::to_string(k) + " for T=" + std::to_string(T) +
                            ", expected 1 <= k <= " + std::to_string(kmax) +
                            (T <= 2 ? " (T <= 2 has a single trivial cycle)" : " (floor((T-1)/2) edge-disjoint Hamiltonian cycles exist)"));
  }
  if (T <= 2) return std::vector<Perm>{cycle_random(T, rng)};
  const Perm sigma = cycle_random(T, rng);
  // Partial Fisher-Yates over the decomposition's indices: the first k draws pick and order the cycles.
  std::vector<int32_t> idx(static_cast<size_t>(kmax));
  std::iota(idx.begin(), idx.end(), 0);
  for (int64_t j = 0; j < k; ++j)
    std::swap(idx[j], idx[j + static_cast<int64_t>(rng.uniform_below(static_cast<uint64_t>(kmax - j)))]);
  std::vector<Perm> cycles(static_cast<size_t>(k));
  for (int64_t j = 0; j < k; ++j) {
    cycles[j].resize(static_cast<size_t>(T));
    walecki_cycle_into(T, idx[j], sigma.data(), cycles[j].data());
  }
  return cycles;
}

CoveringResult cycles_covering(int64_t T, int64_t max_cycles, double target, Rng& rng) {
  BNA_ASSERT(T >= 1);
  CoveringResult res;
  if (T <= 2) {
    res.cycles.push_back(cycle_random(T, rng));
    res.coverage = 1.0;
    return res;
  }
  max_cycles = std::max<int64_t>(max_cycles, 1);
  target = target > 1.0 ? 1.0 : (target >= 0.0 ? target : 0.0);  // NaN -> 0
  const int64_t total = T * (T - 1) / 2;
  int64_t covered = 0;
  auto reached = [&] { return static_cast<double>(covered) >= target * static_cast<double>(total); };

  // Phase 1: relabelled Walecki cycles in a random order, T new pairs each.
  const int64_t kw = std::min(max_edge_disjoint_cycles(T), max_cycles);
  if (kw > 0) {
    auto walecki = cycles_edge_disjoint(T, kw, rng);
    BNA_ASSERT(walecki.has_value());
    for (Perm& c : walecki.value()) {
      res.cycles.push_back(std::move(c));
      covered += T;
      if (reached()) break;
    }
  }
  // Phase 2: best of `trials` random cycles by number of new pairs; about 2^22 pair look-ups per slot.
  std::vector<uint64_t> keys;  // sorted covered pairs lo*T+hi
  if (!reached() && static_cast<int64_t>(res.cycles.size()) < max_cycles) {
    keys.reserve(res.cycles.size() * static_cast<size_t>(T));
    for (const Perm& c : res.cycles)
      for (int64_t p = 0; p < T; ++p) {
        const uint64_t a = c[p], b = c[p + 1 == T ? 0 : p + 1];
        keys.push_back(a < b ? a * T + b : b * T + a);
      }
    std::sort(keys.begin(), keys.end());
  }
  const int64_t trials = std::clamp<int64_t>((int64_t{1} << 22) / T, 8, 8192);
  std::vector<uint64_t> fresh;
  while (!reached() && static_cast<int64_t>(res.cycles.size()) < max_cycles) {
    Perm best;
    int64_t best_gain = -1;
    const int64_t gain_cap = std::min(T, total - covered);  // no candidate can beat this
    for (int64_t t = 0; t < trials && best_gain < gain_cap; ++t) {
      Perm cand = cycle_random(T, rng);
      int64_t gain = 0;
      for (int64_t p = 0; p < T; ++p) {
        const uint64_t a = cand[p], b = cand[p + 1 == T ? 0 : p + 1];
        gain += !std::binary_search(keys.begin(), keys.end(), a < b ? a * T + b : b * T + a);
      }
      if (gain > best_gain) {
        best_gain = gain;
        best = std::move(cand);
      }
    }
    fresh.clear();
    for (int64_t p = 0; p < T; ++p) {
      const uint64_t a = best[p], b = best[p + 1 == T ? 0 : p + 1];
      const uint64_t key = a < b ? a * T + b : b * T + a;
      if (!std::binary_search(keys.begin(), keys.end(), key)) fresh.push_back(key);
    }
    std::sort(fresh.begin(), fresh.end());
    const size_t mid = keys.size();
    keys.insert(keys.end(), fresh.begin(), fresh.end());
    std::inplace_merge(keys.begin(), keys.begin() + mid, keys.end());
    covered += static_cast<int64_t>(fresh.size());
    res.cycles.push_back(std::move(best));
  }
  res.coverage = static_cast<double>(covered) / static_cast<double>(total);
  return res;
}

}  // namespace bna::topo
