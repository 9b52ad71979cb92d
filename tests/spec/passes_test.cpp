// Tests for the IR passes: normalize, validate (with source locations), lowering for every strategy
// (seeded and .npy routing for greedy / online insertion), the degree bound, permute-window and
// dispatch specialization.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "bna/npy.hpp"
#include "bna/rng.hpp"
#include "bna/spec.hpp"

namespace bna::spec {
namespace {

GraphSpec spec_of(const std::string& body) {
  auto s = parse_spec("(butterfly " + body + ")", "p.wf");
  EXPECT_TRUE(s) << s.status().to_string();
  return s ? normalize(*s) : GraphSpec{};
}

TEST(SpecPasses, NormalizeCanonicalizesUnusedFields) {
  GraphSpec s = spec_of("(backbone (cycle :type random :k 1 :clusters 3 :coverage 0.5 :routing_dim 9 :edge_disjoint false))"
                        "(permute_window :enabled false :window 16)");
  const GraphSpec d;
  EXPECT_EQ(s.regular_num_clusters, d.regular_num_clusters);
  EXPECT_EQ(s.coverage_target, d.coverage_target);
  EXPECT_EQ(s.routing.dim, d.routing.dim);
  EXPECT_TRUE(s.edge_disjoint);  // only meaningful for random with k > 1
  EXPECT_EQ(s.permute_window_size, 0);
  // Seeded routing takes the backbone seed unless :routing_seed is given.
  s = spec_of("(backbone (cycle :type greedy :seed 5))");
  EXPECT_TRUE(s.routing.seed_set);
  EXPECT_EQ(s.routing.seed, 5u);
  // Idempotent.
  const GraphSpec again = normalize(s);
  EXPECT_EQ(ir_json(again), ir_json(s));
}

struct BadValue {
  const char* name;
  const char* body;
  const char* what;
};

class SpecValidate : public ::testing::TestWithParam<BadValue> {};

TEST_P(SpecValidate, RejectsWithLocation) {
  const GraphSpec s = spec_of(GetParam().body);
  const Status st = validate(s);
  ASSERT_FALSE(st.is_ok()) << GetParam().name;
  EXPECT_EQ(st.message().rfind("p.wf:1:", 0), 0u) << st.message();
  EXPECT_NE(st.message().find(GetParam().what), std::string::npos) << st.message();
}

INSTANTIATE_TEST_SUITE_P(
    Ranges, SpecValidate,
    ::testing::Values(BadValue{"degree0", "(degree 0)", "degree=0"},
                      BadValue{"k0", "(backbone (cycle :k 0))", ":k=0"},
                      BadValue{"online_k2", "(backbone (cycle :type online_insertion :k 2))", "exactly one cycle"},
                      BadValue{"window_neg", "(local (window :size -1))", "window=-1"},
                      BadValue{"stride_neg", "(highways (landmarks :stride -4))", "stride=-4"},
                      BadValue{"pw_zero", "(permute_window :enabled true :window 0)", "expected >= 1 when enabled"},
                      BadValue{"clusters0", "(backbone (cycle :type regular_partition :clusters 0))", ":clusters=0"},
                      BadValue{"coverage", "(backbone (cycle :type covering :coverage 1.5))", ":coverage="},
                      BadValue{"routing_dim", "(backbone (cycle :type greedy :routing_dim 0))", ":routing_dim=0"}),
    [](const ::testing::TestParamInfo<BadValue>& i) { return std::string(i.param.name); });

TEST(SpecPasses, ShippedSpecsValidate) {
  for (const char* f : {"default.wf", "long_context.wf"}) {
    auto s = load_spec(std::string(BNA_SOURCE_DIR) + "/configs/graph_specs/" + f);
    ASSERT_TRUE(s) << s.status().to_string();
    EXPECT_TRUE(validate(normalize(*s)).is_ok()) << f;
  }
}

// Perms are permutations with inverses; the rows they give (materialized here, never by lower) are a
// valid graph with the Hamiltonian backbone, of width D, with the lowered metrics.
void check_lowered(const Lowered& l, int64_t T, int64_t H, int64_t k) {
  EXPECT_EQ(l.perms.H, H);
  EXPECT_EQ(l.perms.T, T);
  EXPECT_EQ(l.perms.num_cycles, k);
  EXPECT_EQ(l.rules.T, T);
  EXPECT_EQ(l.meta.num_cycles, k);
  auto g = materialize_rows(l.perms, l.rules);
  ASSERT_TRUE(g) << g.status().to_string();
  EXPECT_EQ(g->H, H);
  EXPECT_EQ(g->D, l.D);
  EXPECT_TRUE(graph::validate(*g, {H, T, true}).is_ok());
  EXPECT_EQ(graph::metrics(*g, 4, kMetricsSources).reachability_proxy, l.metrics.reachability_proxy);
  for (int64_t h = 0; h < H; ++h)
    for (int64_t c = 0; c < k; ++c) {
      const int32_t* p = l.perms.perm_of(h, c);
      const int32_t* inv = l.perms.inv_of(h, c);
      EXPECT_TRUE(topo::validate_perm(topo::Perm(p, p + T), T).is_ok());
      for (int64_t i = 0; i < T; ++i) ASSERT_EQ(inv[p[i]], i);
      EXPECT_EQ(topo::Perm(p, p + T), g->meta.cycle_perms[h][c]);
    }
}

struct StrategyCase {
  const char* name;
  const char* backbone;
  int64_t k;
};

class SpecLowerStrategy : public ::testing::TestWithParam<StrategyCase> {};

TEST_P(SpecLowerStrategy, BuildsValidGraphDeterministically) {
  const StrategyCase& c = GetParam();
  const GraphSpec s = spec_of(std::string("(backbone (cycle ") + c.backbone + "))(local (window :size 4))"
                              "(highways (landmarks :stride 8))");
  ASSERT_TRUE(validate(s).is_ok());
  const int64_t T = 37, H = 3;
  auto a = lower(s, T, H);
  ASSERT_TRUE(a) << c.name << ": " << a.status().to_string();
  check_lowered(*a, T, H, c.k > 0 ? c.k : a->perms.num_cycles);  // covering: k is an upper bound
  auto b = lower(s, T, H);
  ASSERT_TRUE(b);
  EXPECT_EQ(a->perms.perm, b->perms.perm) << c.name << " is not deterministic";
  EXPECT_EQ(a->D, b->D);
}

INSTANTIATE_TEST_SUITE_P(
    All, SpecLowerStrategy,
    ::testing::Values(StrategyCase{"random_k1", ":type random :k 1", 1},
                      StrategyCase{"random_k3_disjoint", ":type random :k 3", 3},
                      StrategyCase{"random_k2_independent", ":type random :k 2 :edge_disjoint false", 2},
                      StrategyCase{"edge_disjoint", ":type edge_disjoint :k 4", 4},
                      StrategyCase{"regular_partition", ":type regular_partition :k 2 :clusters 4", 2},
                      StrategyCase{"covering", ":type covering :k 3 :coverage 0.1", 0},
                      StrategyCase{"greedy_seeded", ":type greedy :k 2 :routing_dim 8", 2},
                      StrategyCase{"online_seeded", ":type online_insertion :routing_dim 8 :routing_seed 1", 1}),
    [](const ::testing::TestParamInfo<StrategyCase>& i) { return std::string(i.param.name); });

TEST(SpecPasses, CoveringCycleCountIsUniformAcrossHeads) {
  auto l = lower(spec_of("(backbone (cycle :type covering :k 3 :coverage 0.1))"), 37, 3);
  ASSERT_TRUE(l) << l.status().to_string();
  EXPECT_GE(l->perms.num_cycles, 1);
  check_lowered(*l, 37, 3, l->perms.num_cycles);
}

TEST(SpecPasses, SeedChangesRandomGraph) {
  auto a = lower(spec_of("(backbone (cycle :seed 1))"), 64, 2);
  auto b = lower(spec_of("(backbone (cycle :seed 2))"), 64, 2);
  ASSERT_TRUE(a && b);
  EXPECT_NE(a->perms.perm, b->perms.perm);
}

TEST(SpecPasses, RoutingFromNpyFile) {
  const auto dir = std::filesystem::temp_directory_path() / ("bna_spec_routing_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const int64_t T = 20, d = 4, H = 2;
  std::vector<float> r(T * d);
  Rng rng(3);
  for (float& x : r) x = static_cast<float>(rng.normal());
  ASSERT_TRUE(io::write_npy((dir / "r.npy").string(), io::NpyType::kF32, {T, d}, r.data()).is_ok());
  const std::string text = "(butterfly (backbone (cycle :type greedy :routing \"r.npy\")))";
  ASSERT_TRUE(io::write_npy((dir / "bad.npy").string(), io::NpyType::kF32, {T + 1, d}, std::vector<float>((T + 1) * d).data()).is_ok());
  {
    std::ofstream((dir / "g.wf").string()) << text;
    std::ofstream((dir / "bad.wf").string()) << "(butterfly (backbone (cycle :type greedy :routing \"bad.npy\")))";
    std::ofstream((dir / "missing.wf").string()) << "(butterfly (backbone (cycle :type greedy :routing \"nope.npy\")))";
  }
  auto s = load_spec((dir / "g.wf").string());
  ASSERT_TRUE(s);
  auto l = lower(normalize(*s), T, H);
  ASSERT_TRUE(l) << l.status().to_string();
  check_lowered(*l, T, H, 1);
  // The file is shared by all heads and greedy is deterministic given the vectors; the tours of the
  // two heads start at different nodes (start = h for cycle 0) but cover the same routing.
  auto bad = load_spec((dir / "bad.wf").string());
  ASSERT_TRUE(bad);
  auto lb = lower(normalize(*bad), T, H);
  ASSERT_FALSE(lb);
  EXPECT_NE(lb.status().message().find("expected <f4 [T=20, d]"), std::string::npos) << lb.status().message();
  auto missing = load_spec((dir / "missing.wf").string());
  ASSERT_TRUE(missing);
  EXPECT_FALSE(lower(normalize(*missing), T, H));
  EXPECT_FALSE(cache_key(normalize(*missing), T, H));
  std::filesystem::remove_all(dir);
}

TEST(SpecPasses, LowerChecksSizesUpFront) {
  const GraphSpec s = spec_of("(backbone (cycle :k 2))");
  EXPECT_FALSE(lower(s, 0, 1));
  EXPECT_FALSE(lower(s, 16, 0));
  auto small = lower(s, 4, 1);  // 2 edge-disjoint cycles need T >= 5
  ASSERT_FALSE(small);
  EXPECT_NE(small.status().message().find("need T >= 5, got T=4"), std::string::npos) << small.status().message();
  EXPECT_TRUE(lower(s, 5, 1));
  EXPECT_TRUE(lower(spec_of(""), 1, 1));  // T = 1: a single self-loop cycle
}

TEST(SpecPasses, DegreeIsAnUpperBound) {
  const std::string body = "(local (window :size 64)) (highways (landmarks :stride 64)) (backbone (cycle :k 2))";
  auto ok = lower(spec_of("(degree 70) " + body), 128, 2);
  ASSERT_TRUE(ok) << ok.status().to_string();
  EXPECT_LE(ok->D, 70);
  auto over = lower(spec_of("(degree 50) " + body), 128, 2);
  ASSERT_FALSE(over);
  EXPECT_EQ(over.status().message().rfind("p.wf:1:20: degree=50 but the graph for T=128 has D=", 0), 0u)
      << over.status().message();
}

TEST(SpecPasses, PermuteWindowIndex) {
  const GraphSpec s = spec_of("(permute_window :enabled true :window 2)");
  const PermuteWindow pw = specialize_permute_window(s, 7, 1 << 20);
  ASSERT_TRUE(pw.enabled);
  EXPECT_EQ(pw.W, 5);
  ASSERT_EQ(pw.window_idx.size(), 35u);
  const std::vector<int32_t> row0 = {0, 0, 0, 1, 2}, row6 = {4, 5, 6, 6, 6};
  EXPECT_EQ(std::vector<int32_t>(pw.window_idx.begin(), pw.window_idx.begin() + 5), row0);
  EXPECT_EQ(std::vector<int32_t>(pw.window_idx.begin() + 30, pw.window_idx.end()), row6);
  EXPECT_TRUE(specialize_permute_window(s, 7, 100).window_idx.empty());  // over the byte limit: derived at load
  EXPECT_FALSE(specialize_permute_window(spec_of("(permute_window :enabled false)"), 7, 1 << 20).enabled);
}

TEST(SpecPasses, Dispatch) {
  EXPECT_EQ(specialize_dispatch(spec_of("")).path, "permute_window");
  const Dispatch st = specialize_dispatch(spec_of("(permute_window :enabled false)"));
  EXPECT_EQ(st.path, "streams");
  EXPECT_NE(st.reason.find("causal window W=32"), std::string::npos) << st.reason;
  const Dispatch g1 = specialize_dispatch(
      spec_of("(permute_window :enabled false) (local (window :size 0)) (highways (landmarks :stride none))"));
  EXPECT_EQ(g1.path, "gather");
  EXPECT_NE(g1.reason.find("no window and no landmarks"), std::string::npos);
  const Dispatch g2 = specialize_dispatch(spec_of("(permute_window :enabled false) (backbone (cycle :k 9))"));
  EXPECT_EQ(g2.path, "gather");
  EXPECT_NE(g2.reason.find("9 cycles"), std::string::npos) << g2.reason;
}

}  // namespace
}  // namespace bna::spec
