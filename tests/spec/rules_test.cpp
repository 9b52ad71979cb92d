// Tests for the structured-graph rules (src/spec/rules.cpp): rule_row_width and rule_metrics must equal
// the row width and graph::metrics of the materialized ABI exactly (every field, every edge-type count,
// reachability for all sources and for a sample), and materialize_rows must equal the rows of
// bna::topo::Topology::construct, over small shapes that hit the edge cases: T < window, window 0,
// stride 0 and 1, T = 1 and 2, several cycles, cycle neighbours inside the window and on landmarks.
#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <utility>

#include "bna/spec.hpp"
#include "bna/topology.hpp"

namespace bna::spec {
namespace {

struct RuleCase {
  int64_t T, H, k, window, stride;
  topo::Strategy strategy;
  bool edge_disjoint;
};

std::string name_of(const RuleCase& c) {
  std::string s = "T";
  for (const auto& [sep, v] : {std::pair<const char*, int64_t>{"", c.T}, {"_H", c.H}, {"_k", c.k}, {"_W", c.window},
                               {"_S", c.stride}})
    s.append(sep).append(std::to_string(v));
  s.append("_").append(topo::strategy_name(c.strategy));
  if (!c.edge_disjoint) s.append("_indep");
  return s;
}

void PrintTo(const RuleCase& c, std::ostream* os) { *os << name_of(c); }

topo::TopologyOptions options_of(const RuleCase& c) {
  topo::TopologyOptions o;
  o.n_heads = c.H;
  o.strategy = c.strategy;
  o.num_cycles = c.k;
  o.edge_disjoint = c.edge_disjoint;
  o.regular_num_clusters = 3;
  o.seed = 1000 + static_cast<uint64_t>(c.T);
  o.window = c.window;
  o.landmark_stride = c.stride;
  o.include_self = true;
  o.enforce_hamiltonian = true;
  return o;
}

graph::RowRules rules_of(const RuleCase& c) {
  graph::RowRules r;
  r.T = c.T;
  r.window = c.window;
  r.landmark_stride = c.stride;
  r.include_self = true;
  return r;
}

void expect_same_metrics(const graph::GraphMetrics& a, const graph::GraphMetrics& b, const std::string& what) {
  EXPECT_EQ(a.heads, b.heads) << what;
  EXPECT_EQ(a.tokens, b.tokens) << what;
  EXPECT_EQ(a.max_degree, b.max_degree) << what;
  EXPECT_EQ(a.degree_mean, b.degree_mean) << what;  // exact: same integer sums over the same count
  EXPECT_EQ(a.degree_min, b.degree_min) << what;
  EXPECT_EQ(a.degree_max, b.degree_max) << what;
  EXPECT_EQ(a.shortcut_rate, b.shortcut_rate) << what;
  EXPECT_EQ(a.reachability_proxy, b.reachability_proxy) << what;
  EXPECT_EQ(a.bfs_hops, b.bfs_hops) << what;
  for (int t = 0; t < graph::kNumEdgeTypes; ++t)
    EXPECT_EQ(a.edge_type_counts[t], b.edge_type_counts[t])
        << what << " edge type " << graph::edge_type_name(static_cast<graph::EdgeType>(t));
}

class SpecRules : public ::testing::TestWithParam<RuleCase> {};

TEST_P(SpecRules, MetricsAndRowsEqualTheMaterializedAbi) {
  const RuleCase& c = GetParam();
  const std::string what = name_of(c);
  auto topo = topo::Topology::create(options_of(c));
  ASSERT_TRUE(topo) << what << ": " << topo.status().to_string();
  auto perms = topo->construct_perms_only(c.T);
  ASSERT_TRUE(perms) << what << ": " << perms.status().to_string();
  auto direct = topo->construct(c.T);  // the topology path: cycles -> build_heads -> validate
  ASSERT_TRUE(direct) << what << ": " << direct.status().to_string();

  const graph::RowRules rules = rules_of(c);
  auto rows = materialize_rows(*perms, rules);
  ASSERT_TRUE(rows) << what << ": " << rows.status().to_string();
  EXPECT_EQ(rows->D, direct->D) << what;
  EXPECT_EQ(rows->neigh_idx, direct->neigh_idx) << what;
  EXPECT_EQ(rows->edge_type, direct->edge_type) << what;
  EXPECT_EQ(rows->meta.cycle_perms, direct->meta.cycle_perms) << what;

  EXPECT_EQ(rule_row_width(*perms, rules), direct->D) << what;
  for (int hops : {1, 2, 4})
    for (int64_t sources : {int64_t{0}, int64_t{5}, kMetricsSources})
      expect_same_metrics(rule_metrics(*perms, rules, hops, sources), graph::metrics(*direct, hops, sources),
                          what + " hops=" + std::to_string(hops) + " sources=" + std::to_string(sources));
}

using topo::Strategy;
INSTANTIATE_TEST_SUITE_P(
    Shapes, SpecRules,
    ::testing::Values(RuleCase{1, 1, 1, 4, 2, Strategy::kRandom, true},        // T = 1: self-loop cycle
                      RuleCase{2, 2, 1, 4, 1, Strategy::kRandom, true},        // T = 2, stride 1
                      RuleCase{5, 2, 2, 8, 2, Strategy::kRandom, true},        // T < window
                      RuleCase{7, 3, 3, 0, 0, Strategy::kEdgeDisjoint, true},  // cycles only (+ self)
                      RuleCase{13, 2, 2, 0, 3, Strategy::kRandom, false},      // window 0, landmarks
                      RuleCase{17, 2, 1, 3, 0, Strategy::kRandom, true},       // stride 0
                      RuleCase{20, 2, 2, int64_t{1} << 33, int64_t{1} << 40, Strategy::kRandom, true},  // W, S >> T
                      RuleCase{29, 3, 2, 4, 4, Strategy::kRandom, true},       // stride == window
                      RuleCase{37, 2, 3, 5, 7, Strategy::kRegularPartition, true},
                      RuleCase{64, 2, 2, 64, 64, Strategy::kRandom, true},     // default.wf rules, T = W
                      RuleCase{97, 4, 2, 8, 5, Strategy::kRandom, false},      // repeated cycle neighbours
                      RuleCase{130, 2, 4, 16, 1, Strategy::kEdgeDisjoint, true},
                      RuleCase{300, 2, 2, 6, 9, Strategy::kCovering, true}),
    [](const ::testing::TestParamInfo<RuleCase>& i) { return name_of(i.param); });

TEST(SpecRulesLower, LoweredMetricsEqualTheMaterializedAbi) {
  // Through lower(): the compile-time metrics and D of a real spec, T not a multiple of the stride.
  auto s = load_spec(std::string(BNA_SOURCE_DIR) + "/configs/graph_specs/default.wf");
  ASSERT_TRUE(s) << s.status().to_string();
  auto l = lower(normalize(*s), 1000, 3);
  ASSERT_TRUE(l) << l.status().to_string();
  auto g = materialize_rows(l->perms, l->rules);
  ASSERT_TRUE(g) << g.status().to_string();
  EXPECT_EQ(l->D, g->D);
  expect_same_metrics(l->metrics, graph::metrics(*g, 4, kMetricsSources), "default.wf T=1000 H=3");
}

}  // namespace
}  // namespace bna::spec
