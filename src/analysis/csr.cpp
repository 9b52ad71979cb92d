// Graph conversions for the diagnostics: edge lists, permutation graphs and ABI graphs to an undirected
// simple CSR, ABI graphs to causal predecessor rows, and connected components.
// Decision: conversion goes through a directed edge list that is sorted and deduplicated per row, so
// multi-edges (two cycles, two heads, both rows) collapse to one unit edge; memory is 2 * 4 bytes per
// listed entry, sorting is per row (rows are short) and parallel.
#include <algorithm>
#include <numeric>
#include <string>

#include "bna/analysis.hpp"
#include "bna/threads.hpp"

namespace bna::analysis {
namespace {

// Builds the symmetric CSR from per-node adjacency produced by `emit(i, push)` where push(j) adds
// the undirected edge {i, j}. Two passes: count, fill; then per-row sort + unique.
template <class Emit>
Csr build_symmetric(int64_t n, Emit&& emit) {
  std::vector<int64_t> count(n + 1, 0);
  for (int64_t i = 0; i < n; ++i)
    emit(i, [&](int64_t j) {
      if (j == i) return;
      ++count[i + 1];
      ++count[j + 1];
    });
  std::vector<int64_t> start(n + 1, 0);
  for (int64_t i = 0; i < n; ++i) start[i + 1] = start[i] + count[i + 1];
  std::vector<int32_t> raw(start[n]);
  std::vector<int64_t> pos(start.begin(), start.end() - 1);
  for (int64_t i = 0; i < n; ++i)
    emit(i, [&](int64_t j) {
      if (j == i) return;
      raw[pos[i]++] = static_cast<int32_t>(j);
      raw[pos[j]++] = static_cast<int32_t>(i);
    });
  std::vector<int64_t> deg(n, 0);
  parallel_for(0, n, [&](int64_t i) {
    auto b = raw.begin() + start[i], e = raw.begin() + start[i + 1];
    std::sort(b, e);
    deg[i] = std::unique(b, e) - b;
  });
  Csr g;
  g.n = n;
  g.offsets.assign(n + 1, 0);
  for (int64_t i = 0; i < n; ++i) g.offsets[i + 1] = g.offsets[i] + deg[i];
  g.cols.resize(g.offsets[n]);
  parallel_for(0, n, [&](int64_t i) {
    std::copy(raw.begin() + start[i], raw.begin() + start[i] + deg[i], g.cols.begin() + g.offsets[i]);
  });
  return g;
}

Status check_abi_indices(const graph::GraphAbi& g) {
  if (g.T < 0 || g.H < 0 || g.D < 0 || static_cast<int64_t>(g.neigh_idx.size()) != g.H * g.T * g.D)
    return invalid_argument("analysis: graph H=" + std::to_string(g.H) + " T=" + std::to_string(g.T) + " D=" +
                            std::to_string(g.D) + " but neigh_idx has " + std::to_string(g.neigh_idx.size()) +
                            " entries, expected H*T*D");
  for (size_t e = 0; e < g.neigh_idx.size(); ++e) {
    const int32_t j = g.neigh_idx[e];
    if (j < -1 || j >= g.T) {
      const int64_t row = static_cast<int64_t>(e) / std::max<int64_t>(g.D, 1);
      return invalid_argument("analysis: head " + std::to_string(row / g.T) + " row " + std::to_string(row % g.T) +
                              ": index " + std::to_string(j) + " out of range [-1, " + std::to_string(g.T) + ")");
    }
  }
  return Status::ok();
}

}  // namespace

Expected<Csr> csr_from_edges(int64_t n, const std::vector<std::pair<int32_t, int32_t>>& edges) {
  if (n < 0) return invalid_argument("analysis: n=" + std::to_string(n) + ", expected n >= 0");
  std::vector<std::vector<int32_t>> out(n);
  for (const auto& [a, b] : edges) {
    if (a < 0 || a >= n || b < 0 || b >= n)
      return invalid_argument("analysis: edge (" + std::to_string(a) + ", " + std::to_string(b) +
                              ") out of range [0, " + std::to_string(n) + ")");
    out[a].push_back(b);
  }
  return build_symmetric(n, [&](int64_t i, auto&& push) {
    for (int32_t j : out[i]) push(j);
  });
}

Expected<Csr> csr_from_perms(const std::vector<topo::Perm>& cycles, int64_t T, int64_t window) {
  if (T < 1) return invalid_argument("analysis: T=" + std::to_string(T) + ", expected T >= 1");
  if (window < 0) return invalid_argument("analysis: window=" + std::to_string(window) + ", expected window >= 0");
  for (size_t c = 0; c < cycles.size(); ++c) {
    Status st = topo::validate_perm(cycles[c], T);
    if (!st.is_ok()) return invalid_argument("analysis: cycle " + std::to_string(c) + ": " + st.message());
  }
  std::vector<std::vector<int32_t>> inv;
  inv.reserve(cycles.size());
  for (const auto& p : cycles) inv.push_back(topo::inverse_perm(p));
  return build_symmetric(T, [&](int64_t i, auto&& push) {
    for (size_t c = 0; c < cycles.size(); ++c) push(cycles[c][(inv[c][i] + 1) % T]);  // next; prev comes from the other end
    for (int64_t j = std::max<int64_t>(0, i - window); j < i; ++j) push(j);
  });
}

Expected<Csr> csr_from_abi(const graph::GraphAbi& g, int64_t head) {
  BNA_RETURN_IF_ERROR(check_abi_indices(g));
  if (head >= g.H)
    return invalid_argument("analysis: head=" + std::to_string(head) + ", expected head < H=" + std::to_string(g.H));
  const int64_t h0 = head < 0 ? 0 : head, h1 = head < 0 ? g.H : head + 1;
  return build_symmetric(g.T, [&](int64_t i, auto&& push) {
    for (int64_t h = h0; h < h1; ++h) {
      const int32_t* r = g.row(h, i);
      for (int64_t d = 0; d < g.D && r[d] >= 0; ++d) push(r[d]);
    }
  });
}

Components connected_components(const Csr& g) {
  Components c;
  c.label.assign(g.n, -1);
  std::vector<int32_t> stack;
  for (int64_t s = 0; s < g.n; ++s) {
    if (c.label[s] >= 0) continue;
    const int32_t id = static_cast<int32_t>(c.count++);
    int64_t size = 0;
    stack.push_back(static_cast<int32_t>(s));
    c.label[s] = id;
    while (!stack.empty()) {
      const int32_t u = stack.back();
      stack.pop_back();
      ++size;
      for (const int32_t* p = g.begin(u); p != g.end(u); ++p)
        if (c.label[*p] < 0) { c.label[*p] = id; stack.push_back(*p); }
    }
    c.largest = std::max(c.largest, size);
  }
  return c;
}

Expected<CausalRows> causal_rows_from_abi(const graph::GraphAbi& g) {
  BNA_RETURN_IF_ERROR(check_abi_indices(g));
  CausalRows r;
  r.T = g.T;
  std::vector<std::vector<int32_t>> rows(g.T);
  parallel_for(0, g.T, [&](int64_t i) {
    auto& out = rows[i];
    for (int64_t h = 0; h < g.H; ++h) {
      const int32_t* row = g.row(h, i);
      for (int64_t d = 0; d < g.D && row[d] >= 0; ++d)
        if (row[d] < i) out.push_back(row[d]);
    }
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
  });
  r.offsets.assign(g.T + 1, 0);
  for (int64_t i = 0; i < g.T; ++i) r.offsets[i + 1] = r.offsets[i] + static_cast<int64_t>(rows[i].size());
  r.preds.resize(r.offsets[g.T]);
  for (int64_t i = 0; i < g.T; ++i) std::copy(rows[i].begin(), rows[i].end(), r.preds.begin() + r.offsets[i]);
  return r;
}

}  // namespace bna::analysis
