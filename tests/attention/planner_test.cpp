// Planner and API contract: path choice and recorded reason per graph source, forced paths that
// cannot apply are errors (never a silent fallback), shape/tensor mismatches name the value, and
// streams_from_abi accepts exactly the band + landmarks + extras rows.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "attention/cpu/kernels.hpp"
#include "attn_oracle.hpp"
#include "bna/attention.hpp"

namespace bna::test {
namespace {

using attn::Path;

attn::Shape shape_of(int64_t T, int64_t Hq = 4, int64_t Hkv = 2, int64_t dh = 64) {
  attn::Shape s;
  s.Hq = Hq; s.Hkv = Hkv; s.Tq = T; s.Tk = T; s.dh = dh;
  return s;
}

bool contains(const std::string& s, const std::string& sub) { return s.find(sub) != std::string::npos; }

TEST(Planner, PicksPathFromSource) {
  const int64_t T = 97;
  attn::GraphSource d;
  d.dense = true;
  auto p = attn::plan(d, shape_of(T));
  ASSERT_TRUE(p);
  EXPECT_EQ(p->path, Path::kDense);

  const auto P = make_perms(2, T, 2, 1);
  attn::GraphSource sp;
  sp.perms = &P;
  p = attn::plan(sp, shape_of(T));
  ASSERT_TRUE(p);
  EXPECT_EQ(p->path, Path::kPermuteWindow);

  const auto L = make_blocks(2, T, 16);
  attn::GraphSource sb;
  sb.blocks = &L;
  p = attn::plan(sb, shape_of(T));
  ASSERT_TRUE(p);
  EXPECT_EQ(p->path, Path::kBlockSparse);

  const auto g = butterfly_abi(2, T, 8, 8, 1, 3);
  attn::GraphSource sa;
  sa.abi = &g;
  p = attn::plan(sa, shape_of(T));
  ASSERT_TRUE(p);
  EXPECT_EQ(p->path, Path::kStreams) << p->reason;
  EXPECT_GT(p->workspace_bytes, 0u);
}

TEST(Planner, ManyExtrasGoToGatherWithReason) {
  // 6 cycles -> up to 12 scattered neighbours per row: more than the streams extras limit (8).
  const int64_t T = 200;
  const auto g = butterfly_abi(2, T, 4, 16, 6, 3);
  attn::GraphSource sa;
  sa.abi = &g;
  auto p = attn::plan(sa, shape_of(T));
  ASSERT_TRUE(p);
  EXPECT_EQ(p->path, Path::kGather);
  EXPECT_TRUE(contains(p->reason, "C=")) << p->reason;
  // Forcing streams still works (the partition holds, it is only slower).
  attn::Options o;
  o.force_path = Path::kStreams;
  p = attn::plan(sa, shape_of(T), o);
  ASSERT_TRUE(p) << p.status().to_string();
  EXPECT_EQ(p->path, Path::kStreams);
}

TEST(Planner, ForcedPathThatCannotApplyIsAnError) {
  const int64_t T = 50;
  const auto g = butterfly_abi(2, T, 4, 0, 1, 3, /*include_self=*/false);
  attn::GraphSource sa;
  sa.abi = &g;
  attn::Options o;
  o.force_path = Path::kStreams;
  auto p = attn::plan(sa, shape_of(T), o);
  ASSERT_FALSE(p);
  EXPECT_TRUE(contains(p.status().message(), "force_path=streams")) << p.status().message();
  EXPECT_TRUE(contains(p.status().message(), "band key")) << p.status().message();
  o.force_path = Path::kDense;
  EXPECT_FALSE(attn::plan(sa, shape_of(T), o));
  o.force_path = Path::kPermuteWindow;
  EXPECT_FALSE(attn::plan(sa, shape_of(T), o));
  attn::GraphSource d;
  d.dense = true;
  o.force_path = Path::kGather;
  EXPECT_FALSE(attn::plan(d, shape_of(T), o));
  o.force_path = Path::kCompressed;
  EXPECT_FALSE(attn::plan(d, shape_of(T), o));
}

TEST(Planner, TypedLandmarkKeepsItsTypeOnStreams) {
  // A cycle neighbour that lands on a landmark outside the band is typed CYCLE: streams must carry
  // that type (landmark_override) so edge bias matches gather.
  const int64_t T = 300;
  for (uint64_t seed = 0; seed < 20; ++seed) {
    const auto g = butterfly_abi(1, T, 4, 4, 2, seed);
    auto sg = cpu::streams_from_abi(g, 4, 4);
    ASSERT_TRUE(sg) << sg.status().to_string();
    if (sg->typed_landmarks == 0) continue;
    EXPECT_EQ(sg->landmark_override_type[std::distance(
                  sg->landmark_override.begin(),
                  std::find_if(sg->landmark_override.begin(), sg->landmark_override.end(), [](int32_t x) { return x >= 0; }))],
              1);
    attn::GraphSource sa;
    sa.abi = &g;
    attn::Options o;
    o.use_edge_bias = true;
    o.edge_bias = {0, 2.0f, -0.5f, 0.25f, 0};
    auto p = attn::plan(sa, shape_of(T, 2, 1), o);
    ASSERT_TRUE(p);
    EXPECT_EQ(p->path, Path::kStreams) << p->reason;
    return;
  }
  GTEST_SKIP() << "no seed produced a typed landmark";
}

TEST(Planner, ShapeErrorsNameTheValue) {
  const auto g = butterfly_abi(2, 64, 4, 4, 1, 3);
  attn::GraphSource sa;
  sa.abi = &g;
  auto s = shape_of(63);
  auto p = attn::plan(sa, s);
  ASSERT_FALSE(p);
  EXPECT_TRUE(contains(p.status().message(), "Tk=63")) << p.status().message();
  EXPECT_TRUE(contains(p.status().message(), "graph T=64")) << p.status().message();
  s = shape_of(64, 4, 3);
  p = attn::plan(sa, s);
  ASSERT_FALSE(p);
  EXPECT_TRUE(contains(p.status().message(), "Hkv=3")) << p.status().message();
  s = shape_of(64, 4, 4);
  p = attn::plan(sa, s);
  ASSERT_FALSE(p);
  EXPECT_TRUE(contains(p.status().message(), "graph H=2")) << p.status().message();
  s = shape_of(64);
  s.Tq = 10;
  s.q_offset = 60;
  p = attn::plan(sa, s);
  ASSERT_FALSE(p);
  EXPECT_TRUE(contains(p.status().message(), "q_offset=60")) << p.status().message();
  attn::GraphSource none;
  EXPECT_FALSE(attn::plan(none, shape_of(64)));
  attn::GraphSource two;
  two.abi = &g;
  two.dense = true;
  EXPECT_FALSE(attn::plan(two, shape_of(64)));
}

TEST(Planner, BadGraphContentIsRejected) {
  auto g = butterfly_abi(1, 16, 2, 0, 1, 3);
  g.neigh_idx[5] = 16;
  attn::GraphSource sa;
  sa.abi = &g;
  auto p = attn::plan(sa, shape_of(16, 1, 1));
  ASSERT_FALSE(p);
  EXPECT_TRUE(contains(p.status().message(), "index 16")) << p.status().message();
  auto P = make_perms(1, 16, 1, 2);
  P.inv[0] = (P.inv[0] + 1) % 16;
  attn::GraphSource sp;
  sp.perms = &P;
  EXPECT_FALSE(attn::plan(sp, shape_of(16, 1, 1)));
}

TEST(Run, TensorMismatchNamesTheArgument) {
  attn::GraphSource d;
  d.dense = true;
  const auto s = shape_of(8, 2, 1, 16);
  auto p = attn::plan(d, s);
  ASSERT_TRUE(p);
  std::vector<float> q(2 * 8 * 16), k(8 * 16), v(8 * 16), o(2 * 8 * 16), l(2 * 8);
  TensorView tq(q.data(), DType::kF32, {1, 2, 8, 16}), tk(k.data(), DType::kF32, {1, 1, 8, 16});
  TensorView tv(v.data(), DType::kF32, {1, 1, 8, 16}), to(o.data(), DType::kF32, {1, 2, 8, 16});
  TensorView tl(l.data(), DType::kF32, {1, 2, 8});
  EXPECT_TRUE(attn::run(*p, tq, tk, tv, to, tl).is_ok());
  TensorView bad(k.data(), DType::kF32, {1, 1, 7, 16});
  const Status st = attn::run(*p, tq, bad, tv, to, tl);
  ASSERT_FALSE(st.is_ok());
  EXPECT_TRUE(contains(st.message(), "k has shape [1, 1, 7, 16]")) << st.message();
  TensorView bf(q.data(), DType::kBF16, {1, 2, 8, 16});
  EXPECT_FALSE(attn::run(*p, bf, tk, tv, to, tl).is_ok());
}

TEST(StreamsFromAbi, ExtrasAndOverridesPartitionTheRow) {
  const int64_t T = 150, W = 6, S = 5;
  const auto g = butterfly_abi(2, T, W, S, 2, 12);
  auto sg = cpu::streams_from_abi(g, W, S);
  ASSERT_TRUE(sg) << sg.status().to_string();
  EXPECT_LE(sg->C, 4);
  for (int64_t h = 0; h < 2; ++h)
    for (int64_t i = 0; i < T; ++i) {
      // |row| = |band| + |landmarks outside band| + |extras| + |later keys| (j > i: dropped, never attended)
      int64_t deg = 0, later = 0;
      while (deg < g.D && g.row(h, i)[deg] >= 0) later += g.row(h, i)[deg++] > i;
      const int64_t lo = std::max<int64_t>(0, i - W);
      int64_t nex = 0;
      while (nex < sg->C && sg->extra[(h * T + i) * sg->C + nex] >= 0) ++nex;
      EXPECT_EQ(deg, (i - lo + 1) + (lo + S - 1) / S + nex + later) << "h=" << h << " i=" << i;
      for (int64_t c = 0; c < nex; ++c) {
        const int32_t j = sg->extra[(h * T + i) * sg->C + c];
        EXPECT_TRUE(j < lo && j % S != 0) << "extra " << j << " at row " << i;
        EXPECT_EQ(sg->extra_type[(h * T + i) * sg->C + c], 1);
      }
    }
  // Wrong W: the band check fails with a message naming head and row.
  auto bad = cpu::streams_from_abi(g, W + 1, S);
  ASSERT_FALSE(bad);
  EXPECT_TRUE(contains(bad.status().message(), "head 0 row")) << bad.status().message();
}

}  // namespace
}  // namespace bna::test
