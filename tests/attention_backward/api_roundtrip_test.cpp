// End-to-end check through the public API: attn::run (the forward kernels) must agree with the
// reference rows of bwd_reference.hpp (so the backward's row sets are the forward's), and
// attn::run_backward, fed the forward's own out/lse, must match the float64 reference gradients.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "bna/attention.hpp"
#include "bwd_reference.hpp"

namespace bna {
namespace {

double max_err(const std::vector<float>& a, const std::vector<double>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double e = std::abs(static_cast<double>(a[i]) - b[i]);
    if (!std::isfinite(e)) return INFINITY;
    m = std::max(m, e);
  }
  return m;
}

struct ApiCase { std::string name; attn::GraphSource src; testref::RowSpec spec; attn::Options opt; };

void check(const ApiCase& c, const testref::Dims& d, Rng& rng) {
  const auto q = testref::randn(static_cast<size_t>(d.Hq * d.Tq * d.dh), rng);
  const auto k = testref::randn(static_cast<size_t>(d.Hkv * d.Tk * d.dh), rng);
  const auto v = testref::randn(k.size(), rng);
  const auto dout = testref::randn(q.size(), rng);
  attn::Shape sh;
  sh.B = 1; sh.Hq = d.Hq; sh.Hkv = d.Hkv; sh.Tq = d.Tq; sh.Tk = d.Tk; sh.dh = d.dh; sh.q_offset = d.q_offset;
  auto plan = attn::plan(c.src, sh, c.opt);
  ASSERT_TRUE(plan.has_value()) << c.name << ": " << plan.status().to_string();
  std::vector<float> out(q.size()), lse(static_cast<size_t>(d.Hq * d.Tq));
  std::vector<float> dq(q.size()), dk(k.size()), dv(v.size());
  float dbias[5] = {0, 0, 0, 0, 0};
  auto tv = [](const std::vector<float>& x, Shape s) { return TensorView(const_cast<float*>(x.data()), DType::kF32, s); };
  const Shape qs{1, d.Hq, d.Tq, d.dh}, ks{1, d.Hkv, d.Tk, d.dh}, ls{1, d.Hq, d.Tq};
  ASSERT_TRUE(attn::run(*plan, tv(q, qs), tv(k, ks), tv(v, ks), tv(out, qs), tv(lse, ls)).is_ok()) << c.name;
  ASSERT_TRUE(attn::run_backward(*plan, tv(q, qs), tv(k, ks), tv(v, ks), tv(out, qs), tv(lse, ls), tv(dout, qs),
                                 tv(dq, qs), tv(dk, ks), tv(dv, ks), dbias).is_ok()) << c.name;

  const auto q64 = testref::widen(q), k64 = testref::widen(k), v64 = testref::widen(v);
  std::vector<double> b64(c.opt.edge_bias.begin(), c.opt.edge_bias.end());
  const double* bias = c.opt.use_edge_bias ? b64.data() : nullptr;
  std::vector<double> o64, l64;
  testref::forward<double>(d, c.spec, q64, k64, v64, bias, o64, l64);
  const auto g64 = testref::backward<double>(d, c.spec, q64, k64, v64, bias, testref::widen(dout));
  // Semantics check, not a precision check: f32 kernels vs float64 on O(1) values.
  EXPECT_LE(max_err(out, o64), 1e-4) << c.name << " forward out";
  EXPECT_LE(max_err(dq, g64.dq), 1e-3) << c.name << " dq";
  EXPECT_LE(max_err(dk, g64.dk), 1e-3) << c.name << " dk";
  EXPECT_LE(max_err(dv, g64.dv), 1e-3) << c.name << " dv";
  if (c.opt.use_edge_bias && c.name != "dense" && c.name != "block_sparse")
    for (int t = 1; t < 5; ++t) EXPECT_NEAR(dbias[t], g64.dbias[t], 1e-3) << c.name << " d_bias[" << t << "]";
}

TEST(ApiRoundTrip, ForwardRowsAndBackwardMatchReference) {
  Rng rng(2024);
  testref::Dims d;
  d.Hkv = 2; d.Hq = 4; d.Tq = 37; d.Tk = 37; d.dh = 16;
  d.scale = 0.25;
  attn::Options opt;
  opt.use_edge_bias = true;
  opt.edge_bias = {0.0f, 0.4f, -0.3f, 0.6f, -0.5f};

  const auto abi = testref::random_abi(d.Hkv, d.Tk, 7, rng, {5, 20});
  const auto perms = testref::random_perms(d.Hkv, d.Tk, 3, rng);
  const auto blocks = testref::random_blocks(d.Hkv, d.Tk, 4, rng);
  std::vector<ApiCase> cases;
  {
    ApiCase c{"dense", {}, testref::dense_rows(d, opt.edge_bias[2]), opt};
    c.src.dense = true;
    c.opt.force_path = attn::Path::kDense;
    cases.push_back(c);
  }
  {
    ApiCase c{"gather", {}, testref::gather_rows(d, abi), opt};
    c.src.abi = &abi;
    c.opt.force_path = attn::Path::kGather;
    cases.push_back(c);
  }
  for (int mode = 0; mode < 3; ++mode) {
    ApiCase c{mode == 0 ? "permute_average" : mode == 1 ? "permute_union" : "permute_circular", {}, {}, opt};
    c.src.perms = &perms;
    c.opt.permute_window = 3;
    c.opt.multi_cycle_mode = mode == 1 ? attn::MultiCycleMode::kUnionLogMultiplicity : attn::MultiCycleMode::kAverage;
    c.opt.circular = mode == 2;
    c.spec = testref::permute_rows(d, perms, 3, mode != 1, mode == 2);
    cases.push_back(c);
  }
  {
    ApiCase c{"block_sparse", {}, testref::block_rows(d, blocks, opt.edge_bias[2]), opt};
    c.src.blocks = &blocks;
    cases.push_back(c);
  }
  for (auto& c : cases) {
    c.opt.scale = static_cast<float>(d.scale);
    check(c, d, rng);
  }
}

}  // namespace
}  // namespace bna
