// GPU forward kernels (dense causal, streams) against a float64 CPU reference written here.
// Pass rule (docs/numerics.md): max|out - ref64| <= 2 * max|ref_lp - ref64| + floor(dtype), on out and
// lse, plus the same on the mean error with floor/4; NaN/Inf (e.g. an unwritten, NaN-poisoned output)
// never passes. ref_lp repeats the kernel's rounding points: dtype inputs, f32 scores and sums,
// probabilities rounded to the dtype before P V, output rounded to the dtype.
// Each case runs both forward kernels (fwd_variant 1: 64-row tiles, 2: 128-row tiles).
// Every test skips with a reason when no CUDA device is present; the argument checks run anyway.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "bna/dtype.hpp"
#include "bna/rng.hpp"
#include "bna/threads.hpp"

#ifdef BNA_HAVE_CUDA
#include "attention/cuda/device_memory.hpp"
#include "attention/cuda/launch.hpp"

namespace {

using bna::DType;

enum class Kernel { kDense, kStreams };

struct Case {
  Kernel kernel;
  int64_t T, dh, group;
  DType dtype;
  bool extras;
  int64_t W = 64, S = 64;
};

std::string case_name(const Case& c) {
  std::string s = c.kernel == Kernel::kDense ? "dense" : "streams";
  s += std::string("_") + bna::dtype_name(c.dtype) + "_T" + std::to_string(c.T) + "_dh" + std::to_string(c.dh) +
       "_g" + std::to_string(c.group);
  if (c.kernel == Kernel::kStreams)
    s += "_W" + std::to_string(c.W) + "_S" + std::to_string(c.S) + (c.extras ? "_ext" : "_noext");
  return s;
}

struct Shapes {
  int64_t B, Hq, Hkv, T, dh;
};

Shapes shapes_of(const Case& c) {
  const int64_t Hkv = c.group == 8 ? 1 : 2;
  return {c.T <= 257 ? 2 : 1, Hkv * c.group, Hkv, c.T, c.dh};
}

// Extras with the StreamsGraph contract: causal, outside band and landmarks, distinct, -1 padded.
std::vector<int32_t> make_extras(int64_t Hkv, int64_t T, int64_t C, int64_t W, int64_t S, bna::Rng& rng) {
  std::vector<int32_t> ex(static_cast<size_t>(Hkv * T * C), -1);
  for (int64_t h = 0; h < Hkv; ++h)
    for (int64_t i = 0; i < T; ++i) {
      const int64_t hi = i - W - 1;  // extras live in [0, i - W - 1]
      int64_t n = 0;
      for (int tries = 0; tries < 8 && n < C && hi >= 0; ++tries) {
        const int64_t j = static_cast<int64_t>(rng.uniform_below(static_cast<uint64_t>(hi + 1)));
        if (S > 0 && j % S == 0) continue;
        bool dup = false;
        for (int64_t c = 0; c < n; ++c) dup |= ex[(h * T + i) * C + c] == j;
        if (!dup) ex[(h * T + i) * C + n++] = static_cast<int32_t>(j);
      }
    }
  return ex;
}

// Allowed keys of row i (KV head h) for the case, in any order.
void allowed_keys(const Case& c, int64_t T, const std::vector<int32_t>& ex, int64_t C, int64_t h, int64_t i,
                  std::vector<int64_t>& keys) {
  keys.clear();
  if (c.kernel == Kernel::kDense) {
    for (int64_t j = 0; j <= i; ++j) keys.push_back(j);
    return;
  }
  for (int64_t j = std::max<int64_t>(0, i - c.W); j <= i; ++j) keys.push_back(j);
  if (c.S > 0)
    for (int64_t j = 0; j < i - c.W; j += c.S) keys.push_back(j);
  for (int64_t e = 0; e < C; ++e) {
    const int32_t j = ex[(h * T + i) * C + e];
    if (j >= 0) keys.push_back(j);
  }
}

struct Errors {
  double out_max = 0, out_mean = 0, lse_max = 0, lse_mean = 0;
  bool finite = true;
};

class AttnFwdCuda : public ::testing::TestWithParam<Case> {};

// Runs one case with forward kernel variant `variant` (1: 64-row tiles, 2: 128-row tiles).
void run_case(const Case& c, int variant) {
  const Shapes sh = shapes_of(c);
  const int64_t C = (c.kernel == Kernel::kStreams && c.extras) ? 2 : 0;
  bna::Rng rng(0x5eed0000u + static_cast<uint64_t>(c.T * 131 + c.dh * 7 + c.group) +
               (c.extras ? 1000003u : 0u) + (c.dtype == DType::kF16 ? 77u : 0u));

  const size_t nq = static_cast<size_t>(sh.B * sh.Hq * sh.T * sh.dh);
  const size_t nk = static_cast<size_t>(sh.B * sh.Hkv * sh.T * sh.dh);
  std::vector<uint16_t> hq(nq), hk(nk), hv(nk);
  std::vector<float> fq(nq), fk(nk), fv(nk);  // the rounded inputs as float
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
  const std::vector<int32_t> ex = C > 0 ? make_extras(sh.Hkv, sh.T, C, c.W, c.S, rng) : std::vector<int32_t>{};

  using bna::cuda::DeviceBuffer;
  DeviceBuffer dq, dk, dv, dout, dlse, dex;
  ASSERT_TRUE(dq.allocate(nq * 2).is_ok());
  ASSERT_TRUE(dk.allocate(nk * 2).is_ok());
  ASSERT_TRUE(dv.allocate(nk * 2).is_ok());
  ASSERT_TRUE(dout.allocate(nq * 2).is_ok());
  const size_t nrows = static_cast<size_t>(sh.B * sh.Hq * sh.T);
  ASSERT_TRUE(dlse.allocate(nrows * 4).is_ok());
  ASSERT_TRUE(bna::cuda::copy_to_device(dq.get(), hq.data(), nq * 2).is_ok());
  ASSERT_TRUE(bna::cuda::copy_to_device(dk.get(), hk.data(), nk * 2).is_ok());
  ASSERT_TRUE(bna::cuda::copy_to_device(dv.get(), hv.data(), nk * 2).is_ok());
  // Poison: 0xFFFF is NaN in bf16 and f16, 0xFFFFFFFF is NaN in f32; an unwritten element fails.
  ASSERT_TRUE(bna::cuda::device_memset(dout.get(), 0xFF, nq * 2).is_ok());
  ASSERT_TRUE(bna::cuda::device_memset(dlse.get(), 0xFF, nrows * 4).is_ok());
  if (C > 0) {
    ASSERT_TRUE(dex.allocate(ex.size() * 4).is_ok());
    ASSERT_TRUE(bna::cuda::copy_to_device(dex.get(), ex.data(), ex.size() * 4).is_ok());
  }

  bna::cuda::AttnArgs a;
  a.q = dq.get(); a.k = dk.get(); a.v = dv.get(); a.out = dout.get(); a.lse = dlse.as<float>();
  a.B = sh.B; a.Hq = sh.Hq; a.Hkv = sh.Hkv; a.T = sh.T; a.dh = sh.dh; a.dtype = c.dtype;
  a.fwd_variant = variant;
  const bna::Status st = c.kernel == Kernel::kDense
                             ? bna::cuda::dense_causal_fwd(a)
                             : bna::cuda::streams_fwd(a, c.W, c.S, C > 0 ? dex.as<int32_t>() : nullptr, C);
  ASSERT_TRUE(st.is_ok()) << case_name(c) << ": " << st.to_string();
  const bna::Status sync = bna::cuda::device_synchronize();
  ASSERT_TRUE(sync.is_ok()) << case_name(c) << ": " << sync.to_string();
  std::vector<uint16_t> hout(nq);
  std::vector<float> hlse(nrows);
  ASSERT_TRUE(bna::cuda::copy_to_host(hout.data(), dout.get(), nq * 2).is_ok());
  ASSERT_TRUE(bna::cuda::copy_to_host(hlse.data(), dlse.get(), nrows * 4).is_ok());

  const double scale = 1.0 / std::sqrt(static_cast<double>(sh.dh));
  const int64_t dh = sh.dh, T = sh.T;
  // Per-row errors, reduced after the parallel loop.
  std::vector<double> e_out(nrows), e_out_sum(nrows), e_lp(nrows), e_lp_sum(nrows), e_lse(nrows), e_lse_lp(nrows);
  std::vector<uint8_t> finite(nrows, 1);
  bna::parallel_for_dynamic(0, static_cast<int64_t>(nrows), 16, [&](int64_t row) {
    const int64_t i = row % T, bh = row / T, hqi = bh % sh.Hq, b = bh / sh.Hq, hkv = hqi / c.group;
    std::vector<int64_t> keys;
    allowed_keys(c, T, ex, C, hkv, i, keys);
    const float* qr = &fq[static_cast<size_t>(row * dh)];
    const size_t kvbase = static_cast<size_t>((b * sh.Hkv + hkv) * T * dh);
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
    std::vector<double> o64(static_cast<size_t>(dh), 0.0);
    std::vector<float> o32(static_cast<size_t>(dh), 0.0f);
    double l64 = 0;
    float l32 = 0;
    for (size_t n = 0; n < keys.size(); ++n) {
      const float* vr = &fv[kvbase + static_cast<size_t>(keys[n] * dh)];
      const double p64 = std::exp(s64[n] - m64);
      const float p32 = std::exp(s32[n] - m32);
      const float p32r = bna::round_to(c.dtype, p32);
      l64 += p64;
      l32 += p32;
      for (int64_t d = 0; d < dh; ++d) {
        o64[static_cast<size_t>(d)] += p64 * vr[d];
        o32[static_cast<size_t>(d)] += p32r * vr[d];
      }
    }
    const uint16_t* got = &hout[static_cast<size_t>(row * dh)];
    double mx = 0, sm = 0, mxl = 0, sml = 0;
    for (int64_t d = 0; d < dh; ++d) {
      const double r64 = o64[static_cast<size_t>(d)] / l64;
      const double rlp = bna::round_to(c.dtype, o32[static_cast<size_t>(d)] / l32);
      const double g = c.dtype == DType::kBF16 ? bna::bf16_to_float(got[d]) : bna::f16_to_float(got[d]);
      if (!std::isfinite(g)) finite[static_cast<size_t>(row)] = 0;
      mx = std::max(mx, std::fabs(g - r64));
      sm += std::fabs(g - r64);
      mxl = std::max(mxl, std::fabs(rlp - r64));
      sml += std::fabs(rlp - r64);
    }
    const double lse64 = m64 + std::log(l64);
    const double lselp = static_cast<double>(m32 + std::log(l32));
    const double gl = hlse[static_cast<size_t>(row)];
    if (!std::isfinite(gl)) finite[static_cast<size_t>(row)] = 0;
    e_out[static_cast<size_t>(row)] = mx;
    e_out_sum[static_cast<size_t>(row)] = sm;
    e_lp[static_cast<size_t>(row)] = mxl;
    e_lp_sum[static_cast<size_t>(row)] = sml;
    e_lse[static_cast<size_t>(row)] = std::fabs(gl - lse64);
    e_lse_lp[static_cast<size_t>(row)] = std::fabs(lselp - lse64);
  });

  Errors got, lp;
  int64_t first_bad = -1;
  for (size_t r = 0; r < nrows; ++r) {
    if (!finite[r] && first_bad < 0) first_bad = static_cast<int64_t>(r);
    got.out_max = std::max(got.out_max, e_out[r]);
    got.out_mean += e_out_sum[r];
    lp.out_max = std::max(lp.out_max, e_lp[r]);
    lp.out_mean += e_lp_sum[r];
    got.lse_max = std::max(got.lse_max, e_lse[r]);
    got.lse_mean += e_lse[r];
    lp.lse_max = std::max(lp.lse_max, e_lse_lp[r]);
    lp.lse_mean += e_lse_lp[r];
  }
  got.out_mean /= static_cast<double>(nq);
  lp.out_mean /= static_cast<double>(nq);
  got.lse_mean /= static_cast<double>(nrows);
  lp.lse_mean /= static_cast<double>(nrows);

  // floor(dtype): half an ulp at 1.0 (outputs are convex combinations of |v| < 1); lse is f32 math
  // over <= T terms whose scores are O(10), so 2e-4 absolute.
  const double floor_out = c.dtype == DType::kBF16 ? 0x1.0p-9 : 0x1.0p-12;
  const double floor_lse = 2e-4;
  ASSERT_EQ(first_bad, -1) << case_name(c) << ": non-finite output or lse at row " << first_bad
                           << " (b*Hq+h = " << first_bad / T << ", i = " << first_bad % T << ")";
  EXPECT_LE(got.out_max, 2 * lp.out_max + floor_out) << case_name(c) << " out max error; lp " << lp.out_max;
  EXPECT_LE(got.out_mean, 2 * lp.out_mean + floor_out / 4) << case_name(c) << " out mean error; lp " << lp.out_mean;
  EXPECT_LE(got.lse_max, 2 * lp.lse_max + floor_lse) << case_name(c) << " lse max error; lp " << lp.lse_max;
  EXPECT_LE(got.lse_mean, 2 * lp.lse_mean + floor_lse / 4) << case_name(c) << " lse mean error; lp " << lp.lse_mean;
}

TEST_P(AttnFwdCuda, MatchesFloat64Reference) {
  if (!bna::cuda::device_available()) GTEST_SKIP() << "no CUDA device (cudaGetDeviceCount reports none)";
  for (int variant : {1, 2}) {
    SCOPED_TRACE("fwd_variant " + std::to_string(variant));
    run_case(GetParam(), variant);
  }
}

std::vector<Case> all_cases() {
  std::vector<Case> v;
  for (int64_t T : {1, 63, 257, 1000, 4097})
    for (int64_t dh : {64, 128})
      for (int64_t g : {1, 4, 8}) {
        v.push_back({Kernel::kDense, T, dh, g, DType::kBF16, false});
        v.push_back({Kernel::kStreams, T, dh, g, DType::kBF16, false});
        v.push_back({Kernel::kStreams, T, dh, g, DType::kBF16, true});
      }
  for (int64_t T : {63, 1000})
    for (int64_t dh : {64, 128})
      for (int64_t g : {1, 8}) {
        v.push_back({Kernel::kDense, T, dh, g, DType::kF16, false});
        v.push_back({Kernel::kStreams, T, dh, g, DType::kF16, true});
      }
  // Landmarks denser than the window and strides / windows off the 64-tile grid.
  v.push_back({Kernel::kStreams, 1000, 128, 4, DType::kBF16, true, 64, 16});
  v.push_back({Kernel::kStreams, 1000, 64, 1, DType::kBF16, true, 100, 48});
  v.push_back({Kernel::kStreams, 777, 128, 1, DType::kBF16, true, 0, 7});
  v.push_back({Kernel::kStreams, 300, 64, 1, DType::kBF16, false, 500, 0});
  return v;
}

INSTANTIATE_TEST_SUITE_P(Sweep, AttnFwdCuda, ::testing::ValuesIn(all_cases()),
                         [](const ::testing::TestParamInfo<Case>& info) { return case_name(info.param); });

// Argument checks happen before any CUDA call, so they run with or without a device.
TEST(AttnFwdCudaArgs, RejectsBadArguments) {
  bna::cuda::AttnArgs a;
  alignas(16) static uint16_t fake[64];
  static float fake_lse[4];
  a.q = a.k = a.v = fake; a.out = fake; a.lse = fake_lse;
  a.T = 4; a.dh = 96;
  bna::Status st = bna::cuda::dense_causal_fwd(a);
  EXPECT_EQ(st.code(), bna::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("dh=96"), std::string::npos) << st.message();
  a.dh = 64; a.Hq = 3; a.Hkv = 2;
  st = bna::cuda::dense_causal_fwd(a);
  EXPECT_EQ(st.code(), bna::StatusCode::kInvalidArgument);
  a.Hq = a.Hkv = 1; a.dtype = DType::kF32;
  EXPECT_EQ(bna::cuda::dense_causal_fwd(a).code(), bna::StatusCode::kInvalidArgument);
  a.dtype = DType::kBF16; a.q = nullptr;
  EXPECT_EQ(bna::cuda::dense_causal_fwd(a).code(), bna::StatusCode::kInvalidArgument);
  a.q = fake;
  st = bna::cuda::streams_fwd(a, -1, 64, nullptr, 0);
  EXPECT_EQ(st.code(), bna::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("W=-1"), std::string::npos) << st.message();
  EXPECT_EQ(bna::cuda::streams_fwd(a, 64, -2, nullptr, 0).code(), bna::StatusCode::kInvalidArgument);
  EXPECT_EQ(bna::cuda::streams_fwd(a, 64, 64, nullptr, 2).code(), bna::StatusCode::kInvalidArgument);
  a.q = reinterpret_cast<const void*>(reinterpret_cast<uintptr_t>(fake) + 2);
  EXPECT_EQ(bna::cuda::dense_causal_fwd(a).code(), bna::StatusCode::kInvalidArgument);
}

}  // namespace

#else  // !BNA_HAVE_CUDA

TEST(AttnFwdCuda, SkippedWithoutCuda) { GTEST_SKIP() << "built without the CUDA backend (BNA_CUDA=OFF or no nvcc)"; }

#endif
