// Tests for syntax tree -> GraphSpec: every section and schedule form of the grammar, the fixes to
// the original's quirks (flags, none, typed atoms, duplicates, unknown names) and semantic errors
// with line:col.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "bna/spec.hpp"

namespace bna::spec {
namespace {

GraphSpec parse_ok(const std::string& body) {
  auto s = parse_spec("(butterfly " + body + ")", "t.wf");
  EXPECT_TRUE(s) << s.status().to_string();
  return s ? *s : GraphSpec{};
}

TEST(SpecIr, DefaultsWithEmptyRoot) {
  const GraphSpec s = parse_ok("");
  const GraphSpec d;
  EXPECT_EQ(s.strategy, topo::Strategy::kRandom);
  EXPECT_EQ(s.seed, d.seed);
  EXPECT_EQ(s.num_cycles, 1);
  EXPECT_EQ(s.window_size, 32);
  EXPECT_EQ(s.landmark_stride, 64);
  EXPECT_TRUE(s.permute_window_enabled);
  EXPECT_EQ(s.permute_window_size, 32);
  EXPECT_FALSE(s.degree.has_value());
}

TEST(SpecIr, LegacyRootName) {
  auto s = parse_spec("(wayfinder (degree 8))");
  ASSERT_TRUE(s) << s.status().to_string();
  EXPECT_EQ(*s->degree, 8);
}

TEST(SpecIr, EverySection) {
  const GraphSpec s = parse_ok(
      "(degree 128)"
      "(backbone (cycle :type regular_partition :seed 7 :k 3 :clusters 5))"
      "(local (window :size 48))"
      "(highways (landmarks :stride 32))"
      "(bias (edge_logit_bias :cycle 0.5 :window (schedule linear 0 -1 :steps 10) :landmark (schedule const 2)"
      "  :rewire none))"
      "(permute_window :enabled false :window 16)");
  EXPECT_EQ(*s.degree, 128);
  EXPECT_EQ(s.strategy, topo::Strategy::kRegularPartition);
  EXPECT_EQ(s.seed, 7u);
  EXPECT_EQ(s.num_cycles, 3);
  EXPECT_EQ(s.regular_num_clusters, 5);
  EXPECT_EQ(s.window_size, 48);
  EXPECT_FALSE(s.window_schedule);
  EXPECT_EQ(s.landmark_stride, 32);
  ASSERT_TRUE(s.edge_bias.cycle);
  EXPECT_EQ(s.edge_bias.cycle->kind, Schedule::Kind::kConstant);
  EXPECT_DOUBLE_EQ(s.edge_bias.cycle->end, 0.5);
  ASSERT_TRUE(s.edge_bias.window);
  EXPECT_EQ(s.edge_bias.window->kind, Schedule::Kind::kLinear);
  EXPECT_DOUBLE_EQ(s.edge_bias.window->end, -1.0);
  EXPECT_EQ(s.edge_bias.window->steps, 10);
  ASSERT_TRUE(s.edge_bias.landmark);
  EXPECT_DOUBLE_EQ(s.edge_bias.landmark->start, 2.0);
  EXPECT_FALSE(s.edge_bias.rewire);
  EXPECT_FALSE(s.permute_window_enabled);
  EXPECT_EQ(s.permute_window_size, 16);
}

TEST(SpecIr, EveryStrategyName) {
  for (const char* name : {"random", "greedy", "online_insertion", "regular_partition", "edge_disjoint", "covering"}) {
    const GraphSpec s = parse_ok(std::string("(backbone (cycle :type ") + name + "))");
    EXPECT_STREQ(topo::strategy_name(s.strategy), name);
  }
  // A quoted strategy name is accepted too.
  EXPECT_EQ(parse_ok("(backbone (cycle :type \"covering\" :coverage 0.5))").coverage_target, 0.5);
}

TEST(SpecIr, RoutingKeys) {
  GraphSpec s = parse_ok("(backbone (cycle :type greedy :routing_dim 16 :routing_seed 3))");
  EXPECT_EQ(s.routing.dim, 16);
  EXPECT_EQ(s.routing.seed, 3u);
  EXPECT_TRUE(s.routing.seed_set);
  s = parse_ok("(backbone (cycle :type online_insertion :routing \"r.npy\"))");
  EXPECT_EQ(s.routing.npy_path, "r.npy");
}

TEST(SpecIr, WindowScheduleSetsCompiledWindow) {
  const GraphSpec s = parse_ok("(local (window :size (schedule :linear 64 16 :steps 2000)))");
  ASSERT_TRUE(s.window_schedule);
  EXPECT_EQ(s.window_size, 64);
  EXPECT_DOUBLE_EQ(s.window_schedule->end, 16);
  EXPECT_EQ(s.window_schedule->steps, 2000);
  EXPECT_DOUBLE_EQ(s.window_schedule->value(0), 64);
  EXPECT_DOUBLE_EQ(s.window_schedule->value(1999), 16);
  EXPECT_DOUBLE_EQ(s.window_schedule->value(999), 64 + (999.0 / 1999.0) * (16 - 64));
  EXPECT_DOUBLE_EQ(s.window_schedule->value(5000), 16);
}

TEST(SpecIr, NoneMeansOff) {
  EXPECT_EQ(parse_ok("(local (window :size none))").window_size, 0);
  EXPECT_EQ(parse_ok("(highways (landmarks :stride nil))").landmark_stride, 0);
  EXPECT_EQ(parse_ok("(highways (landmarks :stride OFF))").landmark_stride, 0);
  EXPECT_FALSE(parse_ok("(bias (edge_logit_bias :cycle none))").edge_bias.cycle);
}

TEST(SpecIr, BareFlagDoesNotSwallowNextKey) {
  // The original read :enabled = ":window" here and failed; a bare key is a true flag.
  const GraphSpec s = parse_ok("(permute_window :enabled :window 8)");
  EXPECT_TRUE(s.permute_window_enabled);
  EXPECT_EQ(s.permute_window_size, 8);
  EXPECT_TRUE(parse_ok("(permute_window :window 8 :enabled)").permute_window_enabled);
}

TEST(SpecIr, CommentsEverywhere) {
  const GraphSpec s = parse_ok(
      "; c\n(backbone ; c\n (cycle ; c\n :seed ; c\n 9 ; c\n))\n(local (window :size 5 ; c\n))");
  EXPECT_EQ(s.seed, 9u);
  EXPECT_EQ(s.window_size, 5);
}

TEST(SpecIr, LocationsRecorded) {
  auto s = parse_spec("(butterfly\n  (local (window :size 12)))", "x.wf");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->locs.at("window_size").line, 2);
  EXPECT_EQ(s->locs.at("window_size").col, 24);
}

struct BadSpec {
  const char* name;
  const char* text;
  const char* where;
  const char* what;
};

class SpecIrErrors : public ::testing::TestWithParam<BadSpec> {};

TEST_P(SpecIrErrors, PointsAtTheNode) {
  const BadSpec& b = GetParam();
  auto s = parse_spec(b.text, "spec.wf");
  ASSERT_FALSE(s) << b.name;
  const std::string msg = s.status().message();
  EXPECT_EQ(msg.rfind(std::string("spec.wf:") + b.where + ": ", 0), 0u) << b.name << ": " << msg;
  EXPECT_NE(msg.find(b.what), std::string::npos) << b.name << ": " << msg;
}

INSTANTIATE_TEST_SUITE_P(
    Semantic, SpecIrErrors,
    ::testing::Values(
        BadSpec{"wrong_root", "(graph)", "1:2", "(butterfly ...)"},
        BadSpec{"empty_root", "()", "1:1", "(butterfly ...)"},
        BadSpec{"quoted_root", "(\"butterfly\")", "1:2", "(butterfly ...)"},
        BadSpec{"stray_atom", "(butterfly foo)", "1:12", "expected a section"},
        BadSpec{"empty_section", "(butterfly ())", "1:12", "start with its name"},
        BadSpec{"unknown_section", "(butterfly\n  (rewire :p 0.1))", "2:4", "unknown section (rewire)"},
        BadSpec{"duplicate_section", "(butterfly (degree 4)\n (degree 5))", "2:2", "duplicate section (degree), first given at 1:12"},
        BadSpec{"degree_float", "(butterfly (degree 6.5))", "1:20", "(degree N) takes one integer"},
        BadSpec{"backbone_not_cycle", "(butterfly (backbone (path)))", "1:23", "takes (cycle ...)"},
        BadSpec{"backbone_empty", "(butterfly (backbone ()))", "1:22", "takes (cycle ...)"},
        BadSpec{"backbone_atom", "(butterfly (backbone cycle))", "1:12", "exactly one (cycle ...)"},
        BadSpec{"backbone_extra", "(butterfly (backbone (cycle) (cycle)))", "1:30", "exactly one (cycle ...)"},
        BadSpec{"unknown_key", "(butterfly (backbone (cycle :kk 2)))", "1:29", "unknown key :kk"},
        BadSpec{"duplicate_key", "(butterfly (backbone (cycle :k 1 :k 2)))", "1:34", "duplicate key :k"},
        BadSpec{"not_a_key", "(butterfly (backbone (cycle random)))", "1:29", "expected a :key"},
        BadSpec{"bad_strategy", "(butterfly (backbone (cycle :type zigzag)))", "1:35", "zigzag"},
        BadSpec{"quoted_int", "(butterfly (backbone (cycle :k \"2\")))", "1:32", "expected an integer for :k, got string"},
        BadSpec{"float_for_int", "(butterfly (backbone (cycle :k 7.9)))", "1:32", "got number 7.9"},
        BadSpec{"bool_for_int", "(butterfly (backbone (cycle :seed true)))", "1:35", "expected an integer >= 0"},
        BadSpec{"negative_seed", "(butterfly (backbone (cycle :seed -1)))", "1:35", ":seed=-1, expected >= 0"},
        BadSpec{"flag_needs_value", "(butterfly (backbone (cycle :seed)))", "1:29", ":seed needs a value"},
        BadSpec{"routing_not_string", "(butterfly (backbone (cycle :routing r.npy)))", "1:38", "quoted .npy path"},
        BadSpec{"window_missing_size", "(butterfly (local (window)))", "1:20", "needs :size"},
        BadSpec{"window_wrong_head", "(butterfly (local (size 4)))", "1:20", "takes (window ...)"},
        BadSpec{"window_fraction_schedule", "(butterfly (local (window :size (schedule :linear 64.5 16))))", "1:33",
                "whole number"},
        BadSpec{"stride_string", "(butterfly (highways (landmarks :stride \"64\")))", "1:41", "integer or none"},
        BadSpec{"bias_symbol", "(butterfly (bias (edge_logit_bias :cycle big)))", "1:42", "expected a number for :cycle"},
        BadSpec{"bias_unknown_slot", "(butterfly (bias (edge_logit_bias :gate 1)))", "1:35", "unknown key :gate"},
        BadSpec{"schedule_wrong_head", "(butterfly (bias (edge_logit_bias :cycle (ramp 1 2))))", "1:42", "expected (schedule ...)"},
        BadSpec{"schedule_no_kind", "(butterfly (bias (edge_logit_bias :cycle (schedule))))", "1:42", "needs a kind"},
        BadSpec{"schedule_bad_kind", "(butterfly (bias (edge_logit_bias :cycle (schedule :cosine 1 2))))", "1:52",
                "unknown schedule kind"},
        BadSpec{"linear_short", "(butterfly (bias (edge_logit_bias :cycle (schedule :linear 1))))", "1:52", "needs START END"},
        BadSpec{"linear_steps_zero", "(butterfly (bias (edge_logit_bias :cycle (schedule :linear 1 2 :steps 0))))", "1:71",
                ":steps=0"},
        BadSpec{"linear_junk", "(butterfly (bias (edge_logit_bias :cycle (schedule :linear 1 2 foo))))", "1:64",
                "expected a :key"},
        BadSpec{"constant_extra", "(butterfly (bias (edge_logit_bias :cycle (schedule :constant 1 2))))", "1:52",
                "exactly one value"},
        BadSpec{"enabled_not_bool", "(butterfly (permute_window :enabled maybe))", "1:37", "expected true or false"}),
    [](const ::testing::TestParamInfo<BadSpec>& i) { return std::string(i.param.name); });

TEST(SpecIr, IrJsonHasEveryField) {
  const GraphSpec s = parse_ok("(local (window :size (schedule :linear 8 4 :steps 3)))");
  const auto j = nlohmann::json::parse(ir_json(s));
  for (const char* k : {"degree", "strategy", "seed", "num_cycles", "window_size", "window_schedule", "landmark_stride",
                        "edge_bias", "permute_window_enabled", "permute_window_size"})
    EXPECT_TRUE(j.contains(k)) << k;
  EXPECT_EQ(j["window_schedule"]["kind"], "linear");
  EXPECT_EQ(j["window_schedule"]["steps"], 3);
}

}  // namespace
}  // namespace bna::spec
