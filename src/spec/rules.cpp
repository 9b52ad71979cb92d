// Structured graphs: what the graph ABI's rows (src/graph/abi_rows.cpp, no rewires) would give,
// computed from the cycles and the window / landmark / self rules without building [H, T, D].
// Row statistics are closed-form per row: the only row-specific set is the <= 2k cycle neighbours,
// so the window and landmark parts are counted with arithmetic (multiples of S in a range) and
// corrected for the cycle neighbours that fall inside them (CYCLE wins over LANDMARK over WINDOW).
// Reachability is a BFS over neighbours enumerated from the rules, a hop at a time: the union of a
// frontier's windows is one sweep and the union of its landmarks is a prefix of multiples of S, so a
// hop costs O(frontier * k + span) instead of O(frontier * D) (~1,100 at T = 65,536). The per-hop
// sets, and so the counts, do not depend on the order in which neighbours are visited, which is why
// the result equals graph::metrics of the materialized ABI exactly (tests/spec/rules_test.cpp).
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
// Positions and strides are < 2^31 (int32 ids), and 32-bit division is several times cheaper than
// 64-bit division on the x86 cores this runs on; the row statistics do a few per row.
inline int64_t ceil_div32(int64_t a, int64_t b) {
  return static_cast<uint32_t>(a + b - 1) / static_cast<uint32_t>(b);
}
inline bool multiple32(int64_t x, int64_t s) { return static_cast<uint32_t>(x) % static_cast<uint32_t>(s) == 0; }

void check_shapes(const topo::PermsOnly& p, const graph::RowRules& r) {
  BNA_ASSERT(p.H >= 1 && p.T >= 1 && p.num_cycles >= 0 && p.T == r.T);
  BNA_ASSERT(static_cast<int64_t>(p.perm.size()) == p.H * p.num_cycles * p.T && p.inv.size() == p.perm.size());
  BNA_ASSERT(r.window >= 0 && r.landmark_stride >= 0);
}

// Window and stride >= T give the same rows as T (lo = 0; landmark 0 only), and keep the arithmetic
// below in 32 bits.
graph::RowRules clamped(graph::RowRules r) {
  r.window = std::min(r.window, r.T);
  r.landmark_stride = std::min(r.landmark_stride, r.T);
  return r;
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
  if (n <= 16) {  // k <= 8: insertion sort beats std::sort's dispatch on a handful of entries
    for (int64_t a = 1; a < n; ++a) {
      const int32_t v = buf[a];
      int64_t b = a;
      for (; b > 0 && buf[b - 1] > v; --b) buf[b] = buf[b - 1];
      buf[b] = v;
    }
  } else {
    std::sort(buf, buf + n);
  }
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
      c_lm_win += S > 0 && multiple32(x, S);
    } else if (x < lo) {
      c_lm_below += S > 0 && multiple32(x, S);
    }
    self_in_cycle |= x == i;
    shortcut += std::llabs(static_cast<long long>(x - i)) > 1;
  }
  // Window [lo, i) minus cycle neighbours; its multiples of S are typed LANDMARK.
  const int64_t win = (i - lo) - c_win;
  const int64_t lm_in_win = S > 0 ? ceil_div32(i, S) - ceil_div32(lo, S) - c_lm_win : 0;
  // Landmarks 0, S, .. < lo minus cycle neighbours.
  const int64_t lm_below = S > 0 ? ceil_div32(lo, S) - c_lm_below : 0;
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

RuleRowStats detail::rule_row_stats(const topo::PermsOnly& p, const graph::RowRules& rules) {
  check_shapes(p, rules);
  const graph::RowRules r = clamped(rules);
  constexpr int64_t kBlock = 8192, kPrefetch = 16;
  const int64_t rows = p.H * p.T;
  const int64_t blocks = (rows + kBlock - 1) / kBlock;
  std::vector<RuleRowStats> part(static_cast<size_t>(blocks));
  parallel_for(0, blocks, [&](int64_t b) {
    std::vector<int32_t> buf(static_cast<size_t>(2 * p.num_cycles + 1));
    RuleRowStats& s = part[b];
    int64_t h = b * kBlock / p.T, i = b * kBlock % p.T;  // advanced without a division per row
    for (int64_t row = b * kBlock, end = std::min(rows, row + kBlock); row < end; ++row, ++i) {
      if (i == p.T) {
        i = 0;
        ++h;
      }
      // Node i's cycle positions are random, and one head's perms outgrow L2 at long T: fetch the
      // prev/next of a row kPrefetch ahead so the loads overlap instead of stalling row by row.
      if (i + kPrefetch < p.T)
        for (int64_t cc = 0; cc < p.num_cycles; ++cc)
          __builtin_prefetch(p.perm_of(h, cc) + p.inv_of(h, cc)[i + kPrefetch]);
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
// Each hop adds the union of the frontier's rows minus what was seen. Cycle neighbours are visited
// per node; the window union is found by one sweep over the frontier's span when the frontier's
// windows would cost more than the span (every j with a frontier node in (j, j+W]); the landmark
// union is every multiple of S below the largest max(0, u-W) of the frontier, and landmarks already
// added by an earlier hop are skipped. Self is the frontier node itself, already seen.
int64_t reach_from(const topo::PermsOnly& p, const graph::RowRules& r, int64_t h, int32_t src, int hops) {
  const int64_t T = p.T, S = r.landmark_stride, W = r.window;
  std::vector<uint8_t> seen(static_cast<size_t>(T), 0), front;
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
    int64_t umin = T, umax = -1;
    for (const int32_t u : cur) {
      for (int64_t c = 0; c < p.num_cycles; ++c) {
        const int32_t* perm = p.perm_of(h, c);
        const int64_t pos = p.inv_of(h, c)[u];
        visit(perm[pos == 0 ? T - 1 : pos - 1]);
        visit(perm[pos + 1 == T ? 0 : pos + 1]);
      }
      umin = std::min<int64_t>(umin, u);
      umax = std::max<int64_t>(umax, u);
    }
    if (W > 0) {
      const int64_t lo_span = std::max<int64_t>(0, umin - W);
      if (static_cast<int64_t>(cur.size()) * W <= umax - lo_span) {
        for (const int32_t u : cur)
          for (int64_t j = std::max<int64_t>(0, u - W); j < u; ++j) visit(j);
      } else {
        front.assign(static_cast<size_t>(umax + 1 - lo_span), 0);
        for (const int32_t u : cur) front[u - lo_span] = 1;
        int64_t nearest = -1;  // smallest frontier node > j
        for (int64_t j = umax; j >= lo_span; --j) {
          if (nearest >= 0 && nearest - j <= W) visit(j);
          if (front[j - lo_span]) nearest = j;
        }
      }
    }
    const int64_t lo_max = W > 0 ? std::max<int64_t>(0, umax - W) : umax;  // largest max(0, u-W)
    if (S > 0 && lo_max > lm_done) {
      for (int64_t j = ceil_div(lm_done, S) * S; j < lo_max; j += S) visit(j);
      lm_done = lo_max;
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
  const graph::RowRules rc = clamped(r);
  parallel_for_dynamic(0, tasks, 1, [&](int64_t task) {
    const int64_t flat = tasks == rows ? task : static_cast<int64_t>((static_cast<__int128>(task) * rows) / tasks);
    reached[task] = reach_from(p, rc, flat / p.T, static_cast<int32_t>(flat % p.T), bfs_hops);
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
