// Graph ABI metrics: degree statistics, shortcut rate, edge type counts and a bounded-hop
// reachability proxy. Rows are scanned once in parallel; reachability runs a hop-limited BFS from a
// deterministic, evenly spaced sample of sources (stamp array + two frontier vectors per thread,
// early stop once every node is reached), so its cost is bounded at long T.
#include <algorithm>
#include <cstdlib>
#include <vector>

#include "bna/graph.hpp"

namespace bna::graph {

GraphMetrics metrics(const GraphAbi& g, int bfs_hops, int64_t max_sources) {
  GraphMetrics m;
  m.heads = g.H;
  m.tokens = g.T;
  m.max_degree = g.D;
  m.bfs_hops = bfs_hops;
  const int64_t rows = g.H * g.T;
  if (rows <= 0 || g.D <= 0 || static_cast<int64_t>(g.neigh_idx.size()) != rows * g.D ||
      g.edge_type.size() != g.neigh_idx.size())
    return m;

  int64_t deg_sum = 0, deg_min = INT64_MAX, deg_max = 0, sc = 0, sc_total = 0;
  int64_t c0 = 0, c1 = 0, c2 = 0, c3 = 0, c4 = 0;
#pragma omp parallel for schedule(static) if (rows * g.D >= (1 << 18)) reduction(+ : deg_sum, sc, sc_total, c0, c1, c2, c3, c4) \
    reduction(min : deg_min) reduction(max : deg_max)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t i = r % g.T;
    const int32_t* idx = g.neigh_idx.data() + r * g.D;
    const uint8_t* ty = g.edge_type.data() + r * g.D;
    int64_t deg = 0;
    int64_t cnt[kNumEdgeTypes] = {0, 0, 0, 0, 0};
    for (int64_t k = 0; k < g.D; ++k) {
      const uint8_t t = ty[k];
      if (t < kNumEdgeTypes) ++cnt[t];
      if (idx[k] < 0) continue;
      ++deg;
      if (t == static_cast<uint8_t>(EdgeType::kCycle) || t == static_cast<uint8_t>(EdgeType::kRewire)) {
        ++sc_total;
        sc += std::llabs(static_cast<long long>(idx[k]) - i) > 1;
      }
    }
    deg_sum += deg;
    deg_min = std::min(deg_min, deg);
    deg_max = std::max(deg_max, deg);
    c0 += cnt[0]; c1 += cnt[1]; c2 += cnt[2]; c3 += cnt[3]; c4 += cnt[4];
  }
  m.degree_mean = static_cast<double>(deg_sum) / static_cast<double>(rows);
  m.degree_min = deg_min;
  m.degree_max = deg_max;
  m.shortcut_rate = static_cast<double>(sc) / static_cast<double>(std::max<int64_t>(1, sc_total));
  const int64_t counts[kNumEdgeTypes] = {c0, c1, c2, c3, c4};
  std::copy(counts, counts + kNumEdgeTypes, m.edge_type_counts);

  // Reachability: BFS within bfs_hops hops from sampled sources, following rows (directed).
  // Sources: `tasks` evenly spaced (head, row) pairs over the flattened H*T rows.
  const int64_t tasks = max_sources > 0 ? std::min(rows, max_sources) : rows;
  double reach_sum = 0;
#pragma omp parallel reduction(+ : reach_sum) if (tasks * g.D >= (1 << 16))
  {
    std::vector<uint32_t> stamp(static_cast<size_t>(g.T), 0);
    uint32_t gen = 0;
    std::vector<int32_t> cur, nxt;
#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < tasks; ++task) {
      const int64_t flat = tasks == rows ? task : static_cast<int64_t>((static_cast<__int128>(task) * rows) / tasks);
      const int64_t h = flat / g.T;
      const int32_t src = static_cast<int32_t>(flat % g.T);
      if (++gen == 0) {
        std::fill(stamp.begin(), stamp.end(), 0);
        gen = 1;
      }
      stamp[src] = gen;
      int64_t seen = 1;
      cur.assign(1, src);
      for (int hop = 0; hop < bfs_hops && !cur.empty() && seen < g.T; ++hop) {
        nxt.clear();
        for (size_t a = 0; a < cur.size() && seen < g.T; ++a) {
          const int32_t* idx = g.row(h, cur[a]);
          for (int64_t q = 0; q < g.D; ++q) {
            const int32_t v = idx[q];
            if (v < 0) break;
            if (v >= g.T || stamp[v] == gen) continue;
            stamp[v] = gen;
            nxt.push_back(v);
            ++seen;
          }
        }
        cur.swap(nxt);
      }
      reach_sum += static_cast<double>(seen);
    }
  }
  m.reachability_proxy = tasks > 0 ? reach_sum / static_cast<double>(tasks) : 0.0;
  return m;
}

}  // namespace bna::graph
