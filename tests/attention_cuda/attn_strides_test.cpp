// Strided q / k / v / out and gradients (AttnArgs::q_strides, kv_strides, o_strides; strided
// TensorViews through attn::run here, through run_backward in tests/model_cuda, whose model reads
// its QKV GEMM output this way): dense and streams forward and backward reading a
// token-major packed QKV buffer [B, T, (Hq + 2 Hkv) dh + pad] and writing token-major out / dq / dk /
// dv must give bit-identical results to the same kernels on contiguous [B, H, T, dh] tensors (the
// other tests check those against float64), except dK / dV where f32 atomics sum them (one bf16 ulp,
// see below). Each row's pad is NaN (a read of it shows up as NaN) and
// must still be NaN afterwards (a write past a row would change it). GQA runs the accumulator path
// of the dK / dV backward, Hq == Hkv at T <= 2048 the direct one.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "bna/attention.hpp"
#include "bna/dtype.hpp"
#include "bna/rng.hpp"

#ifdef BNA_HAVE_CUDA
#include "attention/cuda/device_memory.hpp"
#include "attention/cuda/launch.hpp"
#include "gpu_check.hpp"

namespace {

using bna::DType;
using bna::cuda::DeviceBuffer;
using bna::test::cuda_bwd::download;
using bna::test::cuda_bwd::upload;

constexpr uint16_t kNaN = 0x7fc0;
constexpr int64_t kPad = 8;  // elements after each token's row

struct Case {
  bool dense;
  int64_t B, Hq, Hkv, T, dh;
};
std::string name_of(const Case& c) {
  return std::string(c.dense ? "dense" : "streams") + "_B" + std::to_string(c.B) + "_Hq" + std::to_string(c.Hq) +
         "_Hkv" + std::to_string(c.Hkv) + "_T" + std::to_string(c.T) + "_dh" + std::to_string(c.dh);
}

// A token-major buffer [B, T, ld] (ld = cols + kPad) and the contiguous [B, H, T, dh] tensor of the
// heads at column offset col0.
struct Packed {
  int64_t B, T, ld;
  std::vector<uint16_t> data;
  size_t at(int64_t b, int64_t t, int64_t col) const { return static_cast<size_t>((b * T + t) * ld + col); }
  std::vector<uint16_t> heads(int64_t col0, int64_t H, int64_t dh) const {
    std::vector<uint16_t> r(static_cast<size_t>(B * H * T * dh));
    for (int64_t b = 0; b < B; ++b)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t t = 0; t < T; ++t)
          std::memcpy(&r[static_cast<size_t>(((b * H + h) * T + t) * dh)], &data[at(b, t, col0 + h * dh)], dh * 2);
    return r;
  }
};
Packed packed(int64_t B, int64_t T, int64_t cols, bna::Rng* rng) {
  Packed p{B, T, cols + kPad, {}};
  p.data.assign(static_cast<size_t>(B * T * p.ld), kNaN);
  if (rng != nullptr)
    for (int64_t r = 0; r < B * T; ++r)
      for (int64_t c = 0; c < cols; ++c)
        p.data[static_cast<size_t>(r * p.ld + c)] = bna::float_to_bf16(static_cast<float>(rng->normal()));
  return p;
}

class StridedViews : public ::testing::TestWithParam<Case> {};

TEST_P(StridedViews, TokenMajorEqualsContiguous) {
  if (!bna::cuda::device_available()) GTEST_SKIP() << "no CUDA device";
  const Case c = GetParam();
  const int64_t B = c.B, T = c.T, Hq = c.Hq, Hkv = c.Hkv, dh = c.dh, W = 16, S = 16, E = 2;
  const int64_t qkv_cols = (Hq + 2 * Hkv) * dh;
  bna::Rng rng(static_cast<uint64_t>(T * 7 + Hq * 3 + dh));
  const Packed qkv = packed(B, T, qkv_cols, &rng), dout_p = packed(B, T, Hq * dh, &rng);
  const std::vector<uint16_t> q = qkv.heads(0, Hq, dh), k = qkv.heads(Hq * dh, Hkv, dh),
                              v = qkv.heads((Hq + Hkv) * dh, Hkv, dh), dout = dout_p.heads(0, Hq, dh);
  // Streams extras [Hkv, T, E]: outside band and landmarks, -1 padded.
  std::vector<int32_t> ex(static_cast<size_t>(Hkv * T * E), -1);
  for (int64_t h = 0; h < Hkv; ++h)
    for (int64_t i = W + 2; i < T; ++i) {
      int32_t j = static_cast<int32_t>(rng.uniform_below(static_cast<uint64_t>(i - W)));
      if (j % S == 0) j = j + 1 < i - W ? j + 1 : -1;
      ex[static_cast<size_t>((h * T + i) * E)] = j;
    }
  const size_t nq = q.size(), nk = k.size(), rows = static_cast<size_t>(B * Hq * T);
  DeviceBuffer dq_c = upload(q.data(), nq * 2), dk_c = upload(k.data(), nk * 2), dv_c = upload(v.data(), nk * 2);
  DeviceBuffer ddo_c = upload(dout.data(), nq * 2), dqkv = upload(qkv.data.data(), qkv.data.size() * 2);
  DeviceBuffer ddo_s = upload(dout_p.data.data(), dout_p.data.size() * 2), dex = upload(ex.data(), ex.size() * 4);
  const Packed o_init = packed(B, T, Hq * dh, nullptr), g_init = packed(B, T, qkv_cols, nullptr);
  DeviceBuffer o_c, o_s = upload(o_init.data.data(), o_init.data.size() * 2), lse_c, lse_s;
  DeviceBuffer gq_c, gk_c, gv_c, g_s = upload(g_init.data.data(), g_init.data.size() * 2), ws;
  for (DeviceBuffer* d : {&o_c, &gq_c}) ASSERT_TRUE(d->allocate(nq * 2).is_ok());
  for (DeviceBuffer* d : {&gk_c, &gv_c}) ASSERT_TRUE(d->allocate(nk * 2).is_ok());
  for (DeviceBuffer* d : {&lse_c, &lse_s}) ASSERT_TRUE(d->allocate(rows * 4).is_ok());

  auto args = [&](bool strided) {
    bna::cuda::AttnArgs a;
    a.B = B; a.Hq = Hq; a.Hkv = Hkv; a.T = T; a.dh = dh; a.dtype = DType::kBF16;
    if (!strided) {
      a.q = dq_c.get(); a.k = dk_c.get(); a.v = dv_c.get(); a.out = o_c.get(); a.lse = lse_c.as<float>();
      return a;
    }
    const auto* base = dqkv.as<uint16_t>();
    a.q = base; a.k = base + Hq * dh; a.v = base + (Hq + Hkv) * dh; a.out = o_s.get(); a.lse = lse_s.as<float>();
    const int64_t qs[3] = {T * qkv.ld, dh, qkv.ld}, os[3] = {T * o_init.ld, dh, o_init.ld};
    for (int i = 0; i < 3; ++i) {
      a.q_strides[i] = a.kv_strides[i] = qs[i];
      a.o_strides[i] = os[i];
    }
    return a;
  };
  auto fwd = [&](const bna::cuda::AttnArgs& a) {
    return c.dense ? bna::cuda::dense_causal_fwd(a) : bna::cuda::streams_fwd(a, W, S, dex.as<int32_t>(), E);
  };
  auto bwd = [&](bool strided) {
    bna::cuda::AttnBwdArgs a;
    a.fwd = args(strided);
    auto* g = g_s.as<uint16_t>();
    a.dout = strided ? ddo_s.get() : ddo_c.get();
    a.dq = strided ? static_cast<void*>(g) : gq_c.get();
    a.dk = strided ? static_cast<void*>(g + Hq * dh) : gk_c.get();
    a.dv = strided ? static_cast<void*>(g + (Hq + Hkv) * dh) : gv_c.get();
    if (strided)
      for (int i = 0; i < 3; ++i) a.fwd.o_strides[i] = i == 0 ? T * dout_p.ld : (i == 1 ? dh : dout_p.ld);
    const size_t need = bna::cuda::attn_bwd_workspace_bytes(a.fwd);
    if (ws.bytes() < need) {
      EXPECT_TRUE(ws.allocate(need).is_ok());
    }
    a.workspace = ws.get();
    a.workspace_bytes = ws.bytes();
    return c.dense ? bna::cuda::dense_causal_bwd(a) : bna::cuda::streams_bwd(a, W, S, dex.as<int32_t>(), E);
  };
  ASSERT_TRUE(fwd(args(false)).is_ok()) << name_of(c);
  ASSERT_TRUE(fwd(args(true)).is_ok()) << name_of(c);
  ASSERT_TRUE(bwd(false).is_ok()) << name_of(c);
  // Backward reads out through its strides: the strided run's out buffer (same values) has the o
  // layout, dout the dout layout; both are [B, T, Hq dh + pad], so one set of o strides fits both.
  ASSERT_EQ(o_init.ld, dout_p.ld);
  ASSERT_TRUE(bwd(true).is_ok()) << name_of(c);
  ASSERT_TRUE(bna::cuda::device_synchronize().is_ok());

  Packed o_got{B, T, o_init.ld, download<uint16_t>(o_s, o_init.data.size())};
  Packed g_got{B, T, g_init.ld, download<uint16_t>(g_s, g_init.data.size())};
  // ulps: 0 = bit-identical. dK / dV summed with f32 atomics (GQA, landmarks, several query chunks:
  // everything but the direct case) differ run to run in the summation order, i.e. by ~1e-7
  // relative before the bf16 rounding: at most one bf16 ulp either way.
  auto same = [&](const char* what, const std::vector<uint16_t>& want, const std::vector<uint16_t>& got, int ulps) {
    ASSERT_EQ(want.size(), got.size());
    for (size_t i = 0; i < want.size(); ++i) {
      ASSERT_TRUE(std::isfinite(bna::bf16_to_float(got[i]))) << name_of(c) << ": " << what << " non-finite at " << i;
      auto ordered = [](uint16_t x) { return (x & 0x8000) ? -static_cast<int>(x & 0x7fff) : static_cast<int>(x); };
      ASSERT_LE(std::abs(ordered(want[i]) - ordered(got[i])), ulps)
          << name_of(c) << ": " << what << " differs at " << i << ": " << want[i] << " vs " << got[i];
    }
  };
  const bool direct = c.dense && c.Hq == c.Hkv && T <= 2048;
  same("out", download<uint16_t>(o_c, nq), o_got.heads(0, Hq, dh), 0);
  same("dq", download<uint16_t>(gq_c, nq), g_got.heads(0, Hq, dh), 0);
  same("dk", download<uint16_t>(gk_c, nk), g_got.heads(Hq * dh, Hkv, dh), direct ? 0 : 1);
  same("dv", download<uint16_t>(gv_c, nk), g_got.heads((Hq + Hkv) * dh, Hkv, dh), direct ? 0 : 1);
  const auto l1 = download<float>(lse_c, rows), l2 = download<float>(lse_s, rows);
  for (size_t i = 0; i < rows; ++i) ASSERT_EQ(std::memcmp(&l1[i], &l2[i], 4), 0) << name_of(c) << ": lse at " << i;
  for (int64_t r = 0; r < B * T; ++r)
    for (int64_t x = 0; x < kPad; ++x) {
      ASSERT_EQ(o_got.data[static_cast<size_t>(r * o_got.ld + Hq * dh + x)], kNaN) << name_of(c) << ": out pad written";
      ASSERT_EQ(g_got.data[static_cast<size_t>(r * g_got.ld + qkv_cols + x)], kNaN) << name_of(c) << ": grad pad written";
    }
}

INSTANTIATE_TEST_SUITE_P(Cases, StridedViews,
                         ::testing::Values(Case{true, 2, 3, 3, 200, 64}, Case{true, 2, 4, 2, 130, 64},
                                           Case{false, 2, 4, 2, 200, 64}, Case{false, 1, 2, 2, 300, 128},
                                           Case{true, 1, 2, 1, 2100, 128}),
                         [](const ::testing::TestParamInfo<Case>& i) { return name_of(i.param); });

TEST(StridedViewsErrors, RejectedWhereUnsupported) {
  if (!bna::cuda::device_available()) GTEST_SKIP() << "no CUDA device";
  DeviceBuffer buf;
  bna::cuda::AttnArgs a = bna::test::cuda_bwd::error_test_args(buf);
  for (int i = 0; i < 3; ++i) a.q_strides[i] = a.kv_strides[i] = a.o_strides[i] = i == 0 ? 64 * 192 : (i == 1 ? 64 : 192);
  a.q_strides[2] = 100;  // not a multiple of 8
  bna::Status st = bna::cuda::dense_causal_fwd(a);
  EXPECT_EQ(st.code(), bna::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("stride 100"), std::string::npos) << st.to_string();
  a.q_strides[2] = 192;
  DeviceBuffer idx;
  ASSERT_TRUE(idx.allocate(64 * 4).is_ok());
  st = bna::cuda::gather_fwd(a, idx.as<int32_t>(), 1);  // gather reads contiguous tensors only
  EXPECT_EQ(st.code(), bna::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("strided"), std::string::npos) << st.to_string();
  a.kv_rows = 128;
  st = bna::cuda::dense_causal_fwd(a);
  EXPECT_EQ(st.code(), bna::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("kv_rows=128"), std::string::npos) << st.to_string();
}

// Through the public API: a strided view reaches the kernels on backend cuda (dense), and is refused
// by name on the CPU backend and where v's strides differ from k's.
TEST(StridedViewsErrors, PublicApi) {
  if (!bna::cuda::device_available()) GTEST_SKIP() << "no CUDA device";
  const int64_t T = 128, H = 2, dh = 64, ld = 3 * H * dh;
  DeviceBuffer qkv, out, lse;
  ASSERT_TRUE(qkv.allocate(static_cast<size_t>(T * ld * 2)).is_ok());
  ASSERT_TRUE(bna::cuda::device_memset(qkv.get(), 0, static_cast<size_t>(T * ld * 2)).is_ok());
  ASSERT_TRUE(out.allocate(static_cast<size_t>(H * T * dh * 2)).is_ok());
  ASSERT_TRUE(lse.allocate(static_cast<size_t>(H * T * 4)).is_ok());
  auto view = [&](int64_t col0) {
    bna::TensorView t(qkv.as<uint16_t>() + col0, DType::kBF16, bna::Shape{1, H, T, dh});
    t.strides = {T * ld, dh, ld, 1};
    return t;
  };
  bna::attn::Shape s;
  s.B = 1; s.Hq = H; s.Hkv = H; s.Tq = T; s.Tk = T; s.dh = dh; s.dtype = DType::kBF16;
  bna::attn::GraphSource src;
  src.dense = true;
  bna::attn::Options o;
  o.backend = bna::attn::Backend::kCuda;
  auto plan = bna::attn::plan(src, s, o);
  ASSERT_TRUE(plan.has_value()) << plan.status().to_string();
  o.backend = bna::attn::Backend::kCpu;
  auto cpu_plan = bna::attn::plan(src, s, o);
  ASSERT_TRUE(cpu_plan.has_value()) << cpu_plan.status().to_string();
  const bna::TensorView ov(out.get(), DType::kBF16, bna::Shape{1, H, T, dh}), lv(lse.get(), DType::kF32, bna::Shape{1, H, T});
  EXPECT_TRUE(bna::attn::run(*plan, view(0), view(H * dh), view(2 * H * dh), ov, lv).is_ok());
  bna::TensorView v2 = view(2 * H * dh);
  v2.strides[1] = 2 * dh;
  bna::Status st = bna::attn::run(*plan, view(0), view(H * dh), v2, ov, lv);
  EXPECT_EQ(st.code(), bna::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("differ from k"), std::string::npos) << st.to_string();
  st = bna::attn::run(*cpu_plan, view(0), view(H * dh), view(2 * H * dh), ov, lv);  // the CPU reads contiguous
  EXPECT_EQ(st.code(), bna::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("has strides"), std::string::npos) << st.to_string();
}

}  // namespace
#endif  // BNA_HAVE_CUDA
