// Bad-input audit of attn::plan / run / run_backward / run_compressed: every case returns a Status
// error (never a crash or a silent answer) whose message names the offending value and what was
// expected. One test per case: shape, dtype and stride mismatches, graph T or H different from
// q/k/v, unsupported head dim, out-of-range index in a hand-made graph, decode graph grown since plan,
// and backward on paths that have none.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "bna/attention.hpp"
#include "bna/decode_graph.hpp"

namespace bna {
namespace {

bool has(const std::string& s, const std::string& sub) { return s.find(sub) != std::string::npos; }

// A small valid setup: B=1, Hq=4, Hkv=2, T=9, dh=16, hand-made ABI (window 2 + self).
struct Case {
  attn::Shape s;
  graph::GraphAbi g;
  std::vector<float> q, k, v, o, lse, dq, dk, dv;
  Case() {
    s.B = 1; s.Hq = 4; s.Hkv = 2; s.Tq = 9; s.Tk = 9; s.dh = 16;
    g.H = 2; g.T = 9; g.D = 3;
    g.neigh_idx.assign(2 * 9 * 3, -1);
    g.edge_type.assign(g.neigh_idx.size(), 0);
    for (int64_t h = 0; h < 2; ++h)
      for (int64_t i = 0; i < 9; ++i) {
        int c = 0;
        for (int64_t j = std::max<int64_t>(0, i - 2); j <= i; ++j, ++c) {
          g.neigh_idx[(h * 9 + i) * 3 + c] = static_cast<int32_t>(j);
          g.edge_type[(h * 9 + i) * 3 + c] = 2;
        }
      }
    q.assign(4 * 9 * 16, 0.5f); o = q; dq = q;
    k.assign(2 * 9 * 16, 0.25f); v = k; dk = k; dv = k;
    lse.assign(4 * 9, 0.0f);
  }
  attn::GraphSource src() const { attn::GraphSource x; x.abi = &g; return x; }
  TensorView tq() { return {q.data(), DType::kF32, Shape{1, 4, 9, 16}}; }
  TensorView tk() { return {k.data(), DType::kF32, Shape{1, 2, 9, 16}}; }
  TensorView tv() { return {v.data(), DType::kF32, Shape{1, 2, 9, 16}}; }
  TensorView to() { return {o.data(), DType::kF32, Shape{1, 4, 9, 16}}; }
  TensorView tl() { return {lse.data(), DType::kF32, Shape{1, 4, 9}}; }
};

std::string plan_error(const attn::GraphSource& src, const attn::Shape& s, const attn::Options& o = {}) {
  auto p = attn::plan(src, s, o);
  return p.has_value() ? "ok" : p.status().message();
}

TEST(BadInput, ValidSetupRuns) {  // the baseline the other cases perturb
  Case x;
  auto p = attn::plan(x.src(), x.s);
  ASSERT_TRUE(p.has_value()) << p.status().to_string();
  EXPECT_TRUE(attn::run(*p, x.tq(), x.tk(), x.tv(), x.to(), x.tl()).is_ok());
}

TEST(BadInput, TensorShapeMismatchNamesBothShapes) {
  Case x;
  auto p = attn::plan(x.src(), x.s);
  ASSERT_TRUE(p.has_value());
  TensorView q(x.q.data(), DType::kF32, Shape{1, 4, 8, 16});
  const Status st = attn::run(*p, q, x.tk(), x.tv(), x.to(), x.tl());
  ASSERT_FALSE(st.is_ok());
  EXPECT_TRUE(has(st.message(), "q has shape [1, 4, 8, 16], expected [1, 4, 9, 16]")) << st.message();
  TensorView l(x.lse.data(), DType::kF32, Shape{1, 4, 8});
  const Status st2 = attn::run(*p, x.tq(), x.tk(), x.tv(), x.to(), l);
  EXPECT_TRUE(has(st2.message(), "lse has shape [1, 4, 8], expected [1, 4, 9]")) << st2.message();
}

TEST(BadInput, DtypeMismatchNamesBothDtypes) {
  Case x;
  auto p = attn::plan(x.src(), x.s);
  ASSERT_TRUE(p.has_value());
  TensorView k(x.k.data(), DType::kBF16, Shape{1, 2, 9, 16});
  const Status st = attn::run(*p, x.tq(), k, x.tv(), x.to(), x.tl());
  EXPECT_TRUE(has(st.message(), "k has dtype bf16, expected f32")) << st.message();
  TensorView l(x.lse.data(), DType::kF16, Shape{1, 4, 9});
  const Status st2 = attn::run(*p, x.tq(), x.tk(), x.tv(), x.to(), l);
  EXPECT_TRUE(has(st2.message(), "lse has dtype f16, expected f32")) << st2.message();
}

TEST(BadInput, StrideMismatchNamesStrides) {
  Case x;
  auto p = attn::plan(x.src(), x.s);
  ASSERT_TRUE(p.has_value());
  TensorView v = x.tv();
  v.strides = {2 * 9 * 16, 16, 2 * 16, 1};  // [B, T, H, dh] memory seen as [B, H, T, dh]
  const Status st = attn::run(*p, x.tq(), x.tk(), v, x.to(), x.tl());
  EXPECT_TRUE(has(st.message(), "v has strides [288, 16, 32, 1], expected contiguous [288, 144, 16, 1]")) << st.message();
}

TEST(BadInput, GraphTokensDifferFromKeys) {
  Case x;
  x.s.Tk = 10; x.s.Tq = 10;
  EXPECT_TRUE(has(plan_error(x.src(), x.s), "k has Tk=10 but graph T=9")) << plan_error(x.src(), x.s);
}

TEST(BadInput, GraphHeadsDifferFromKvHeads) {
  Case x;
  x.s.Hkv = 4;
  EXPECT_TRUE(has(plan_error(x.src(), x.s), "graph H=2 but Hkv=4")) << plan_error(x.src(), x.s);
  x.s.Hkv = 3;
  EXPECT_TRUE(has(plan_error(x.src(), x.s), "Hq=4 is not a multiple of Hkv=3")) << plan_error(x.src(), x.s);
}

TEST(BadInput, UnsupportedHeadDim) {
  Case x;
  x.s.dh = 0;
  EXPECT_TRUE(has(plan_error(x.src(), x.s), "dh=0, expected 1 <= dh <= 1024")) << plan_error(x.src(), x.s);
  x.s.dh = 4096;
  EXPECT_TRUE(has(plan_error(x.src(), x.s), "dh=4096, expected 1 <= dh <= 1024")) << plan_error(x.src(), x.s);
}

TEST(BadInput, IndexOutOfRangeInHandMadeGraph) {
  Case x;
  x.g.neigh_idx[(1 * 9 + 4) * 3 + 1] = 9;  // head 1 row 4 col 1
  EXPECT_TRUE(has(plan_error(x.src(), x.s), "graph head 1 row 4 col 1: index 9 type 2, expected index in [-1, 9)"))
      << plan_error(x.src(), x.s);
  x.g.neigh_idx[(1 * 9 + 4) * 3 + 1] = -7;
  EXPECT_TRUE(has(plan_error(x.src(), x.s), "index -7")) << plan_error(x.src(), x.s);
  x.g.neigh_idx[(1 * 9 + 4) * 3 + 1] = 3;
  x.g.edge_type[(1 * 9 + 4) * 3 + 1] = 9;
  EXPECT_TRUE(has(plan_error(x.src(), x.s), "type 9")) << plan_error(x.src(), x.s);
  // Forced decode validates the same way.
  attn::Options o;
  o.force_path = attn::Path::kDecode;
  EXPECT_TRUE(has(plan_error(x.src(), x.s, o), "type 9")) << plan_error(x.src(), x.s, o);
}

TEST(BadInput, QueryOffsetOutOfRange) {
  Case x;
  x.s.Tq = 3; x.s.q_offset = 7;
  EXPECT_TRUE(has(plan_error(x.src(), x.s), "q_offset=7 with Tq=3, expected 0 <= q_offset <= Tk - Tq = 6")) << plan_error(x.src(), x.s);
}

TEST(BadInput, BackwardShapeAndDtypeMismatch) {
  Case x;
  auto p = attn::plan(x.src(), x.s);
  ASSERT_TRUE(p.has_value());
  TensorView dk(x.dk.data(), DType::kF32, Shape{1, 4, 9, 16});
  Status st = attn::run_backward(*p, x.tq(), x.tk(), x.tv(), x.to(), x.tl(), x.tq(), x.tq(), dk, x.tk());
  EXPECT_TRUE(has(st.message(), "dk has shape [1, 4, 9, 16], expected [1, 2, 9, 16]")) << st.message();
  TensorView dout(x.q.data(), DType::kF16, Shape{1, 4, 9, 16});
  st = attn::run_backward(*p, x.tq(), x.tk(), x.tv(), x.to(), x.tl(), dout, x.tq(), x.tk(), x.tk());
  EXPECT_TRUE(has(st.message(), "dout has dtype f16, expected f32")) << st.message();
}

TEST(BadInput, BackwardOfDecodeIsANamedError) {
  Case x;
  attn::Options o;
  o.force_path = attn::Path::kDecode;
  auto p = attn::plan(x.src(), x.s, o);
  ASSERT_TRUE(p.has_value()) << p.status().to_string();
  const Status st = attn::run_backward(*p, x.tq(), x.tk(), x.tv(), x.to(), x.tl(), x.tq(), x.tq(), x.tk(), x.tk());
  EXPECT_FALSE(st.is_ok());
  EXPECT_TRUE(has(st.message(), "path decode has no CPU backward")) << st.message();
}

TEST(BadInput, DecodeGraphGrownSincePlanOrWrongSize) {
  topo::DecodeGraphOptions go;
  go.n_heads = 2; go.window = 2; go.landmark_stride = 4;
  auto dg = topo::DecodeGraph::create(go);
  ASSERT_TRUE(dg.has_value());
  ASSERT_TRUE(dg->append_many(9).is_ok());
  Case x;
  x.s.Tq = 1; x.s.q_offset = 8;
  attn::GraphSource src;
  src.decode = &*dg;
  auto p = attn::plan(src, x.s);
  ASSERT_TRUE(p.has_value()) << p.status().to_string();
  TensorView q(x.q.data(), DType::kF32, Shape{1, 4, 1, 16}), o(x.o.data(), DType::kF32, Shape{1, 4, 1, 16});
  TensorView l(x.lse.data(), DType::kF32, Shape{1, 4, 1});
  ASSERT_TRUE(attn::run(*p, q, x.tk(), x.tv(), o, l).is_ok());
  ASSERT_TRUE(dg->append().is_ok());
  const Status st = attn::run(*p, q, x.tk(), x.tv(), o, l);
  EXPECT_TRUE(has(st.message(), "decode graph has T=10 tokens but the plan has Tk=9")) << st.message();
  x.s.Tk = 9;  // graph now has 10 tokens
  EXPECT_TRUE(has(plan_error(src, x.s), "k has Tk=9 but decode graph T=10")) << plan_error(src, x.s);
  x.s.Tk = 10; x.s.q_offset = 9; x.s.Hkv = 1; x.s.Hq = 4;
  EXPECT_TRUE(has(plan_error(src, x.s), "decode graph H=2 but Hkv=1")) << plan_error(src, x.s);
  attn::Options fo;
  fo.force_path = attn::Path::kGather;
  x.s.Hkv = 2;
  EXPECT_TRUE(has(plan_error(src, x.s, fo), "force_path=gather cannot apply")) << plan_error(src, x.s, fo);
}

TEST(BadInput, GraphSourceMustSetExactlyOne) {
  Case x;
  attn::GraphSource src = x.src();
  src.dense = true;
  EXPECT_TRUE(has(plan_error(src, x.s), "sets 2 of")) << plan_error(src, x.s);
  EXPECT_TRUE(has(plan_error(attn::GraphSource{}, x.s), "sets 0 of")) << plan_error(attn::GraphSource{}, x.s);
}

TEST(BadInput, RunCompressedOnAnotherPath) {
  Case x;
  auto p = attn::plan(x.src(), x.s);
  ASSERT_TRUE(p.has_value());
  attn::CompressedCache cache;
  const Status st = attn::run_compressed(*p, x.tq(), x.tk(), x.tv(), x.to(), x.tl(), cache);
  EXPECT_TRUE(has(st.message(), "run_compressed on a plan of path")) << st.message();
  EXPECT_TRUE(has(st.message(), "expected compressed")) << st.message();
}

}  // namespace
}  // namespace bna
