// Row construction tests: the reference worked example, priority upgrades, and property sweeps that
// compare build_heads against a naive literal implementation of the first-insertion rule.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <string>

#include "bna/graph.hpp"
#include "bna/rng.hpp"

namespace bna::graph {
namespace {

using Perm = std::vector<int32_t>;
constexpr uint8_t C = 1, W = 2, L = 3, R = 4;

Perm random_perm(int64_t T, Rng& rng) {
  Perm p(static_cast<size_t>(T));
  std::iota(p.begin(), p.end(), 0);
  rng.shuffle(p);
  return p;
}

struct NaiveRow {
  std::vector<int32_t> idx;
  std::vector<uint8_t> ty;
  void add(int32_t j, uint8_t t) {
    auto it = std::find(idx.begin(), idx.end(), j);
    if (it == idx.end()) {
      idx.push_back(j);
      ty.push_back(t);
      return;
    }
    uint8_t& cur = ty[it - idx.begin()];
    if (edge_priority(EdgeType(t)) > edge_priority(EdgeType(cur))) cur = t;
  }
};

// Literal transcription of the reference rules (original-core.md 4.3).
std::vector<NaiveRow> naive_rows(const RowRules& r, const std::vector<Perm>& perms,
                                 const std::vector<std::vector<int32_t>>* rewire) {
  const int64_t T = r.T;
  std::vector<std::vector<int32_t>> adj(T);
  for (const Perm& p : perms)
    for (int64_t pos = 0; pos < T; ++pos) {
      const int32_t a = p[pos], b = p[(pos + 1) % T];
      adj[a].push_back(b);
      adj[b].push_back(a);
    }
  std::vector<NaiveRow> rows(T);
  for (int64_t i = 0; i < T; ++i) {
    auto& a = adj[i];
    std::sort(a.begin(), a.end());
    a.erase(std::unique(a.begin(), a.end()), a.end());
    NaiveRow& row = rows[i];
    for (int32_t j : a) row.add(j, C);
    if (r.window > 0)
      for (int64_t j = std::max<int64_t>(0, i - r.window); j < i; ++j) row.add(int32_t(j), W);
    if (r.landmark_stride > 0)
      for (int64_t j = 0; j < i; j += r.landmark_stride) row.add(int32_t(j), L);
    if (rewire && !rewire->empty())
      for (int32_t j : (*rewire)[i]) row.add(j, R);
    if (r.include_self) row.add(int32_t(i), W);
  }
  return rows;
}

void expect_matches_naive(const GraphAbi& g, int64_t h, const std::vector<NaiveRow>& rows, const std::string& cfg) {
  for (int64_t i = 0; i < g.T; ++i) {
    const NaiveRow& n = rows[i];
    ASSERT_LE(static_cast<int64_t>(n.idx.size()), g.D) << cfg << " row " << i;
    for (int64_t k = 0; k < g.D; ++k) {
      const int32_t want_i = k < int64_t(n.idx.size()) ? n.idx[k] : -1;
      const uint8_t want_t = k < int64_t(n.ty.size()) ? n.ty[k] : 0;
      ASSERT_EQ(g.row(h, i)[k], want_i) << cfg << " head " << h << " row " << i << " col " << k;
      ASSERT_EQ(g.row_types(h, i)[k], want_t) << cfg << " head " << h << " row " << i << " col " << k;
    }
  }
}

std::vector<int32_t> row_idx(const GraphAbi& g, int64_t h, int64_t i) {
  std::vector<int32_t> v;
  for (int64_t k = 0; k < g.D && g.row(h, i)[k] != -1; ++k) v.push_back(g.row(h, i)[k]);
  return v;
}
std::vector<uint8_t> row_ty(const GraphAbi& g, int64_t h, int64_t i) {
  std::vector<uint8_t> v;
  for (int64_t k = 0; k < g.D && g.row(h, i)[k] != -1; ++k) v.push_back(g.row_types(h, i)[k]);
  return v;
}

TEST(AbiRows, WorkedExampleFromReference) {
  RowRules r{.T = 6, .window = 2, .landmark_stride = 2, .include_self = true};
  auto g = build_head(r, {{0, 3, 1, 5, 2, 4}});
  ASSERT_TRUE(g) << g.status().to_string();
  EXPECT_EQ(g->H, 1);
  EXPECT_EQ(g->D, 6);
  EXPECT_EQ(row_idx(*g, 0, 0), (std::vector<int32_t>{3, 4, 0}));
  EXPECT_EQ(row_ty(*g, 0, 0), (std::vector<uint8_t>{C, C, W}));
  EXPECT_EQ(row_idx(*g, 0, 3), (std::vector<int32_t>{0, 1, 2, 3}));
  EXPECT_EQ(row_ty(*g, 0, 3), (std::vector<uint8_t>{C, C, L, W}));
  EXPECT_EQ(row_idx(*g, 0, 5), (std::vector<int32_t>{1, 2, 3, 4, 0, 5}));
  EXPECT_EQ(row_ty(*g, 0, 5), (std::vector<uint8_t>{C, C, W, L, L, W}));
  // Row 0 has 3 entries, padded to D=6.
  EXPECT_EQ(g->row(0, 0)[3], -1);
  EXPECT_EQ(g->row_types(0, 0)[5], 0);
  EXPECT_TRUE(validate(*g).is_ok()) << validate(*g).to_string();
}

TEST(AbiRows, EdgeTypeNamesAndPriorities) {
  EXPECT_STREQ(edge_type_name(EdgeType::kPad), "pad");
  EXPECT_STREQ(edge_type_name(EdgeType::kCycle), "cycle");
  EXPECT_STREQ(edge_type_name(EdgeType::kWindow), "window");
  EXPECT_STREQ(edge_type_name(EdgeType::kLandmark), "landmark");
  EXPECT_STREQ(edge_type_name(EdgeType::kRewire), "rewire");
  EXPECT_LT(edge_priority(EdgeType::kPad), edge_priority(EdgeType::kWindow));
  EXPECT_LT(edge_priority(EdgeType::kWindow), edge_priority(EdgeType::kLandmark));
  EXPECT_LT(edge_priority(EdgeType::kLandmark), edge_priority(EdgeType::kRewire));
  EXPECT_LT(edge_priority(EdgeType::kRewire), edge_priority(EdgeType::kCycle));
}

TEST(AbiRows, RewireUpgradesKeepPosition) {
  // Identity cycle over 8 nodes; row 6: cycle {5,7}, window 3 -> 3,4 (5 is cycle), landmark stride 4
  // -> 0 (new), 4 (upgrade W->L); rewires 4 (L->R), 5 (stays C), 1 (new R), 6 (self as R, stays R).
  RowRules r{.T = 8, .window = 3, .landmark_stride = 4, .include_self = true};
  std::vector<std::vector<int32_t>> rw(8);
  rw[6] = {4, 5, 1, 6, 1};
  auto g = build_head(r, {{0, 1, 2, 3, 4, 5, 6, 7}}, &rw);
  ASSERT_TRUE(g) << g.status().to_string();
  EXPECT_EQ(row_idx(*g, 0, 6), (std::vector<int32_t>{5, 7, 3, 4, 0, 1, 6}));
  EXPECT_EQ(row_ty(*g, 0, 6), (std::vector<uint8_t>{C, C, W, R, L, R, R}));
  // Rows without rewires are untouched by other rows' rewires: row 5 = cycle 4,6; window 2,3; 0 (L); self.
  EXPECT_EQ(row_idx(*g, 0, 5), (std::vector<int32_t>{4, 6, 2, 3, 0, 5}));
  EXPECT_EQ(row_ty(*g, 0, 5), (std::vector<uint8_t>{C, C, W, W, L, W}));
}

TEST(AbiRows, TinyTokenCounts) {
  RowRules r{.T = 1, .window = 4, .landmark_stride = 1, .include_self = true};
  auto g1 = build_head(r, {{0}});
  ASSERT_TRUE(g1);
  EXPECT_EQ(g1->D, 1);
  EXPECT_EQ(row_idx(*g1, 0, 0), (std::vector<int32_t>{0}));
  EXPECT_EQ(row_ty(*g1, 0, 0), (std::vector<uint8_t>{C}));  // self is its own cycle neighbour at T=1
  r.T = 2;
  auto g2 = build_head(r, {{1, 0}});
  ASSERT_TRUE(g2);
  EXPECT_EQ(row_idx(*g2, 0, 0), (std::vector<int32_t>{1, 0}));
  EXPECT_EQ(row_ty(*g2, 0, 0), (std::vector<uint8_t>{C, W}));
  EXPECT_EQ(row_idx(*g2, 0, 1), (std::vector<int32_t>{0, 1}));
  EXPECT_EQ(row_ty(*g2, 0, 1), (std::vector<uint8_t>{C, W}));
}

TEST(AbiRows, EmptyRowsGiveDOne) {
  RowRules r{.T = 3, .window = 0, .landmark_stride = 0, .include_self = false};
  auto g = build_heads(r, {{}});
  ASSERT_TRUE(g);
  EXPECT_EQ(g->D, 1);
  for (int64_t i = 0; i < 3; ++i) {
    EXPECT_EQ(g->row(0, i)[0], -1);
    EXPECT_EQ(g->row_types(0, i)[0], 0);
  }
}

TEST(AbiRows, ArgumentErrors) {
  RowRules r{.T = 4, .window = 1, .landmark_stride = 0, .include_self = true};
  auto e1 = build_head(RowRules{.T = 0}, {});
  ASSERT_FALSE(e1);
  EXPECT_NE(e1.status().message().find("T=0"), std::string::npos);
  auto e2 = build_head(RowRules{.T = 4, .window = -1}, {});
  ASSERT_FALSE(e2);
  EXPECT_NE(e2.status().message().find("window=-1"), std::string::npos);
  auto e3 = build_head(RowRules{.T = 4, .landmark_stride = -2}, {});
  ASSERT_FALSE(e3);
  EXPECT_NE(e3.status().message().find("landmark_stride=-2"), std::string::npos);
  auto e4 = build_head(r, {{0, 1, 2}});
  ASSERT_FALSE(e4);
  EXPECT_NE(e4.status().message().find("perm length 3"), std::string::npos);
  auto e5 = build_head(r, {{0, 1, 1, 3}});
  ASSERT_FALSE(e5);
  EXPECT_NE(e5.status().message().find("node 1 repeated"), std::string::npos);
  auto e6 = build_head(r, {{0, 1, 2, 4}});
  ASSERT_FALSE(e6);
  EXPECT_NE(e6.status().message().find("node 4 out of range"), std::string::npos);
  std::vector<std::vector<int32_t>> rw(4);
  rw[2] = {7};
  auto e7 = build_head(r, {{0, 1, 2, 3}}, &rw);
  ASSERT_FALSE(e7);
  EXPECT_NE(e7.status().message().find("rewire row 2"), std::string::npos);
  std::vector<std::vector<int32_t>> rw_short(3);
  auto e8 = build_head(r, {{0, 1, 2, 3}}, &rw_short);
  ASSERT_FALSE(e8);
  auto e9 = build_heads(r, {});
  ASSERT_FALSE(e9);
}

struct SweepCase {
  int64_t T, window, stride;
  int cycles;
  bool self;
  uint64_t seed;
  bool rewires;
};
std::string case_name(const SweepCase& c) {
  return "T" + std::to_string(c.T) + "_W" + std::to_string(c.window) + "_S" + std::to_string(c.stride) + "_C" +
         std::to_string(c.cycles) + (c.self ? "_self" : "_noself") + "_seed" + std::to_string(c.seed) +
         (c.rewires ? "_rewire" : "");
}

class AbiRowsSweep : public ::testing::TestWithParam<SweepCase> {};

TEST_P(AbiRowsSweep, MatchesNaiveAndHasProperties) {
  const SweepCase& c = GetParam();
  const std::string cfg = case_name(c);
  const int64_t H = 3;
  Rng rng(c.seed);
  std::vector<std::vector<Perm>> perms(H);
  std::vector<std::vector<std::vector<int32_t>>> rewire(H);
  for (int64_t h = 0; h < H; ++h) {
    for (int k = 0; k < c.cycles; ++k) perms[h].push_back(random_perm(c.T, rng));
    if (c.rewires && h != 1) {  // head 1 has no rewires at all
      rewire[h].resize(c.T);
      for (int64_t i = 0; i < c.T; ++i)
        if (rng.uniform_below(3) == 0)
          for (uint64_t k = rng.uniform_below(4); k > 0; --k)
            rewire[h][i].push_back(static_cast<int32_t>(rng.uniform_below(c.T)));
    }
  }
  RowRules r{.T = c.T, .window = c.window, .landmark_stride = c.stride, .include_self = c.self};
  auto g = build_heads(r, perms, c.rewires ? &rewire : nullptr);
  ASSERT_TRUE(g) << cfg << ": " << g.status().to_string();
  ASSERT_EQ(g->H, H);
  ASSERT_EQ(g->T, c.T);
  ASSERT_EQ(static_cast<int64_t>(g->neigh_idx.size()), H * c.T * g->D);
  int64_t longest = 1;
  for (int64_t h = 0; h < H; ++h) {
    auto rows = naive_rows(r, perms[h], c.rewires ? &rewire[h] : nullptr);
    for (const auto& row : rows) longest = std::max<int64_t>(longest, row.idx.size());
    expect_matches_naive(*g, h, rows, cfg);
    if (HasFatalFailure()) return;
  }
  EXPECT_EQ(g->D, longest) << cfg;
  // Every cycle node has the degree-2 backbone (1 at T=2), and the graph validates.
  const Status v = validate(*g);
  EXPECT_TRUE(v.is_ok()) << cfg << ": " << v.to_string();
  if (c.cycles == 1 && c.T > 2)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < c.T; ++i) {
        int cyc = 0;
        for (int64_t k = 0; k < g->D; ++k) cyc += g->row_types(h, i)[k] == C;
        ASSERT_EQ(cyc, 2) << cfg << " head " << h << " row " << i;
      }
  // Deterministic: same inputs, same bytes; and build_head of one head equals that head's slice.
  auto g2 = build_heads(r, perms, c.rewires ? &rewire : nullptr);
  ASSERT_TRUE(g2);
  EXPECT_EQ(g->neigh_idx, g2->neigh_idx) << cfg;
  EXPECT_EQ(g->edge_type, g2->edge_type) << cfg;
  auto one = build_head(r, perms[1], nullptr);
  ASSERT_TRUE(one);
  for (int64_t i = 0; i < c.T; ++i)
    for (int64_t k = 0; k < g->D; ++k)
      ASSERT_EQ(k < one->D ? one->row(0, i)[k] : -1, g->row(1, i)[k]) << cfg << " row " << i;
}

std::vector<SweepCase> sweep_cases() {
  std::vector<SweepCase> v;
  for (int64_t T : {1, 2, 3, 4, 5, 7, 64, 1000})
    for (uint64_t seed : {1ull, 2ull, 3ull}) {
      v.push_back({T, 2, 2, 1, true, seed, false});
      v.push_back({T, 5, 3, 2, seed != 2, seed, false});
      v.push_back({T, 0, 0, 3, true, seed, false});
      v.push_back({T, 16, 7, 1, true, seed, true});
    }
  v.push_back({64, 100, 1, 2, true, 9, true});  // window longer than T, every node a landmark
  return v;
}

INSTANTIATE_TEST_SUITE_P(Sweep, AbiRowsSweep, ::testing::ValuesIn(sweep_cases()),
                         [](const auto& info) { return case_name(info.param); });

TEST(StackHeads, PadsToLargestDAndConcatenatesMeta) {
  RowRules small{.T = 6, .window = 1, .landmark_stride = 0, .include_self = true};
  RowRules big{.T = 6, .window = 2, .landmark_stride = 2, .include_self = true};
  auto a = build_head(small, {{0, 1, 2, 3, 4, 5}});
  auto b = build_head(big, {{0, 3, 1, 5, 2, 4}});
  ASSERT_TRUE(a && b);
  ASSERT_LT(a->D, b->D);
  auto s = stack_heads({*a, *b});
  ASSERT_TRUE(s) << s.status().to_string();
  EXPECT_EQ(s->H, 2);
  EXPECT_EQ(s->D, b->D);
  for (int64_t i = 0; i < 6; ++i)
    for (int64_t k = 0; k < s->D; ++k) {
      EXPECT_EQ(s->row(0, i)[k], k < a->D ? a->row(0, i)[k] : -1);
      EXPECT_EQ(s->row_types(0, i)[k], k < a->D ? a->row_types(0, i)[k] : 0);
      EXPECT_EQ(s->row(1, i)[k], b->row(0, i)[k]);
      EXPECT_EQ(s->row_types(1, i)[k], b->row_types(0, i)[k]);
    }
  ASSERT_EQ(s->meta.cycle_perms.size(), 2u);
  EXPECT_EQ(s->meta.cycle_perms[1][0], (std::vector<int32_t>{0, 3, 1, 5, 2, 4}));
  EXPECT_TRUE(validate(*s, {.expect_heads = 2, .expect_tokens = 6}).is_ok());

  RowRules other{.T = 5, .window = 1};
  auto c = build_head(other, {{0, 1, 2, 3, 4}});
  ASSERT_TRUE(c);
  auto bad = stack_heads({*a, *c});
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.status().message().find("T=5"), std::string::npos);
  EXPECT_FALSE(stack_heads({}));
}

}  // namespace
}  // namespace bna::graph
