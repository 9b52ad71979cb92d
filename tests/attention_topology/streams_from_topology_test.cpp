// Streams planned from a Topology (cycle permutations, no ABI) must equal streams planned from the
// same topology's ABI graph: the same StreamsGraph, and bit-identical forward outputs.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "attention/cpu/kernels.hpp"
#include "bna/attention.hpp"
#include "bna/attention_check.hpp"
#include "bna/rng.hpp"
#include "bna/topology.hpp"

namespace bna {
namespace {

struct Case {
  int64_t H, T, W, S, cycles;
  topo::Strategy strategy;
};

topo::Topology make_topology(const Case& c) {
  topo::TopologyOptions o;
  o.n_heads = c.H;
  o.num_cycles = c.cycles;
  o.window = c.W;
  o.landmark_stride = c.S;
  o.strategy = c.strategy;
  o.seed = 11;
  auto t = topo::Topology::create(o);
  EXPECT_TRUE(t.has_value()) << t.status().message();
  return std::move(t).value();
}

class FromTopology : public ::testing::TestWithParam<Case> {};

TEST_P(FromTopology, StreamsGraphEqualsTheAbiRoute) {
  const Case c = GetParam();
  const topo::Topology t = make_topology(c);
  auto perms = t.construct_perms_only(c.T);
  ASSERT_TRUE(perms.has_value()) << perms.status().message();
  auto abi = t.construct(c.T);
  ASSERT_TRUE(abi.has_value()) << abi.status().message();
  auto a = cpu::streams_from_abi(*abi, c.W, c.S);
  auto b = cpu::streams_from_perms(*perms, c.W, c.S);
  ASSERT_TRUE(a.has_value()) << a.status().message();
  ASSERT_TRUE(b.has_value()) << b.status().message();
  EXPECT_EQ(a->C, b->C);
  EXPECT_EQ(a->typed_landmarks, b->typed_landmarks);
  EXPECT_EQ(a->extra, b->extra);
  EXPECT_EQ(a->extra_type, b->extra_type);
  EXPECT_EQ(a->band_override, b->band_override);
  EXPECT_EQ(a->band_override_type, b->band_override_type);
  EXPECT_EQ(a->landmark_override, b->landmark_override);
  EXPECT_EQ(a->landmark_override_type, b->landmark_override_type);
}

TEST_P(FromTopology, ForwardEqualsAbiPlanAndPassesTheOracle) {
  const Case c = GetParam();
  const topo::Topology t = make_topology(c);
  auto abi = t.construct(c.T);
  ASSERT_TRUE(abi.has_value());
  attn::Shape s;
  s.Hq = 2 * c.H; s.Hkv = c.H; s.Tq = c.T; s.Tk = c.T; s.dh = 16;
  attn::Options opt;
  opt.use_edge_bias = true;
  opt.edge_bias = {0.0f, 0.7f, -0.2f, 0.4f, 0.1f};
  attn::GraphSource ts, as;
  ts.topology = &t;
  as.abi = &*abi;
  auto pt = attn::plan(ts, s, opt);
  auto pa = attn::plan(as, s, opt);
  ASSERT_TRUE(pt.has_value()) << pt.status().message();
  ASSERT_TRUE(pa.has_value()) << pa.status().message();
  EXPECT_EQ(pt->path, attn::Path::kStreams) << pt->reason;
  ASSERT_EQ(pa->path, attn::Path::kStreams) << pa->reason;
  const int64_t nq = s.Hq * s.Tq * s.dh, nk = s.Hkv * s.Tk * s.dh;
  std::vector<float> q(nq), k(nk), v(nk), o1(nq), o2(nq), l1(s.Hq * s.Tq), l2(s.Hq * s.Tq);
  Rng rng(5);
  for (auto* x : {&q, &k, &v})
    for (float& e : *x) e = static_cast<float>(rng.normal());
  TensorView tq(q.data(), DType::kF32, {1, s.Hq, s.Tq, s.dh}), tk(k.data(), DType::kF32, {1, s.Hkv, s.Tk, s.dh}),
      tv(v.data(), DType::kF32, {1, s.Hkv, s.Tk, s.dh});
  ASSERT_TRUE(attn::run(*pt, tq, tk, tv, TensorView(o1.data(), DType::kF32, {1, s.Hq, s.Tq, s.dh}),
                        TensorView(l1.data(), DType::kF32, {1, s.Hq, s.Tq})).is_ok());
  ASSERT_TRUE(attn::run(*pa, tq, tk, tv, TensorView(o2.data(), DType::kF32, {1, s.Hq, s.Tq, s.dh}),
                        TensorView(l2.data(), DType::kF32, {1, s.Hq, s.Tq})).is_ok());
  EXPECT_EQ(o1, o2);
  EXPECT_EQ(l1, l2);
  std::vector<attn::RowRef> rows;
  for (int64_t h = 0; h < s.Hq; ++h)
    for (int64_t i = 0; i < s.Tq; ++i) rows.push_back({h, i});
  auto rep = attn::check_rows(as, s, opt, q.data(), k.data(), v.data(), o1.data(), l1.data(), rows);
  ASSERT_TRUE(rep.has_value()) << rep.status().message();
  EXPECT_TRUE(rep->pass) << rep->why << " out " << rep->out_max_err << "/" << rep->out_max_bound << " lse "
                         << rep->lse_max_err << "/" << rep->lse_max_bound;
}

INSTANTIATE_TEST_SUITE_P(Topologies, FromTopology,
                         ::testing::Values(Case{1, 1, 4, 4, 1, topo::Strategy::kRandom},
                                           Case{2, 7, 2, 3, 1, topo::Strategy::kRandom},
                                           Case{2, 61, 8, 8, 1, topo::Strategy::kRandom},
                                           Case{3, 257, 16, 16, 2, topo::Strategy::kRandom},
                                           Case{2, 130, 0, 5, 3, topo::Strategy::kEdgeDisjoint},
                                           Case{1, 200, 32, 0, 2, topo::Strategy::kRegularPartition},
                                           Case{2, 99, 7, 1, 1, topo::Strategy::kCovering}));

TEST(FromTopologyErrors, RoutingStrategiesHeadMismatchAndForcedPathAreErrors) {
  attn::Shape s;
  s.Hq = 2; s.Hkv = 2; s.Tq = 16; s.Tk = 16; s.dh = 8;
  attn::GraphSource src;
  const topo::Topology greedy = make_topology({2, 16, 4, 4, 1, topo::Strategy::kGreedy});
  src.topology = &greedy;
  EXPECT_FALSE(attn::plan(src, s).has_value());
  const topo::Topology three = make_topology({3, 16, 4, 4, 1, topo::Strategy::kRandom});
  src.topology = &three;
  auto p = attn::plan(src, s);
  ASSERT_FALSE(p.has_value());
  EXPECT_NE(p.status().message().find("n_heads=3"), std::string::npos) << p.status().message();
  const topo::Topology two = make_topology({2, 16, 4, 4, 1, topo::Strategy::kRandom});
  src.topology = &two;
  attn::Options opt;
  opt.force_path = attn::Path::kGather;
  EXPECT_FALSE(attn::plan(src, s, opt).has_value());
  attn::GraphSource both = src;
  both.dense = true;
  EXPECT_FALSE(attn::plan(both, s).has_value());
}

}  // namespace
}  // namespace bna
