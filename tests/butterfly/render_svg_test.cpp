// SVG mask pictures: structure (one document, legend, axis labels), the per-type pair counts in the
// legend against a direct count, aggregation past kRenderMaxCells, run merging, and errors.
#include <gtest/gtest.h>

#include <regex>
#include <string>

#include "bna/butterfly.hpp"
#include "bna/render.hpp"

namespace bna::graph {
namespace {

int64_t count_of(const std::string& s, const std::string& needle) {
  int64_t n = 0;
  for (size_t p = s.find(needle); p != std::string::npos; p = s.find(needle, p + 1)) ++n;
  return n;
}

topo::ButterflyOptions opts() {
  topo::ButterflyOptions o;
  o.layer = 1;
  o.rule = topo::PartnerRule::kXor;
  o.partner_count = 2;
  o.local_blocks = 1;
  o.sink_count = 1;
  return o;
}

// A hand-made 1-head graph with one entry of each type.
GraphAbi tiny() {
  GraphAbi g;
  g.H = 1;
  g.T = 4;
  g.D = 2;
  g.neigh_idx = {0, -1, 0, 1, 1, 3, 2, 0};
  g.edge_type = {2, 0, 3, 1, 4, 1, 2, 3};
  return g;
}

TEST(RenderMask, LegendCountsMatchCausalPairs) {
  const GraphAbi g = tiny();
  auto causal = render_mask_svg(g, 0, 0, 4, 0, 4, true);
  ASSERT_TRUE(causal) << causal.status().to_string();
  const std::string& s = *causal;
  EXPECT_EQ(s.rfind("<?xml", 0), 0u);
  EXPECT_EQ(count_of(s, "<svg"), 1);
  EXPECT_EQ(count_of(s, "</svg>"), 1);
  // Causal pairs: (0,0) window, (1,0) landmark, (1,1) cycle, (2,1) rewire, (3,2) window, (3,0) landmark;
  // (2,3) is dropped as non-causal.
  EXPECT_NE(s.find("cycle (1)"), std::string::npos) << s;
  EXPECT_NE(s.find("rewire (1)"), std::string::npos);
  EXPECT_NE(s.find("landmark (2)"), std::string::npos);
  EXPECT_NE(s.find("window (2)"), std::string::npos);
  EXPECT_NE(s.find("key j"), std::string::npos);
  EXPECT_NE(s.find("query i"), std::string::npos);
  EXPECT_NE(s.find("masked (key &gt; query)"), std::string::npos);
  auto all = render_mask_svg(g, 0, 0, 4, 0, 4, false);
  ASSERT_TRUE(all);
  EXPECT_NE(all->find("cycle (2)"), std::string::npos);
  EXPECT_EQ(all->find("masked"), std::string::npos);
}

TEST(RenderMask, SubRangeCountsOnlyItsPairs) {
  auto g = topo::butterfly_token_graph(200, 16, 2, opts());
  ASSERT_TRUE(g);
  int64_t want[kNumEdgeTypes] = {0, 0, 0, 0, 0};
  for (int64_t i = 50; i < 120; ++i)
    for (int64_t d = 0; d < g->D; ++d) {
      const int64_t j = g->row(1, i)[d];
      if (j >= 10 && j < 90 && j <= i) want[g->row_types(1, i)[d]]++;
    }
  auto s = render_mask_svg(*g, 1, 50, 120, 10, 90, true);
  ASSERT_TRUE(s) << s.status().to_string();
  EXPECT_NE(s->find("window (" + std::to_string(want[2]) + ")"), std::string::npos);
  EXPECT_NE(s->find("landmark (" + std::to_string(want[3]) + ")"), std::string::npos);
  EXPECT_NE(s->find("rewire (" + std::to_string(want[4]) + ")"), std::string::npos);
  EXPECT_GT(want[2] + want[3] + want[4], 0);
  // Runs are merged: far fewer rects than pairs.
  EXPECT_LT(count_of(*s, "<rect"), want[2] + want[3] + want[4]);
}

TEST(RenderMask, AggregatesLongRanges) {
  auto g = topo::butterfly_token_graph(3000, 64, 1, opts());
  ASSERT_TRUE(g);
  auto s = render_mask_svg(*g, 0, 0, 3000, 0, 3000, true);
  ASSERT_TRUE(s) << s.status().to_string();
  EXPECT_NE(s->find("1 cell = 3 x 3 pairs"), std::string::npos);
  EXPECT_NE(s->find("fill-opacity"), std::string::npos);
  // Every cell rect stays inside the 800-pixel plot (x0 = 80, y0 = 90).
  const std::regex rect("<rect x=\"([0-9.]+)\" y=\"([0-9.]+)\" width=\"([0-9.]+)\" height=\"([0-9.]+)\" fill=\"#");
  int64_t n = 0;
  for (auto it = std::sregex_iterator(s->begin(), s->end(), rect); it != std::sregex_iterator(); ++it, ++n) {
    const double x = std::stod((*it)[1]), w = std::stod((*it)[3]);
    if (x >= 80 && x < 880) {
      ASSERT_LE(x + w, 880.01) << it->str();
    }
  }
  EXPECT_GT(n, 100);
}

TEST(RenderMask, ErrorsNameTheArgument) {
  const GraphAbi g = tiny();
  EXPECT_NE(render_mask_svg(g, 1, 0, 4, 0, 4, true).status().message().find("head=1"), std::string::npos);
  EXPECT_NE(render_mask_svg(g, 0, 3, 2, 0, 4, true).status().message().find("rows=[3, 2)"), std::string::npos);
  EXPECT_NE(render_mask_svg(g, 0, 0, 4, 0, 5, true).status().message().find("cols=[0, 5)"), std::string::npos);
  GraphAbi bad = g;
  bad.neigh_idx.pop_back();
  EXPECT_FALSE(render_mask_svg(bad, 0, 0, 4, 0, 4, true));
}

TEST(RenderBlockLayout, CountsBlocks) {
  auto L = topo::butterfly_block_layout(1000, 64, 2, opts());  // N = 16
  ASSERT_TRUE(L);
  auto s = render_block_layout_svg(*L, 1);
  ASSERT_TRUE(s) << s.status().to_string();
  const int64_t nnz = L->indptr[17 + 16];
  EXPECT_NE(s->find("self block (16)"), std::string::npos) << *s;
  EXPECT_NE(s->find("attended block (" + std::to_string(nnz - 16) + ")"), std::string::npos);
  EXPECT_NE(s->find("query block"), std::string::npos);
  EXPECT_FALSE(render_block_layout_svg(*L, 2));
  auto bad = *L;
  bad.n_blocks = 3;
  EXPECT_FALSE(render_block_layout_svg(bad, 0));
}

}  // namespace
}  // namespace bna::graph
