// GPU forward of the graph paths (block-sparse, permute-window, gather) through plan/run with
// Backend::kCuda, against a float64 reference over each row's explicit key list, written here from the
// semantics of docs/numerics.md independently of the kernels.
// Pass rule (docs/numerics.md): max|out - ref64| <= 2 * max|ref_lp - ref64| + floor(dtype), on out and
// lse, plus the same on the mean error with floor/4; -inf lse must match exactly (empty rows, out = 0);
// NaN/Inf never passes (outputs are NaN-poisoned first). ref_lp repeats the kernels' rounding points:
// dtype inputs, f32 scores and sums, P rounded to the dtype before P V on the tensor-core paths
// (block-sparse, permute-window one cycle / average) and not on the warp-per-row paths (gather,
// permute-window union); average mode adds f32 per-cycle outputs and rounds once.
// Every GPU test skips with a reason when no CUDA device is present; argument checks run anyway.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "bna/attention.hpp"
#include "bna/block_layout.hpp"
#include "bna/butterfly.hpp"
#include "bna/dtype.hpp"
#include "bna/rng.hpp"
#include "bna/threads.hpp"
#include "bna/topology.hpp"

#ifdef BNA_HAVE_CUDA
#include "attention/cuda/device_memory.hpp"
#include "attention/cuda/launch.hpp"
#include "graph_cases.hpp"

namespace {

using bna::DType;
namespace attn = bna::attn;
namespace topo = bna::topo;
using namespace bna::test::cuda_paths;

class AttnFwdPathsCuda : public ::testing::TestWithParam<Case> {};

TEST_P(AttnFwdPathsCuda, MatchesFloat64Reference) {
  if (!bna::cuda::device_available()) GTEST_SKIP() << "no CUDA device (cudaGetDeviceCount reports none)";
  const Case c = GetParam();
  const int64_t Hkv = c.group == 8 ? 1 : 2;
  const int64_t B = c.T <= 257 ? 2 : 1, Hq = Hkv * c.group, T = c.T, dh = c.dh;
  bna::Rng rng(0xa11ce000u + static_cast<uint64_t>(T * 131 + dh * 7 + c.group + c.Bs * 1009 + c.w * 17 + c.cycles * 3) +
               static_cast<uint64_t>(c.kind) * 1000003u + (c.dtype == DType::kF16 ? 77u : 0u));
  const Graph g = make_graph(c, Hkv, rng);

  attn::GraphSource src;
  attn::Options opt;
  plan_inputs(c, g, src, opt);
  attn::Shape shape;
  shape.B = B; shape.Hq = Hq; shape.Hkv = Hkv; shape.Tq = shape.Tk = T; shape.dh = dh; shape.dtype = c.dtype;
  auto plan = attn::plan(src, shape, opt);
  ASSERT_TRUE(plan.has_value()) << case_name(c) << ": " << plan.status().to_string();

  const size_t nq = static_cast<size_t>(B * Hq * T * dh), nk = static_cast<size_t>(B * Hkv * T * dh);
  std::vector<uint16_t> hq(nq), hk(nk), hv(nk);
  std::vector<float> fq(nq), fk(nk), fv(nk);
  auto fill = [&](std::vector<uint16_t>& h, std::vector<float>& f, bool normal) {
    for (size_t x = 0; x < h.size(); ++x) {
      const float val = normal ? static_cast<float>(rng.normal()) : static_cast<float>(2.0 * rng.uniform01() - 1.0);
      h[x] = c.dtype == DType::kBF16 ? bna::float_to_bf16(val) : bna::float_to_f16(val);
      f[x] = c.dtype == DType::kBF16 ? bna::bf16_to_float(h[x]) : bna::f16_to_float(h[x]);
    }
  };
  fill(hq, fq, true);
  fill(hk, fk, true);
  fill(hv, fv, false);

  using bna::cuda::DeviceBuffer;
  const size_t nrows = static_cast<size_t>(B * Hq * T);
  DeviceBuffer dq, dk, dv, dout, dlse;
  ASSERT_TRUE(dq.allocate(nq * 2).is_ok());
  ASSERT_TRUE(dk.allocate(nk * 2).is_ok());
  ASSERT_TRUE(dv.allocate(nk * 2).is_ok());
  ASSERT_TRUE(dout.allocate(nq * 2).is_ok());
  ASSERT_TRUE(dlse.allocate(nrows * 4).is_ok());
  ASSERT_TRUE(bna::cuda::copy_to_device(dq.get(), hq.data(), nq * 2).is_ok());
  ASSERT_TRUE(bna::cuda::copy_to_device(dk.get(), hk.data(), nk * 2).is_ok());
  ASSERT_TRUE(bna::cuda::copy_to_device(dv.get(), hv.data(), nk * 2).is_ok());
  ASSERT_TRUE(bna::cuda::device_memset(dout.get(), 0xFF, nq * 2).is_ok());  // NaN poison
  ASSERT_TRUE(bna::cuda::device_memset(dlse.get(), 0xFF, nrows * 4).is_ok());
  auto v4 = [&](void* d, int64_t h) { return bna::TensorView{d, c.dtype, bna::Shape{B, h, T, dh}}; };
  const bna::Status st = attn::run(*plan, v4(dq.get(), Hq), v4(dk.get(), Hkv), v4(dv.get(), Hkv), v4(dout.get(), Hq),
                                   bna::TensorView{dlse.get(), DType::kF32, bna::Shape{B, Hq, T}});
  ASSERT_TRUE(st.is_ok()) << case_name(c) << ": " << st.to_string();
  ASSERT_TRUE(bna::cuda::device_synchronize().is_ok());
  std::vector<uint16_t> hout(nq);
  std::vector<float> hlse(nrows);
  ASSERT_TRUE(bna::cuda::copy_to_host(hout.data(), dout.get(), nq * 2).is_ok());
  ASSERT_TRUE(bna::cuda::copy_to_host(hlse.data(), dlse.get(), nrows * 4).is_ok());

  const double scale = 1.0 / std::sqrt(static_cast<double>(dh));
  const bool round_p = tensor_core_path(c);
  std::vector<double> e_out(nrows), e_out_sum(nrows), e_lp(nrows), e_lp_sum(nrows), e_lse(nrows), e_lse_lp(nrows);
  std::vector<uint8_t> bad(nrows, 0);  // 1: non-finite where finite expected, 2: -inf mismatch
  bna::parallel_for_dynamic(0, static_cast<int64_t>(nrows), 16, [&](int64_t row) {
    const int64_t i = row % T, bh = row / T, hqi = bh % Hq, b = bh / Hq, hkv = hqi / c.group;
    std::vector<std::vector<int64_t>> comps;
    row_keys(c, g, hkv, i, comps);
    const float* qr = &fq[static_cast<size_t>(row * dh)];
    const size_t kvbase = static_cast<size_t>((b * Hkv + hkv) * T * dh);
    const double ncomp = static_cast<double>(comps.size());
    std::vector<double> o64(static_cast<size_t>(dh), 0.0);
    std::vector<float> o32(static_cast<size_t>(dh), 0.0f);
    double lsum64 = 0;   // sum over components of exp(lse_c) (relative to 0)
    double lsum32 = 0;
    bool any = false;
    for (const auto& keys : comps) {
      if (keys.empty()) continue;
      any = true;
      std::vector<double> s64(keys.size());
      std::vector<float> s32(keys.size());
      double m64 = -std::numeric_limits<double>::infinity();
      float m32 = -std::numeric_limits<float>::infinity();
      for (size_t n = 0; n < keys.size(); ++n) {
        const float* kr = &fk[kvbase + static_cast<size_t>(keys[n] * dh)];
        double acc = 0;
        float accf = 0;
        for (int64_t d = 0; d < dh; ++d) {
          acc += static_cast<double>(qr[d]) * kr[d];
          accf += qr[d] * kr[d];
        }
        s64[n] = acc * scale;
        s32[n] = accf * static_cast<float>(scale);
        m64 = std::max(m64, s64[n]);
        m32 = std::max(m32, s32[n]);
      }
      std::vector<double> c64(static_cast<size_t>(dh), 0.0);
      std::vector<float> c32(static_cast<size_t>(dh), 0.0f);
      double l64 = 0;
      float l32 = 0;
      for (size_t n = 0; n < keys.size(); ++n) {
        const float* vr = &fv[kvbase + static_cast<size_t>(keys[n] * dh)];
        const double p64 = std::exp(s64[n] - m64);
        const float p32 = std::exp(s32[n] - m32);
        const float p32r = round_p ? bna::round_to(c.dtype, p32) : p32;
        l64 += p64;
        l32 += p32;
        for (int64_t d = 0; d < dh; ++d) {
          c64[static_cast<size_t>(d)] += p64 * vr[d];
          c32[static_cast<size_t>(d)] += p32r * vr[d];
        }
      }
      for (int64_t d = 0; d < dh; ++d) {
        o64[static_cast<size_t>(d)] += c64[static_cast<size_t>(d)] / l64 / ncomp;
        o32[static_cast<size_t>(d)] += c32[static_cast<size_t>(d)] / l32;
      }
      lsum64 += std::exp(m64 + std::log(l64));
      lsum32 += std::exp(static_cast<double>(m32 + std::log(l32)));
    }
    const uint16_t* got = &hout[static_cast<size_t>(row * dh)];
    double mx = 0, sm = 0, mxl = 0, sml = 0;
    for (int64_t d = 0; d < dh; ++d) {
      const double r64 = o64[static_cast<size_t>(d)];
      const double rlp = bna::round_to(c.dtype, o32[static_cast<size_t>(d)] / static_cast<float>(ncomp));
      const double gv = c.dtype == DType::kBF16 ? bna::bf16_to_float(got[d]) : bna::f16_to_float(got[d]);
      if (!std::isfinite(gv)) bad[static_cast<size_t>(row)] = 1;
      mx = std::max(mx, std::fabs(gv - r64));
      sm += std::fabs(gv - r64);
      mxl = std::max(mxl, std::fabs(rlp - r64));
      sml += std::fabs(rlp - r64);
    }
    const double gl = hlse[static_cast<size_t>(row)];
    if (!any) {
      // Empty row: out exactly 0 and lse exactly -inf.
      if (!(std::isinf(gl) && gl < 0) || mx != 0.0) bad[static_cast<size_t>(row)] = 2;
      e_out[static_cast<size_t>(row)] = mx;
      e_out_sum[static_cast<size_t>(row)] = sm;
      return;
    }
    // Scores are O(10) here, so exp(lse) neither over- nor underflows in double.
    const double lse64 = std::log(lsum64 / ncomp), lselp = std::log(lsum32 / ncomp);
    if (!std::isfinite(gl)) bad[static_cast<size_t>(row)] = 1;
    e_out[static_cast<size_t>(row)] = mx;
    e_out_sum[static_cast<size_t>(row)] = sm;
    e_lp[static_cast<size_t>(row)] = mxl;
    e_lp_sum[static_cast<size_t>(row)] = sml;
    e_lse[static_cast<size_t>(row)] = std::fabs(gl - lse64);
    e_lse_lp[static_cast<size_t>(row)] = std::fabs(lselp - lse64);
  });

  double got_max = 0, got_mean = 0, lp_max = 0, lp_mean = 0, gl_max = 0, gl_mean = 0, ll_max = 0, ll_mean = 0;
  int64_t first_bad = -1, empty_rows = 0;
  for (size_t r = 0; r < nrows; ++r) {
    if (bad[r] && first_bad < 0) first_bad = static_cast<int64_t>(r);
    got_max = std::max(got_max, e_out[r]);
    got_mean += e_out_sum[r];
    lp_max = std::max(lp_max, e_lp[r]);
    lp_mean += e_lp_sum[r];
    gl_max = std::max(gl_max, e_lse[r]);
    gl_mean += e_lse[r];
    ll_max = std::max(ll_max, e_lse_lp[r]);
    ll_mean += e_lse_lp[r];
    empty_rows += std::isinf(hlse[r]) ? 1 : 0;
  }
  got_mean /= static_cast<double>(nq);
  lp_mean /= static_cast<double>(nq);
  gl_mean /= static_cast<double>(nrows);
  ll_mean /= static_cast<double>(nrows);
  // Floors as attn_fwd_test.cpp: half an ulp at 1.0 for out (|v| < 1), 2e-4 for the f32 lse.
  const double floor_out = c.dtype == DType::kBF16 ? 0x1.0p-9 : 0x1.0p-12;
  const double floor_lse = 2e-4;
  ASSERT_EQ(first_bad, -1) << case_name(c) << ": row " << first_bad << " (b*Hq+h = " << first_bad / T
                           << ", i = " << first_bad % T << ") is non-finite or lacks -inf for an empty row";
  EXPECT_LE(got_max, 2 * lp_max + floor_out) << case_name(c) << " out max error; lp " << lp_max;
  EXPECT_LE(got_mean, 2 * lp_mean + floor_out / 4) << case_name(c) << " out mean error; lp " << lp_mean;
  EXPECT_LE(gl_max, 2 * ll_max + floor_lse) << case_name(c) << " lse max error; lp " << ll_max;
  EXPECT_LE(gl_mean, 2 * ll_mean + floor_lse / 4) << case_name(c) << " lse mean error; lp " << ll_mean;
  if (c.kind == Kind::kBlockRandom || c.kind == Kind::kGather) {
    EXPECT_GT(empty_rows, 0) << case_name(c) << ": the case is meant to contain empty rows";
  }
}

std::vector<Case> all_cases() {
  std::vector<Case> v;
  const DType bf = DType::kBF16, hf = DType::kF16;
  for (int64_t T : {1, 63, 257, 1000, 4097})
    for (int64_t dh : {64, 128})
      for (int64_t g : {1, 4, 8}) {
        v.push_back({Kind::kBlockButterfly, T, dh, g, bf, 64});
        v.push_back({Kind::kPermute, T, dh, g, bf, 64, 64, 1});
        if (T <= 1000) {
          v.push_back({Kind::kGather, T, dh, g, bf});
          v.push_back({Kind::kBlockRandom, T, dh, g, bf, 32});
        }
      }
  for (int64_t T : {63, 1000})
    for (int64_t dh : {64, 128})
      for (int64_t g : {1, 8}) {
        v.push_back({Kind::kBlockButterfly, T, dh, g, hf, 64});
        v.push_back({Kind::kBlockRandom, T, dh, g, hf, 100});
        v.push_back({Kind::kPermute, T, dh, g, hf, 64, 32, 1});
        v.push_back({Kind::kGather, T, dh, g, hf});
      }
  // Block sizes off the 64-row tile: 16, 100 (not dividing T), 128 and 200 (several slices).
  for (int64_t Bs : {16, 100, 128, 200}) {
    v.push_back({Kind::kBlockRandom, 777, 128, 4, bf, Bs});
    v.push_back({Kind::kBlockButterfly, 1000, 64, 1, bf, Bs});
  }
  // Permute-window: windows 0/5/32/100, circular, several cycles in both modes.
  for (int64_t w : {0, 5, 32, 100}) v.push_back({Kind::kPermute, 1000, 128, 4, bf, 64, w, 1});
  v.push_back({Kind::kPermute, 1000, 64, 1, bf, 64, 32, 1, false, true});
  v.push_back({Kind::kPermute, 61, 64, 1, bf, 64, 40, 1, false, true});  // 2w+1 >= T: full causal prefix
  for (int64_t dh : {64, 128})
    for (bool uni : {false, true}) {
      v.push_back({Kind::kPermute, 1000, dh, 4, bf, 64, 32, 3, uni});
      v.push_back({Kind::kPermute, 257, dh, 8, hf, 64, 16, 2, uni, true});
    }
  v.push_back({Kind::kPermute, 4097, 128, 1, bf, 64, 64, 2, false});
  v.push_back({Kind::kGather, 4097, 128, 4, bf, 64, 64, 1, false, false, 64});
  v.push_back({Kind::kGather, 300, 64, 1, bf, 64, 64, 1, false, false, 1});
  return v;
}

INSTANTIATE_TEST_SUITE_P(Sweep, AttnFwdPathsCuda, ::testing::ValuesIn(all_cases()),
                         [](const ::testing::TestParamInfo<Case>& info) { return case_name(info.param); });

// Argument checks happen before any CUDA call, so they run with or without a device.
TEST(AttnFwdPathsCudaArgs, RejectsBadArguments) {
  bna::cuda::AttnArgs a;
  alignas(256) static uint16_t fake[256];
  static float fake_lse[4];
  static int32_t fake_idx[16];
  a.q = a.k = a.v = fake; a.out = fake; a.lse = fake_lse;
  a.T = 4; a.dh = 64;
  bna::Status st = bna::cuda::block_sparse_fwd(a, 0, 1, fake_idx, fake_idx);
  EXPECT_EQ(st.code(), bna::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("Bs=0"), std::string::npos) << st.message();
  st = bna::cuda::block_sparse_fwd(a, 2, 3, fake_idx, fake_idx);
  EXPECT_NE(st.message().find("N=3"), std::string::npos) << st.message();
  EXPECT_EQ(bna::cuda::block_sparse_fwd(a, 2, 2, nullptr, fake_idx).code(), bna::StatusCode::kInvalidArgument);
  a.dh = 96;
  st = bna::cuda::block_sparse_fwd(a, 2, 2, fake_idx, fake_idx);
  EXPECT_NE(st.message().find("dh=96"), std::string::npos) << st.message();
  a.dh = 64;

  bna::cuda::PermuteWindowArgs pw;
  pw.perm = fake_idx;
  pw.w = -1;
  st = bna::cuda::permute_window_fwd(a, pw);
  EXPECT_NE(st.message().find("w=-1"), std::string::npos) << st.message();
  pw.w = 2; pw.num_cycles = 0;
  st = bna::cuda::permute_window_fwd(a, pw);
  EXPECT_NE(st.message().find("num_cycles=0"), std::string::npos) << st.message();
  pw.num_cycles = 2;  // average mode needs the f32 workspace
  st = bna::cuda::permute_window_fwd(a, pw);
  EXPECT_NE(st.message().find("workspace"), std::string::npos) << st.message();
  pw.union_mode = true;  // union needs inv
  st = bna::cuda::permute_window_fwd(a, pw);
  EXPECT_NE(st.message().find("inv"), std::string::npos) << st.message();
  pw.perm = nullptr;
  EXPECT_EQ(bna::cuda::permute_window_fwd(a, pw).code(), bna::StatusCode::kInvalidArgument);

  st = bna::cuda::gather_fwd(a, fake_idx, 0);
  EXPECT_NE(st.message().find("D=0"), std::string::npos) << st.message();
  EXPECT_EQ(bna::cuda::gather_fwd(a, nullptr, 4).code(), bna::StatusCode::kInvalidArgument);
  a.dtype = DType::kF32;
  EXPECT_EQ(bna::cuda::gather_fwd(a, fake_idx, 4).code(), bna::StatusCode::kInvalidArgument);
  a.dtype = DType::kBF16;
  a.q = reinterpret_cast<const void*>(reinterpret_cast<uintptr_t>(fake) + 2);
  EXPECT_EQ(bna::cuda::gather_fwd(a, fake_idx, 4).code(), bna::StatusCode::kInvalidArgument);
}

// plan() with backend cuda: the graph paths reject what their kernels do not cover (named), before
// any launch; backward is refused by name.
TEST(AttnFwdPathsCudaArgs, PlanRejectsUncoveredShapes) {
  topo::BlockSparseLayout L;
  L.H = 1; L.T = 8; L.block_size = 4; L.n_blocks = 2;
  L.indptr = {0, 1, 3};
  L.indices = {0, 0, 1};
  L.head_base = {0};
  attn::GraphSource src;
  src.blocks = &L;
  attn::Shape shape;
  shape.Tq = 3; shape.Tk = 8; shape.q_offset = 5; shape.dh = 64; shape.dtype = DType::kBF16;
  attn::Options opt;
  opt.backend = attn::Backend::kCuda;
  auto p = attn::plan(src, shape, opt);
  ASSERT_FALSE(p.has_value());
  EXPECT_NE(p.status().message().find("Tq=3"), std::string::npos) << p.status().message();
  shape.Tq = 8; shape.q_offset = 0; shape.dtype = DType::kF32;
  p = attn::plan(src, shape, opt);
  ASSERT_FALSE(p.has_value());
  EXPECT_NE(p.status().message().find("f32"), std::string::npos) << p.status().message();
  shape.dtype = DType::kBF16;
  opt.use_edge_bias = true;
  EXPECT_FALSE(attn::plan(src, shape, opt).has_value());
  opt.use_edge_bias = false;
  if (!bna::cuda::device_available()) return;  // plan() uploads the graph: needs a device from here
  p = attn::plan(src, shape, opt);
  ASSERT_TRUE(p.has_value()) << p.status().to_string();
  EXPECT_EQ(p->path, attn::Path::kBlockSparse);
  bna::TensorView t;
  const bna::Status st = attn::run_backward(*p, t, t, t, t, t, t, t, t, t);
  EXPECT_NE(st.code(), bna::StatusCode::kOk);
}

}  // namespace

#else  // !BNA_HAVE_CUDA

TEST(AttnFwdPathsCuda, SkippedWithoutCuda) { GTEST_SKIP() << "built without the CUDA backend (BNA_CUDA=OFF or no nvcc)"; }

#endif
