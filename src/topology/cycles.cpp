// Single-cycle strategies: random (Fisher-Yates), greedy nearest neighbour, online insertion and
// regular partition.
// Similarities s(x,y) = r_x . r_y / sqrt(d) are computed on the fly (never a T x T matrix); the dot
// product is an OpenMP simd reduction so it vectorises without -ffast-math. Ties always go to the
// first candidate (lowest node for greedy, lowest position for insertion), as in the original.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

#include "bna/topology.hpp"

namespace bna::topo {

namespace {

inline float dot(const float* a, const float* b, int64_t d) {
  float acc = 0.f;
#pragma omp simd reduction(+ : acc)
  for (int64_t i = 0; i < d; ++i) acc += a[i] * b[i];
  return acc;
}

Status check_routing(const char* who, const float* r, int64_t T, int64_t d) {
  if (T < 1) return invalid_argument(std::string(who) + ": T=" + std::to_string(T) + ", expected T >= 1");
  if (d < 1) return invalid_argument(std::string(who) + ": d=" + std::to_string(d) + ", expected d >= 1");
  if (r == nullptr) return invalid_argument(std::string(who) + ": routing vectors r are null, expected f32 [T, d]");
  return Status::ok();
}

}  // namespace

void cycle_random_into(int32_t* out, int64_t T, Rng& rng) {
  BNA_ASSERT(T >= 1 && out != nullptr);
  std::iota(out, out + T, 0);
  // Fisher-Yates exactly as Rng::shuffle (i = T..2 swaps v[i-1] with v[uniform_below(i)]), but the
  // draws run kAhead swaps ahead in a ring so the random line is prefetched before its swap: the
  // draws do not depend on the data, and without this every swap waits on an L3 miss at large T.
  constexpr uint64_t kAhead = 32;
  uint32_t ring[kAhead];
  uint64_t next_i = static_cast<uint64_t>(T), head = 0, pending = 0;
  auto draw = [&] {
    const uint32_t j = static_cast<uint32_t>(rng.uniform_below(next_i--));
    __builtin_prefetch(out + j, 1);
    ring[(head + pending++) & (kAhead - 1)] = j;
  };
  while (pending < kAhead && next_i > 1) draw();
  for (uint64_t i = static_cast<uint64_t>(T); i > 1; --i) {
    const uint32_t j = ring[head];
    head = (head + 1) & (kAhead - 1);
    --pending;
    std::swap(out[i - 1], out[j]);
    if (next_i > 1) draw();
  }
}

Perm cycle_random(int64_t T, Rng& rng) {
  BNA_ASSERT(T >= 1);
  Perm perm(static_cast<size_t>(T));
  if (T < (int64_t{1} << 16)) {  // fits in L2: the plain shuffle is as fast
    std::iota(perm.begin(), perm.end(), 0);
    rng.shuffle(perm);
  } else {
    cycle_random_into(perm.data(), T, rng);
  }
  return perm;
}

Expected<Perm> cycle_greedy(const float* r, int64_t T, int64_t d, int64_t start) {
  BNA_RETURN_IF_ERROR(check_routing("cycle_greedy", r, T, d));
  if (start < 0 || start >= T) {
    return invalid_argument("cycle_greedy: start=" + std::to_string(start) + ", expected 0 <= start < T=" +
                            std::to_string(T));
  }
  const float sqrt_d = std::sqrt(static_cast<float>(d));
  // Unvisited nodes, swap-removed; the (score, lowest index) comparison keeps ties order-independent.
  std::vector<int32_t> alive;
  alive.reserve(static_cast<size_t>(T - 1));
  for (int64_t j = 0; j < T; ++j)
    if (j != start) alive.push_back(static_cast<int32_t>(j));
  Perm perm;
  perm.reserve(static_cast<size_t>(T));
  int32_t cur = static_cast<int32_t>(start);
  perm.push_back(cur);
  while (!alive.empty()) {
    const float* rc = r + static_cast<int64_t>(cur) * d;
    size_t best_k = 0;
    float best = dot(rc, r + static_cast<int64_t>(alive[0]) * d, d) / sqrt_d;
    for (size_t k = 1; k < alive.size(); ++k) {
      const int32_t j = alive[k];
      const float s = dot(rc, r + static_cast<int64_t>(j) * d, d) / sqrt_d;
      if (s > best || (s == best && j < alive[best_k]) || (std::isnan(best) && !std::isnan(s))) {
        best = s;
        best_k = k;
      }
    }
    cur = alive[best_k];
    alive[best_k] = alive.back();
    alive.pop_back();
    perm.push_back(cur);
  }
  return perm;
}

Status OnlineInsertion::insert_next(const float* r, int64_t rows, int64_t d) {
  const int64_t t = size();
  BNA_RETURN_IF_ERROR(check_routing("online_insertion", r, rows < 1 ? 1 : rows, d));
  if (rows < t + 1) {
    return invalid_argument("online_insertion: r has " + std::to_string(rows) + " rows, expected >= t+1=" +
                            std::to_string(t + 1) + " to insert node " + std::to_string(t));
  }
  if (t == 0) {
    perm_.assign(1, 0);
    return Status::ok();
  }
  BNA_RETURN_IF_ERROR(validate_perm(perm_, t));
  const float sqrt_d = std::sqrt(static_cast<float>(d));
  const float* ru = r + t * d;
  std::vector<float> su(static_cast<size_t>(t));  // su[p] = s(perm[p], u)
  for (int64_t p = 0; p < t; ++p) su[p] = dot(r + static_cast<int64_t>(perm_[p]) * d, ru, d) / sqrt_d;
  int64_t best_p = 0;
  float best = 0.f;
  for (int64_t p = 0; p < t; ++p) {
    const int64_t q = p + 1 == t ? 0 : p + 1;
    const float sab = dot(r + static_cast<int64_t>(perm_[p]) * d, r + static_cast<int64_t>(perm_[q]) * d, d) / sqrt_d;
    const float delta = su[p] + su[q] - sab;
    if (p == 0 || delta > best) {
      best = delta;
      best_p = p;
    }
  }
  perm_.insert(perm_.begin() + best_p + 1, static_cast<int32_t>(t));
  return Status::ok();
}

Expected<Perm> cycle_online_insertion(const float* r, int64_t T, int64_t d) {
  BNA_RETURN_IF_ERROR(check_routing("cycle_online_insertion", r, T, d));
  OnlineInsertion state;
  for (int64_t t = 0; t < T; ++t) BNA_RETURN_IF_ERROR(state.insert_next(r, t + 1, d));
  return state.perm();
}

Perm cycle_regular_partition(int64_t T, int64_t num_clusters, Rng& rng) {
  BNA_ASSERT(T >= 1);
  const int64_t k = std::clamp<int64_t>(num_clusters, 1, T);
  // Cluster c holds [begin[c], begin[c+1]) of 0..T-1; the first T mod k clusters get one extra node.
  std::vector<int32_t> nodes(static_cast<size_t>(T));
  std::iota(nodes.begin(), nodes.end(), 0);
  std::vector<int64_t> begin(static_cast<size_t>(k + 1), 0);
  const int64_t base = T / k, extra = T % k;
  for (int64_t c = 0; c < k; ++c) begin[c + 1] = begin[c] + base + (c < extra ? 1 : 0);
  for (int64_t c = 0; c < k; ++c) {
    // Fisher-Yates exactly as Rng::shuffle, in place on the cluster's slice.
    int32_t* v = nodes.data() + begin[c];
    for (uint64_t i = static_cast<uint64_t>(begin[c + 1] - begin[c]); i > 1; --i)
      std::swap(v[i - 1], v[rng.uniform_below(i)]);
  }
  std::vector<int64_t> cursor(begin.begin(), begin.end() - 1);
  std::vector<int32_t> order(static_cast<size_t>(k));
  Perm perm;
  perm.reserve(static_cast<size_t>(T));
  while (static_cast<int64_t>(perm.size()) < T) {
    std::iota(order.begin(), order.end(), 0);
    rng.shuffle(order);
    for (int32_t c : order)
      if (cursor[c] < begin[c + 1]) perm.push_back(nodes[cursor[c]++]);
  }
  return perm;
}

}  // namespace bna::topo
