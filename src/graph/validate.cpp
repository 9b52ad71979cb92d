// Graph ABI validation: shapes, edge codes, index range, pad placement, row uniqueness and the
// Hamiltonian backbone. Rows are checked in parallel with a per-thread stamp array for duplicates;
// each thread keeps the first failure of its contiguous row range, so the reported error is always
// the first bad (head, row, col) in row-major order regardless of the thread count. The backbone
// check is a BFS from node 0 over the CYCLE entries as listed (directed rows), one head per task.
#include <omp.h>

#include <algorithm>
#include <limits>
#include <string>
#include <vector>

#include "bna/graph.hpp"

namespace bna::graph {
namespace {

std::string where(int64_t h, int64_t i, int64_t k) {
  return "graph: head " + std::to_string(h) + " row " + std::to_string(i) + " col " + std::to_string(k) + ": ";
}

// Checks one row; returns an empty string when it is fine.
std::string check_row(const GraphAbi& g, int64_t h, int64_t i, std::vector<uint32_t>& stamp, uint32_t& gen,
                      int64_t* cycle_count) {
  const int32_t* idx = g.row(h, i);
  const uint8_t* ty = g.row_types(h, i);
  if (++gen == 0) {
    std::fill(stamp.begin(), stamp.end(), 0);
    gen = 1;
  }
  bool in_pad = false;
  int64_t cyc = 0;
  for (int64_t k = 0; k < g.D; ++k) {
    const int32_t j = idx[k];
    const uint8_t t = ty[k];
    if (t >= kNumEdgeTypes)
      return where(h, i, k) + "edge type " + std::to_string(t) + ", expected a code in 0..4";
    if (j != -1 && (j < 0 || j >= g.T))
      return where(h, i, k) + "index " + std::to_string(j) + " out of range [0, " + std::to_string(g.T) + ")";
    if ((j == -1) != (t == static_cast<uint8_t>(EdgeType::kPad)))
      return where(h, i, k) + "index " + std::to_string(j) + " with edge type " + std::to_string(t) + " (" +
             edge_type_name(static_cast<EdgeType>(t)) + "), expected PAD exactly where the index is -1";
    if (j == -1) {
      in_pad = true;
      continue;
    }
    if (in_pad)
      return where(h, i, k) + "neighbour " + std::to_string(j) + " after padding, expected pads only at the row end";
    if (stamp[j] == gen) return where(h, i, k) + "duplicate neighbour " + std::to_string(j) + " in the row";
    stamp[j] = gen;
    cyc += (t == static_cast<uint8_t>(EdgeType::kCycle));
  }
  *cycle_count = cyc;
  return {};
}

}  // namespace

Status validate(const GraphAbi& g, const ValidateOptions& opt) {
  if (opt.expect_heads >= 0 && g.H != opt.expect_heads)
    return invalid_argument("graph: H=" + std::to_string(g.H) + ", expected " + std::to_string(opt.expect_heads) +
                            " heads");
  if (opt.expect_tokens >= 0 && g.T != opt.expect_tokens)
    return invalid_argument("graph: T=" + std::to_string(g.T) + ", expected " + std::to_string(opt.expect_tokens) +
                            " tokens");
  if (g.T < 1 || g.T > std::numeric_limits<int32_t>::max())
    return invalid_argument("graph: T=" + std::to_string(g.T) + ", expected 1 <= T <= 2147483647");
  if (g.H < 1) return invalid_argument("graph: H=" + std::to_string(g.H) + ", expected H >= 1");
  if (g.D < 1) return invalid_argument("graph: D=" + std::to_string(g.D) + ", expected D >= 1");
  const int64_t kMax = std::numeric_limits<int64_t>::max();
  if (g.H > kMax / g.T || g.H * g.T > kMax / g.D)
    return invalid_argument("graph: H*T*D overflows (H=" + std::to_string(g.H) + " T=" + std::to_string(g.T) +
                            " D=" + std::to_string(g.D) + ")");
  const int64_t n = g.H * g.T * g.D;
  if (static_cast<int64_t>(g.neigh_idx.size()) != n || static_cast<int64_t>(g.edge_type.size()) != n)
    return invalid_argument("graph: neigh_idx has " + std::to_string(g.neigh_idx.size()) + " and edge_type " +
                            std::to_string(g.edge_type.size()) + " entries, expected H*T*D=" + std::to_string(n));

  const int64_t rows = g.H * g.T;
  std::vector<int32_t> cycle_deg(static_cast<size_t>(rows));
  const int nth = omp_get_max_threads();
  std::vector<int64_t> bad_row(static_cast<size_t>(nth), rows);
  std::vector<std::string> bad_msg(static_cast<size_t>(nth));
#pragma omp parallel num_threads(nth) if (n >= (1 << 18))
  {
    const int tid = omp_get_thread_num();
    std::vector<uint32_t> stamp(static_cast<size_t>(g.T), 0);
    uint32_t gen = 0;
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      if (bad_row[tid] != rows) continue;  // this thread already failed; later rows of its range don't matter
      int64_t cyc = 0;
      std::string m = check_row(g, r / g.T, r % g.T, stamp, gen, &cyc);
      if (!m.empty()) {
        bad_row[tid] = r;
        bad_msg[tid] = std::move(m);
      }
      cycle_deg[r] = static_cast<int32_t>(cyc);
    }
  }
  int best = -1;
  for (int t = 0; t < nth; ++t)
    if (bad_row[t] != rows && (best < 0 || bad_row[t] < bad_row[best])) best = t;
  if (best >= 0) return invalid_argument(bad_msg[best]);

  if (!opt.enforce_hamiltonian || g.T == 1) return Status::ok();
  const int64_t need = g.T == 2 ? 1 : 2;
  for (int64_t r = 0; r < rows; ++r)
    if (cycle_deg[r] < need)
      return invalid_argument("graph: head " + std::to_string(r / g.T) + " row " + std::to_string(r % g.T) +
                              ": " + std::to_string(cycle_deg[r]) + " CYCLE neighbours, expected >= " +
                              std::to_string(need) + " (Hamiltonian backbone)");
  std::vector<int64_t> unreached(static_cast<size_t>(g.H), -1);
#pragma omp parallel for schedule(dynamic, 1) if (n >= (1 << 18))
  for (int64_t h = 0; h < g.H; ++h) {
    std::vector<uint8_t> seen(static_cast<size_t>(g.T), 0);
    std::vector<int32_t> queue;
    queue.reserve(static_cast<size_t>(g.T));
    queue.push_back(0);
    seen[0] = 1;
    for (size_t q = 0; q < queue.size(); ++q) {
      const int32_t* idx = g.row(h, queue[q]);
      const uint8_t* ty = g.row_types(h, queue[q]);
      for (int64_t k = 0; k < g.D && idx[k] != -1; ++k)
        if (ty[k] == static_cast<uint8_t>(EdgeType::kCycle) && !seen[idx[k]]) {
          seen[idx[k]] = 1;
          queue.push_back(idx[k]);
        }
    }
    if (static_cast<int64_t>(queue.size()) != g.T)
      unreached[h] = std::find(seen.begin(), seen.end(), 0) - seen.begin();
  }
  for (int64_t h = 0; h < g.H; ++h)
    if (unreached[h] >= 0)
      return invalid_argument("graph: head " + std::to_string(h) + ": cycle backbone disconnected, node " +
                              std::to_string(unreached[h]) + " is not reachable from node 0 over CYCLE edges");
  return Status::ok();
}

}  // namespace bna::graph
