// Structured graphs: what the graph ABI's rows (src/graph/abi_rows.cpp, no rewires) would give,
// computed from the cycles and the window / landmark / self rules without building [H, T, D].
// Row statistics are closed-form per row: the only row-specific set is the <= 2k cycle neighbours,
// so the window and landmark parts are counted with arithmetic (multiples of S in a range) and
// corrected for the cycle neighbours that fall inside them (CYCLE wins over LANDMARK over WINDOW).
// Reachability enumerates each row's neighbours from the rules; every BFS remembers up to which
// position it has already added the landmarks (they are the same for every row), so a frontier of
// late rows costs its windows and cycles, not ~T/S landmarks per row. The per-hop sets, and so the
// counts, do not depend on the order in which neighbours are visited, which is why the result
// equals graph::metrics of the materialized ABI exactly (tests/spec/rules_test.cpp).
#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

#include "bna/spec.hpp"
#include "bna/threads.hpp"
#include "spec/internal.hpp"

namespace bna::spec {
namespace {

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

void check_shapes(const topo::PermsOnly& p, const graph::RowRules& r) {
  BNA_ASSERT(p.H >= 1 && p.T >= 1 && p.num_cycles >= 0 && p.T == r.T);
  BNA_ASSERT(static_cast<int64_t>(p.perm.size()) == p.H * p.num_cycles * p.T && p.inv.size() == p.perm.size());
  BNA_ASSERT(r.window >= 0 && r.landmark_stride >= 0);
}

// Sorted, unique cycle neighbours of node i of head h written to buf (room for 2k); returns the count.
int64_t cycle_neighbours(const topo::PermsOnly& p, int64_t h, int64_t i, int32_t* buf) {
  const int64_t T = p.T;
  int64_t n = 0;
  for (int64_t c = 0; c < p.num_cycles; ++c) {
    const int32_t* perm = p.perm_of(h, c);
    const int64_t pos = p.inv_of(h, c)[i];
    buf[n++] = perm[pos == 0 ? T - 1 : pos - 1];
    buf[n++] = perm[pos + 1 == T ? 0 : pos + 1];
  }
  std::sort(buf, buf + n);
  return std::unique(buf, buf + n) - buf;
}

using detail::RuleRowStats;

// Sums are combined in block order, so results are independent of the thread count.
void add(RuleRowStats& a, const RuleRowStats& o) {
  a.deg_sum += o.deg_sum;
  a.deg_min = std::min(a.deg_min, o.deg_min);
  a.deg_max = std::max(a.deg_max, o.deg_max);
  a.shortcut += o.shortcut;
  a.cycle += o.cycle;
  a.window += o.window;
  a.landmark += o.landmark;
}

// One row: the structured rule of abi_rows.cpp, counted instead of written.
void count_row(const graph::RowRules& r, const int32_t* cn, int64_t c, int64_t i, RuleRowStats& s) {
  const int64_t S = r.landmark_stride;
  const int64_t lo = r.window > 0 ? std::max<int64_t>(0, i - r.window) : i;
  int64_t c_win = 0, c_lm_win = 0, c_lm_below = 0, shortcut = 0;
  bool self_in_cycle = false;
  for (int64_t t = 0; t < c; ++t) {
    const int64_t x = cn[t];
    if (x >= lo && x < i) {
      ++c_win;
      c_lm_win += S > 0 && x % S == 0;
    } else if (x < lo) {
      c_lm_below += S > 0 && x % S == 0;
    }
    self_in_cycle |= x == i;
    shortcut += std::llabs(static_cast<long long>(x - i)) > 1;
  }
  // Window [lo, i) minus cycle neighbours; its multiples of S are typed LANDMARK.
  const int64_t win = (i - lo) - c_win;
  const int64_t lm_in_win = S > 0 ? ceil_div(i, S) - ceil_div(lo, S) - c_lm_win : 0;
  // Landmarks 0, S, .. < lo minus cycle neighbours.
  const int64_t lm_below = S > 0 ? ceil_div(lo, S) - c_lm_below : 0;
  const int64_t self = r.include_self && !self_in_cycle ? 1 : 0;
  const int64_t len = c + win + lm_below + self;
  s.deg_sum += len;
  s.deg_min = std::min(s.deg_min, len);
  s.deg_max = std::max(s.deg_max, len);
  s.shortcut += shortcut;
  s.cycle += c;
  s.landmark += lm_in_win + lm_below;
  s.window += win - lm_in_win + self;
}

}  // namespace

RuleRowStats detail::rule_row_stats(const topo::PermsOnly& p, const graph::RowRules& r) {
  check_shapes(p, r);
  constexpr int64_t kBlock = 8192;
  const int64_t rows = p.H * p.T;
  const int64_t blocks = (rows + kBlock - 1) / kBlock;
  std::vector<RuleRowStats> part(static_cast<size_t>(blocks));
  parallel_for(0, blocks, [&](int64_t b) {
    std::vector<int32_t> buf(static_cast<size_t>(2 * p.num_cycles + 1));
    RuleRowStats& s = part[b];
    for (int64_t row = b * kBlock, end = std::min(rows, row + kBlock); row < end; ++row) {
      const int64_t h = row / p.T, i = row % p.T;
      const int64_t c = cycle_neighbours(p, h, i, buf.data());
      count_row(r, buf.data(), c, i, s);
    }
  });
  RuleRowStats all;
  for (const RuleRowStats& s : part) add(all, s);
  all.D = std::max<int64_t>(1, all.deg_max);
  return all;
}

namespace {

// Distinct nodes reached from (h, src) within `hops` hops over the rows' neighbours (source counted).
int64_t reach_from(const topo::PermsOnly& p, const graph::RowRules& r, int64_t h, int32_t src, int hops) {
  const int64_t T = p.T, S = r.landmark_stride;
  std::vector<uint8_t> seen(static_cast<size_t>(T), 0);
  std::vector<int32_t> cur{src}, nxt;
  seen[src] = 1;
  int64_t count = 1;
  int64_t lm_done = 0;  // every landmark below this position has been visited
  auto visit = [&](int64_t v) {
    if (seen[v]) return;
    seen[v] = 1;
    nxt.push_back(static_cast<int32_t>(v));
    ++count;
  };
  for (int hop = 0; hop < hops && !cur.empty() && count < T; ++hop) {
    nxt.clear();
    for (size_t a = 0; a < cur.size() && count < T; ++a) {
      const int64_t u = cur[a];
      for (int64_t c = 0; c < p.num_cycles; ++c) {
        const int32_t* perm = p.perm_of(h, c);
        const int64_t pos = p.inv_of(h, c)[u];
        visit(perm[pos == 0 ? T - 1 : pos - 1]);
        visit(perm[pos + 1 == T ? 0 : pos + 1]);
      }
      const int64_t lo = r.window > 0 ? std::max<int64_t>(0, u - r.window) : u;
      for (int64_t j = lo; j < u; ++j) visit(j);
      if (S > 0 && lo > lm_done) {
        for (int64_t j = ceil_div(lm_done, S) * S; j < lo; j += S) visit(j);
        lm_done = lo;
      }
      // Self (include_self) is u, already seen.
    }
    cur.swap(nxt);
  }
  return count;
}

}  // namespace

Status detail::check_perm_pair(const int32_t* perm, const int32_t* inv, int64_t T, std::vector<uint8_t>& seen) {
  seen.assign(static_cast<size_t>(T), 0);
  for (int64_t p = 0; p < T; ++p) {
    const int32_t v = perm[p];
    if (v < 0 || v >= T)
      return corrupt("position " + std::to_string(p) + ": node " + std::to_string(v) + " out of range [0, " +
                     std::to_string(T) + ")");
    if (seen[v])
      return corrupt("position " + std::to_string(p) + ": node " + std::to_string(v) +
                     " repeated, expected a permutation of 0..T-1");
    seen[v] = 1;
  }
  for (int64_t p = 0; p < T; ++p)
    if (inv[perm[p]] != p)
      return corrupt("inverse is not the inverse of perm at position " + std::to_string(p) + " (inv[" +
                     std::to_string(perm[p]) + "] = " + std::to_string(inv[perm[p]]) + ")");
  return Status::ok();
}

int64_t rule_row_width(const topo::PermsOnly& perms, const graph::RowRules& rules) {
  return detail::rule_row_stats(perms, rules).D;
}

graph::GraphMetrics detail::rule_metrics_from(const topo::PermsOnly& p, const graph::RowRules& r,
                                              const RuleRowStats& st, int bfs_hops, int64_t max_sources) {
  graph::GraphMetrics m;
  const int64_t rows = p.H * p.T;
  m.heads = p.H;
  m.tokens = p.T;
  m.max_degree = st.D;
  m.bfs_hops = bfs_hops;
  m.degree_mean = static_cast<double>(st.deg_sum) / static_cast<double>(rows);
  m.degree_min = st.deg_min;
  m.degree_max = st.deg_max;
  m.shortcut_rate = static_cast<double>(st.shortcut) / static_cast<double>(std::max<int64_t>(1, st.cycle));
  m.edge_type_counts[static_cast<int>(graph::EdgeType::kPad)] = rows * st.D - st.deg_sum;
  m.edge_type_counts[static_cast<int>(graph::EdgeType::kCycle)] = st.cycle;
  m.edge_type_counts[static_cast<int>(graph::EdgeType::kWindow)] = st.window;
  m.edge_type_counts[static_cast<int>(graph::EdgeType::kLandmark)] = st.landmark;
  m.edge_type_counts[static_cast<int>(graph::EdgeType::kRewire)] = 0;

  // Same deterministic sources as graph::metrics: `tasks` evenly spaced over the flattened H*T rows.
  const int64_t tasks = max_sources > 0 ? std::min(rows, max_sources) : rows;
  std::vector<int64_t> reached(static_cast<size_t>(tasks), 0);
  parallel_for_dynamic(0, tasks, 1, [&](int64_t task) {
    const int64_t flat = tasks == rows ? task : static_cast<int64_t>((static_cast<__int128>(task) * rows) / tasks);
    reached[task] = reach_from(p, r, flat / p.T, static_cast<int32_t>(flat % p.T), bfs_hops);
  });
  int64_t reach_sum = 0;
  for (int64_t x : reached) reach_sum += x;
  m.reachability_proxy = tasks > 0 ? static_cast<double>(reach_sum) / static_cast<double>(tasks) : 0.0;
  return m;
}

graph::GraphMetrics rule_metrics(const topo::PermsOnly& perms, const graph::RowRules& rules, int bfs_hops,
                                 int64_t max_sources) {
  return detail::rule_metrics_from(perms, rules, detail::rule_row_stats(perms, rules), bfs_hops, max_sources);
}

Expected<graph::GraphAbi> materialize_rows(const topo::PermsOnly& perms, const graph::RowRules& rules) {
  check_shapes(perms, rules);
  std::vector<std::vector<std::vector<int32_t>>> cycles(static_cast<size_t>(perms.H));
  try {
    for (int64_t h = 0; h < perms.H; ++h)
      for (int64_t c = 0; c < perms.num_cycles; ++c)
        cycles[h].emplace_back(perms.perm_of(h, c), perms.perm_of(h, c) + perms.T);
  } catch (const std::bad_alloc&) {
    return out_of_range("spec: out of memory copying the cycles of H=" + std::to_string(perms.H) +
                        " T=" + std::to_string(perms.T));
  }
  return graph::build_heads(rules, cycles);
}

}  // namespace bna::spec
