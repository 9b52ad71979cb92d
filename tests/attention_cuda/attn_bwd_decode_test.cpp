// GPU backward (dense, streams), split-K decode and the plan/run CUDA dispatch, against float64
// references written here (docs/numerics.md).
// Backward: the GPU forward gives out and lse; the GPU backward gives dq, dk, dv. ref64 is the exact
// gradient in float64 from the rounded inputs; ref_lp repeats the kernels' rounding points (f32
// scores and sums with the GPU's out and lse as inputs; P and dS rounded to the dtype where they feed
// tensor-core products: dense/band/landmark keys; f32 for extras; outputs rounded to the dtype).
// Pass, per gradient: max|g - ref64| <= 2 max|ref_lp - ref64| + floor and the same on the mean with
// floor/4, floor = half an ulp of the dtype at max|ref64| (bf16 2^-9, f16 2^-12, relative): the
// gradients are not bounded by 1 like the outputs, and the floor only covers summation order.
// Decode: as the forward test (f32 P, not rounded: the decode kernel keeps P in f32).
// NaN/Inf (e.g. an unwritten, NaN-poisoned element) never passes. Tests skip without a device.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "bna/attention.hpp"
#include "bna/dtype.hpp"
#include "bna/rng.hpp"
#include "bna/threads.hpp"

#ifdef BNA_HAVE_CUDA
#include "attention/attn_oracle.hpp"
#include "attention/cpu/kernels.hpp"
#include "attention/cuda/device_memory.hpp"
#include "attention/cuda/launch.hpp"
#include "gpu_check.hpp"

namespace {

using bna::DType;
using bna::cuda::DeviceBuffer;
using namespace bna::test::cuda_bwd;

struct Prob {
  bool dense;
  int64_t B, Hq, Hkv, Tq, Tk, dh;
  DType dtype;
  int64_t W, S, C;
  std::vector<int32_t> ex;  // [Hkv, Tk, C]
};

// Allowed keys of the row at absolute position pos (KV head h); tags: 0 tensor-core stream, 1 extra.
void row_keys(const Prob& p, int64_t h, int64_t pos, std::vector<int64_t>& keys, std::vector<uint8_t>& tag) {
  keys.clear();
  tag.clear();
  if (p.dense) {
    for (int64_t j = 0; j <= pos; ++j) { keys.push_back(j); tag.push_back(0); }
    return;
  }
  for (int64_t j = std::max<int64_t>(0, pos - p.W); j <= pos; ++j) { keys.push_back(j); tag.push_back(0); }
  if (p.S > 0)
    for (int64_t j = 0; j < pos - p.W; j += p.S) { keys.push_back(j); tag.push_back(0); }
  for (int64_t c = 0; c < p.C; ++c) {
    const int32_t j = p.ex[static_cast<size_t>((h * p.Tk + pos) * p.C + c)];
    if (j >= 0) { keys.push_back(j); tag.push_back(1); }
  }
}

std::vector<int32_t> make_extras(int64_t Hkv, int64_t T, int64_t C, int64_t W, int64_t S, bna::Rng& rng) {
  std::vector<int32_t> ex(static_cast<size_t>(Hkv * T * C), -1);
  for (int64_t h = 0; h < Hkv; ++h)
    for (int64_t i = 0; i < T; ++i) {
      const int64_t hi = i - W - 1;
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

// ---------------------------------------------------------------------------------------------------
struct BwdCase {
  bool dense;
  int64_t T, dh, group;
  DType dtype;
  bool extras;
  int64_t W = 64, S = 64;
};

std::string bwd_name(const BwdCase& c) {
  std::string s = c.dense ? "dense" : "streams";
  s += std::string("_") + bna::dtype_name(c.dtype) + "_T" + std::to_string(c.T) + "_dh" + std::to_string(c.dh) + "_g" +
       std::to_string(c.group);
  if (!c.dense) s += "_W" + std::to_string(c.W) + "_S" + std::to_string(c.S) + (c.extras ? "_ext" : "_noext");
  return s;
}

class AttnBwdCuda : public ::testing::TestWithParam<BwdCase> {};

TEST_P(AttnBwdCuda, MatchesFloat64Reference) {
  if (!bna::cuda::device_available()) GTEST_SKIP() << "no CUDA device (cudaGetDeviceCount reports none)";
  const BwdCase c = GetParam();
  const std::string name = bwd_name(c);
  Prob p;
  p.dense = c.dense;
  p.Hkv = c.group == 8 ? 1 : 2;
  p.Hq = p.Hkv * c.group;
  p.B = c.T <= 257 ? 2 : 1;
  p.Tq = p.Tk = c.T;
  p.dh = c.dh;
  p.dtype = c.dtype;
  p.W = c.W;
  p.S = c.S;
  p.C = (!c.dense && c.extras) ? 2 : 0;
  bna::Rng rng(0xb00d0000u + static_cast<uint64_t>(c.T * 131 + c.dh * 7 + c.group) + (c.extras ? 1000003u : 0u) +
               (c.dtype == DType::kF16 ? 77u : 0u) + (c.dense ? 5u : 0u));
  const int64_t T = c.T, dh = c.dh;
  const size_t nq = static_cast<size_t>(p.B * p.Hq * T * dh), nk = static_cast<size_t>(p.B * p.Hkv * T * dh);
  const size_t rows = static_cast<size_t>(p.B * p.Hq * T);
  const HostTensor q = random_tensor(nq, c.dtype, rng, true), k = random_tensor(nk, c.dtype, rng, true),
                   v = random_tensor(nk, c.dtype, rng, false), dO = random_tensor(nq, c.dtype, rng, true);
  if (p.C > 0) p.ex = make_extras(p.Hkv, T, p.C, p.W, p.S, rng);

  DeviceBuffer dq_in = upload(q.bits.data(), nq * 2), dk_in = upload(k.bits.data(), nk * 2),
               dv_in = upload(v.bits.data(), nk * 2), ddo = upload(dO.bits.data(), nq * 2);
  DeviceBuffer dex;
  if (p.C > 0) dex = upload(p.ex.data(), p.ex.size() * 4);
  DeviceBuffer dout, dlse, ws;
  ASSERT_TRUE(dout.allocate(nq * 2).is_ok());
  ASSERT_TRUE(dlse.allocate(rows * 4).is_ok());
  DeviceBuffer gq = poisoned(nq * 2), gk = poisoned(nk * 2), gv = poisoned(nk * 2);
  bna::cuda::AttnBwdArgs a;
  a.fwd.q = dq_in.get(); a.fwd.k = dk_in.get(); a.fwd.v = dv_in.get(); a.fwd.out = dout.get();
  a.fwd.lse = dlse.as<float>();
  a.fwd.B = p.B; a.fwd.Hq = p.Hq; a.fwd.Hkv = p.Hkv; a.fwd.T = T; a.fwd.dh = dh; a.fwd.dtype = c.dtype;
  const size_t wsb = bna::cuda::attn_bwd_workspace_bytes(a.fwd);
  ASSERT_TRUE(ws.allocate(wsb).is_ok());
  ASSERT_TRUE(bna::cuda::device_memset(ws.get(), 0xFF, wsb).is_ok());  // the kernels must not rely on zeros
  a.dout = ddo.get(); a.dq = gq.get(); a.dk = gk.get(); a.dv = gv.get();
  a.workspace = ws.get(); a.workspace_bytes = wsb;
  const int32_t* exd = p.C > 0 ? dex.as<int32_t>() : nullptr;
  bna::Status st = c.dense ? bna::cuda::dense_causal_fwd(a.fwd) : bna::cuda::streams_fwd(a.fwd, p.W, p.S, exd, p.C);
  ASSERT_TRUE(st.is_ok()) << name << ": " << st.to_string();
  st = c.dense ? bna::cuda::dense_causal_bwd(a) : bna::cuda::streams_bwd(a, p.W, p.S, exd, p.C);
  ASSERT_TRUE(st.is_ok()) << name << ": " << st.to_string();
  st = bna::cuda::device_synchronize();
  ASSERT_TRUE(st.is_ok()) << name << ": " << st.to_string();
  const auto out_bits = download<uint16_t>(dout, nq);
  const auto lse = download<float>(dlse, rows);
  const auto gq_h = download<uint16_t>(gq, nq), gk_h = download<uint16_t>(gk, nk), gv_h = download<uint16_t>(gv, nk);

  // Phase 1 (rows in parallel): P and dS per allowed pair in both precisions, and dq.
  const double scale = 1.0 / std::sqrt(static_cast<double>(dh));
  const float scalef = static_cast<float>(scale);
  std::vector<std::vector<PairGrad>> pairs(rows);
  std::vector<double> dq64(nq), dqlp(nq);
  bna::parallel_for_dynamic(0, static_cast<int64_t>(rows), 8, [&](int64_t row) {
    const int64_t i = row % T, bh = row / T, hq = bh % p.Hq, b = bh / p.Hq, hkv = hq / c.group;
    std::vector<int64_t> keys;
    std::vector<uint8_t> tag;
    row_keys(p, hkv, i, keys, tag);
    const float* qr = &q.f[static_cast<size_t>(row * dh)];
    const float* dor = &dO.f[static_cast<size_t>(row * dh)];
    const size_t kvb = static_cast<size_t>((b * p.Hkv + hkv) * T * dh);
    const size_t n = keys.size();
    const RowDots rd = row_dots(qr, dor, k, v, kvb, keys, dh, scale);
    const std::vector<double>& s64 = rd.s64;
    const std::vector<double>& dp64 = rd.dp64;
    const std::vector<float>& s32 = rd.s32;
    const std::vector<float>& dp32 = rd.dp32;
    const double m = rd.max64;
    double l = 0;
    for (size_t x = 0; x < n; ++x) l += std::exp(s64[x] - m);
    const double lse64 = m + std::log(l);
    std::vector<double> o64(static_cast<size_t>(dh), 0.0);
    for (size_t x = 0; x < n; ++x) {
      const double pe = std::exp(s64[x] - lse64);
      const float* vr = &v.f[kvb + static_cast<size_t>(keys[x] * dh)];
      for (int64_t d = 0; d < dh; ++d) o64[static_cast<size_t>(d)] += pe * vr[d];
    }
    double D64 = 0;
    float D32 = 0;
    for (int64_t d = 0; d < dh; ++d) {
      D64 += dor[d] * o64[static_cast<size_t>(d)];
      D32 += dor[d] * to_f(c.dtype, out_bits[static_cast<size_t>(row * dh + d)]);
    }
    const float lse_gpu = lse[static_cast<size_t>(row)];
    auto& pr = pairs[static_cast<size_t>(row)];
    pr.resize(n);
    double* q64 = &dq64[static_cast<size_t>(row * dh)];
    double* qlp = &dqlp[static_cast<size_t>(row * dh)];
    std::vector<float> acc(static_cast<size_t>(dh), 0.0f);
    for (size_t x = 0; x < n; ++x) {
      const double pe = std::exp(s64[x] - lse64);
      const double ds = pe * (dp64[x] - D64);
      const float pl = std::exp(s32[x] - lse_gpu);
      float dsl = pl * (dp32[x] - D32);
      float plr = pl;
      if (tag[x] == 0) {
        dsl = bna::round_to(c.dtype, dsl);
        plr = bna::round_to(c.dtype, pl);
      }
      pr[x] = {static_cast<int32_t>(keys[x]), pe, ds, plr, dsl};
      const float* kr = &k.f[kvb + static_cast<size_t>(keys[x] * dh)];
      for (int64_t d = 0; d < dh; ++d) {
        q64[d] += scale * ds * kr[d];
        acc[static_cast<size_t>(d)] += dsl * kr[d];
      }
    }
    for (int64_t d = 0; d < dh; ++d) qlp[d] = bna::round_to(c.dtype, scalef * acc[static_cast<size_t>(d)]);
  });
  // Phase 2: dk, dv from the pairs.
  std::vector<double> dk64, dv64, dklp, dvlp;
  kv_grads_from_pairs(pairs, q, dO, p.B, p.Hq, p.Hkv, T, dh, c.dtype, scale, dk64, dv64, dklp, dvlp);
  const std::string msg = check("dq", c.dtype, gq_h, dq64, dqlp) + check("dk", c.dtype, gk_h, dk64, dklp) +
                          check("dv", c.dtype, gv_h, dv64, dvlp);
  EXPECT_TRUE(msg.empty()) << name << ": " << msg;
}

std::vector<BwdCase> bwd_cases() {
  std::vector<BwdCase> v;
  for (int64_t T : {1, 63, 257, 1000})
    for (int64_t dh : {64, 128})
      for (int64_t g : {1, 4, 8}) {
        v.push_back({true, T, dh, g, DType::kBF16, false});
        v.push_back({false, T, dh, g, DType::kBF16, false});
        v.push_back({false, T, dh, g, DType::kBF16, true});
      }
  for (int64_t dh : {64, 128}) {
    v.push_back({true, 300, dh, 4, DType::kF16, false});
    v.push_back({false, 1000, dh, 1, DType::kF16, true});
    v.push_back({false, 4097, dh, 1, DType::kBF16, true});  // many landmark tiles and query chunks
  }
  v.push_back({false, 1000, 128, 4, DType::kBF16, true, 64, 16});
  v.push_back({false, 1000, 64, 1, DType::kBF16, true, 100, 48});
  v.push_back({false, 777, 128, 1, DType::kBF16, true, 0, 7});
  v.push_back({false, 300, 64, 1, DType::kBF16, false, 500, 0});
  return v;
}

INSTANTIATE_TEST_SUITE_P(Sweep, AttnBwdCuda, ::testing::ValuesIn(bwd_cases()),
                         [](const ::testing::TestParamInfo<BwdCase>& info) { return bwd_name(info.param); });

// ---------------------------------------------------------------------------------------------------
struct DecCase {
  bool dense;
  int64_t Tq, Tk, dh, group;
  DType dtype;
  bool extras;
  int64_t W = 64, S = 64;
};

std::string dec_name(const DecCase& c) {
  std::string s = c.dense ? "dense" : "streams";
  s += std::string("_") + bna::dtype_name(c.dtype) + "_Tq" + std::to_string(c.Tq) + "_Tk" + std::to_string(c.Tk) + "_dh" +
       std::to_string(c.dh) + "_g" + std::to_string(c.group);
  if (!c.dense) s += "_W" + std::to_string(c.W) + "_S" + std::to_string(c.S) + (c.extras ? "_ext" : "_noext");
  return s;
}

class AttnDecodeCuda : public ::testing::TestWithParam<DecCase> {};

TEST_P(AttnDecodeCuda, MatchesFloat64Reference) {
  if (!bna::cuda::device_available()) GTEST_SKIP() << "no CUDA device (cudaGetDeviceCount reports none)";
  const DecCase c = GetParam();
  const std::string name = dec_name(c);
  Prob p;
  p.dense = c.dense;
  p.Hkv = c.group == 8 ? 1 : 2;
  p.Hq = p.Hkv * c.group;
  p.B = 2;
  p.Tq = c.Tq;
  p.Tk = c.Tk;
  p.dh = c.dh;
  p.dtype = c.dtype;
  p.W = c.W;
  p.S = c.S;
  p.C = (!c.dense && c.extras) ? 3 : 0;
  bna::Rng rng(0xdec0000u + static_cast<uint64_t>(c.Tk * 13 + c.Tq * 7 + c.dh + c.group) + (c.extras ? 99u : 0u));
  const int64_t dh = c.dh;
  const size_t nq = static_cast<size_t>(p.B * p.Hq * p.Tq * dh), nk = static_cast<size_t>(p.B * p.Hkv * p.Tk * dh);
  const size_t rows = static_cast<size_t>(p.B * p.Hq * p.Tq);
  const HostTensor q = random_tensor(nq, c.dtype, rng, true), k = random_tensor(nk, c.dtype, rng, true),
                   v = random_tensor(nk, c.dtype, rng, false);
  if (p.C > 0) p.ex = make_extras(p.Hkv, p.Tk, p.C, p.W, p.S, rng);
  DeviceBuffer dqb = upload(q.bits.data(), nq * 2), dkb = upload(k.bits.data(), nk * 2), dvb = upload(v.bits.data(), nk * 2);
  DeviceBuffer dex, dout, dlse, ws;
  if (p.C > 0) dex = upload(p.ex.data(), p.ex.size() * 4);
  ASSERT_TRUE(dout.allocate(nq * 2).is_ok());
  ASSERT_TRUE(dlse.allocate(rows * 4).is_ok());
  ASSERT_TRUE(bna::cuda::device_memset(dout.get(), 0xFF, nq * 2).is_ok());
  ASSERT_TRUE(bna::cuda::device_memset(dlse.get(), 0xFF, rows * 4).is_ok());
  bna::cuda::DecodeArgs a;
  a.q = dqb.get(); a.k = dkb.get(); a.v = dvb.get(); a.out = dout.get(); a.lse = dlse.as<float>();
  a.B = p.B; a.Hq = p.Hq; a.Hkv = p.Hkv; a.Tq = p.Tq; a.Tk = p.Tk; a.dh = dh; a.dtype = c.dtype;
  const size_t wsb = bna::cuda::decode_workspace_bytes(a, c.dense, p.W, p.S, p.C);
  ASSERT_TRUE(ws.allocate(wsb).is_ok());
  ASSERT_TRUE(bna::cuda::device_memset(ws.get(), 0xFF, wsb).is_ok());
  a.workspace = ws.get();
  a.workspace_bytes = wsb;
  bna::Status st = c.dense ? bna::cuda::dense_decode(a)
                           : bna::cuda::streams_decode(a, p.W, p.S, p.C > 0 ? dex.as<int32_t>() : nullptr, p.C);
  ASSERT_TRUE(st.is_ok()) << name << ": " << st.to_string();
  st = bna::cuda::device_synchronize();
  ASSERT_TRUE(st.is_ok()) << name << ": " << st.to_string();
  const auto got = download<uint16_t>(dout, nq);
  const auto lse = download<float>(dlse, rows);

  std::vector<double> o64(nq), olp(nq), l64(rows), llp(rows);
  const double scale = 1.0 / std::sqrt(static_cast<double>(dh));
  bna::parallel_for_dynamic(0, static_cast<int64_t>(rows), 4, [&](int64_t row) {
    const int64_t t = row % p.Tq, bh = row / p.Tq, hq = bh % p.Hq, b = bh / p.Hq, hkv = hq / c.group;
    const int64_t pos = p.Tk - p.Tq + t;
    std::vector<int64_t> keys;
    std::vector<uint8_t> tag;
    row_keys(p, hkv, pos, keys, tag);
    const float* qr = &q.f[static_cast<size_t>(row * dh)];
    const size_t kvb = static_cast<size_t>((b * p.Hkv + hkv) * p.Tk * dh);
    std::vector<double> s64(keys.size());
    std::vector<float> s32(keys.size());
    double m = -INFINITY;
    float mf = -INFINITY;
    for (size_t x = 0; x < keys.size(); ++x) {
      const float* kr = &k.f[kvb + static_cast<size_t>(keys[x] * dh)];
      double a64 = 0;
      float a32 = 0;
      for (int64_t d = 0; d < dh; ++d) { a64 += static_cast<double>(qr[d]) * kr[d]; a32 += qr[d] * kr[d]; }
      s64[x] = a64 * scale;
      s32[x] = a32 * static_cast<float>(scale);
      m = std::max(m, s64[x]);
      mf = std::max(mf, s32[x]);
    }
    double l = 0;
    float lf = 0;
    std::vector<double> acc(static_cast<size_t>(dh), 0.0);
    std::vector<float> accf(static_cast<size_t>(dh), 0.0f);
    for (size_t x = 0; x < keys.size(); ++x) {
      const float* vr = &v.f[kvb + static_cast<size_t>(keys[x] * dh)];
      const double pe = std::exp(s64[x] - m);
      const float pf = std::exp(s32[x] - mf);
      l += pe;
      lf += pf;
      for (int64_t d = 0; d < dh; ++d) { acc[static_cast<size_t>(d)] += pe * vr[d]; accf[static_cast<size_t>(d)] += pf * vr[d]; }
    }
    for (int64_t d = 0; d < dh; ++d) {
      o64[static_cast<size_t>(row * dh + d)] = acc[static_cast<size_t>(d)] / l;
      olp[static_cast<size_t>(row * dh + d)] = bna::round_to(c.dtype, accf[static_cast<size_t>(d)] / lf);
    }
    l64[static_cast<size_t>(row)] = m + std::log(l);
    llp[static_cast<size_t>(row)] = mf + std::log(lf);
  });
  std::string msg = check("out", c.dtype, got, o64, olp);
  double lmax = 0, llpmax = 0;
  for (size_t r = 0; r < rows; ++r) {
    if (!std::isfinite(lse[r])) { msg += "lse non-finite at row " + std::to_string(r); break; }
    lmax = std::max(lmax, std::fabs(lse[r] - l64[r]));
    llpmax = std::max(llpmax, std::fabs(llp[r] - l64[r]));
  }
  EXPECT_LE(lmax, 2 * llpmax + 2e-4) << name << " lse";
  EXPECT_TRUE(msg.empty()) << name << ": " << msg;
}

std::vector<DecCase> dec_cases() {
  std::vector<DecCase> v;
  for (int64_t Tk : {1, 100, 1000, 5003})
    for (int64_t Tq : {1, 3})
      for (int64_t g : {1, 4, 8}) {
        if (Tq > Tk) continue;
        v.push_back({true, Tq, Tk, 128, g, DType::kBF16, false});
        v.push_back({false, Tq, Tk, 128, g, DType::kBF16, true});
      }
  v.push_back({false, 1, 5003, 64, 4, DType::kBF16, false});
  v.push_back({true, 2, 777, 64, 1, DType::kF16, false});
  v.push_back({false, 4, 2000, 64, 8, DType::kF16, true, 100, 48});  // 32 rows per KV head: 8 passes
  v.push_back({false, 1, 300, 128, 1, DType::kBF16, true, 0, 7});
  return v;
}

INSTANTIATE_TEST_SUITE_P(Sweep, AttnDecodeCuda, ::testing::ValuesIn(dec_cases()),
                         [](const ::testing::TestParamInfo<DecCase>& info) { return dec_name(info.param); });

// ---------------------------------------------------------------------------------------------------
// plan/run with Backend::kCuda: the dispatch must give exactly what the direct launches give, and
// agree with the CPU backend on the same graph (streams from an ABI graph with one cycle).
TEST(AttnCudaDispatch, PlanRunMatchesDirectLaunchAndCpu) {
  if (!bna::cuda::device_available()) GTEST_SKIP() << "no CUDA device (cudaGetDeviceCount reports none)";
  using namespace bna;
  const int64_t B = 1, Hq = 4, Hkv = 2, T = 333, dh = 64, W = 16, S = 8;
  const graph::GraphAbi abi = bna::test::butterfly_abi(Hkv, T, W, S, 1, 7);
  attn::GraphSource src;
  src.abi = &abi;
  attn::Shape shape;
  shape.B = B; shape.Hq = Hq; shape.Hkv = Hkv; shape.Tq = shape.Tk = T; shape.dh = dh; shape.dtype = DType::kBF16;
  attn::Options opt;
  opt.backend = attn::Backend::kCuda;
  auto plan = attn::plan(src, shape, opt);
  ASSERT_TRUE(plan.has_value()) << plan.status().to_string();
  ASSERT_EQ(plan->path, attn::Path::kStreams) << plan->reason;
  opt.backend = attn::Backend::kCpu;
  auto cplan = attn::plan(src, shape, opt);
  ASSERT_TRUE(cplan.has_value()) << cplan.status().to_string();

  bna::Rng rng(4242);
  const size_t nq = static_cast<size_t>(B * Hq * T * dh), nk = static_cast<size_t>(B * Hkv * T * dh);
  const HostTensor q = random_tensor(nq, DType::kBF16, rng, true), k = random_tensor(nk, DType::kBF16, rng, true),
                   v = random_tensor(nk, DType::kBF16, rng, false), dO = random_tensor(nq, DType::kBF16, rng, true);
  DeviceBuffer dq = upload(q.bits.data(), nq * 2), dk = upload(k.bits.data(), nk * 2), dv = upload(v.bits.data(), nk * 2),
               ddo = upload(dO.bits.data(), nq * 2);
  DeviceBuffer o1, l1, o2, l2, gq, gk, gv, gq2, gk2, gv2, ws;
  for (DeviceBuffer* b : {&o1, &o2, &gq, &gq2}) ASSERT_TRUE(b->allocate(nq * 2).is_ok());
  for (DeviceBuffer* b : {&gk, &gv, &gk2, &gv2}) ASSERT_TRUE(b->allocate(nk * 2).is_ok());
  for (DeviceBuffer* b : {&l1, &l2}) ASSERT_TRUE(b->allocate(static_cast<size_t>(B * Hq * T) * 4).is_ok());
  auto view4 = [](void* d, int64_t a, int64_t b, int64_t c, int64_t e) {
    return TensorView{d, DType::kBF16, bna::Shape{a, b, c, e}};
  };
  const TensorView vq = view4(dq.get(), B, Hq, T, dh), vk = view4(dk.get(), B, Hkv, T, dh), vv = view4(dv.get(), B, Hkv, T, dh);
  const TensorView vo = view4(o1.get(), B, Hq, T, dh), vdo = view4(ddo.get(), B, Hq, T, dh);
  const TensorView vl{l1.get(), DType::kF32, bna::Shape{B, Hq, T}};
  Status st = attn::run(*plan, vq, vk, vv, vo, vl);
  ASSERT_TRUE(st.is_ok()) << st.to_string();
  st = attn::run_backward(*plan, vq, vk, vv, vo, vl, vdo, view4(gq.get(), B, Hq, T, dh), view4(gk.get(), B, Hkv, T, dh),
                          view4(gv.get(), B, Hkv, T, dh));
  ASSERT_TRUE(st.is_ok()) << st.to_string();

  // Direct launches with the same StreamsGraph.
  auto sg = cpu::streams_from_abi(abi, W, S);
  ASSERT_TRUE(sg.has_value());
  DeviceBuffer dex;
  if (sg->C > 0) dex = upload(sg->extra.data(), sg->extra.size() * 4);
  cuda::AttnBwdArgs a;
  a.fwd.q = dq.get(); a.fwd.k = dk.get(); a.fwd.v = dv.get(); a.fwd.out = o2.get(); a.fwd.lse = l2.as<float>();
  a.fwd.B = B; a.fwd.Hq = Hq; a.fwd.Hkv = Hkv; a.fwd.T = T; a.fwd.dh = dh;
  ASSERT_TRUE(ws.allocate(cuda::attn_bwd_workspace_bytes(a.fwd)).is_ok());
  a.dout = ddo.get(); a.dq = gq2.get(); a.dk = gk2.get(); a.dv = gv2.get();
  a.workspace = ws.get(); a.workspace_bytes = ws.bytes();
  const int32_t* exd = sg->C > 0 ? dex.as<int32_t>() : nullptr;
  ASSERT_TRUE(cuda::streams_fwd(a.fwd, sg->W, sg->S, exd, sg->C).is_ok());
  ASSERT_TRUE(cuda::streams_bwd(a, sg->W, sg->S, exd, sg->C).is_ok());
  ASSERT_TRUE(cuda::device_synchronize().is_ok());
  EXPECT_EQ(download<uint16_t>(o1, nq), download<uint16_t>(o2, nq));
  EXPECT_EQ(download<uint16_t>(gq, nq), download<uint16_t>(gq2, nq));
  // dk/dv use f32 atomics: the order of the adds may differ between runs, so compare within rounding.
  const auto k1 = download<uint16_t>(gk, nk), k2 = download<uint16_t>(gk2, nk);
  double dkdiff = 0;
  for (size_t x = 0; x < nk; ++x) dkdiff = std::max(dkdiff, static_cast<double>(std::fabs(bf16_to_float(k1[x]) - bf16_to_float(k2[x]))));
  EXPECT_LE(dkdiff, 1e-2);

  // The CPU backend on the same graph (f32 math from the same bf16 inputs).
  std::vector<uint16_t> co(nq);
  std::vector<float> cl(static_cast<size_t>(B * Hq * T));
  std::vector<uint16_t> qb = q.bits, kb = k.bits, vb = v.bits;
  st = attn::run(*cplan, TensorView{qb.data(), DType::kBF16, bna::Shape{B, Hq, T, dh}},
                 TensorView{kb.data(), DType::kBF16, bna::Shape{B, Hkv, T, dh}},
                 TensorView{vb.data(), DType::kBF16, bna::Shape{B, Hkv, T, dh}},
                 TensorView{co.data(), DType::kBF16, bna::Shape{B, Hq, T, dh}},
                 TensorView{cl.data(), DType::kF32, bna::Shape{B, Hq, T}});
  ASSERT_TRUE(st.is_ok()) << st.to_string();
  const auto go = download<uint16_t>(o1, nq);
  const auto gl = download<float>(l1, cl.size());
  double omax = 0, lmax = 0;
  for (size_t x = 0; x < nq; ++x) omax = std::max(omax, static_cast<double>(std::fabs(bf16_to_float(go[x]) - bf16_to_float(co[x]))));
  for (size_t x = 0; x < cl.size(); ++x) lmax = std::max(lmax, static_cast<double>(std::fabs(gl[x] - cl[x])));
  // Same function: outputs within a few bf16 ulps at |out| < 1 (P rounded to bf16 on the GPU).
  EXPECT_LE(omax, 0x1.0p-6) << "cuda vs cpu out";
  EXPECT_LE(lmax, 1e-3) << "cuda vs cpu lse";
}

TEST(AttnCudaDispatch, RejectsWhatTheKernelsDoNotCover) {
  using namespace bna;
  attn::GraphSource src;
  src.dense = true;
  attn::Shape shape;
  shape.Tq = shape.Tk = 64;
  shape.dh = 64;
  shape.dtype = DType::kF32;
  attn::Options opt;
  opt.backend = attn::Backend::kCuda;
  auto p = attn::plan(src, shape, opt);
  ASSERT_FALSE(p.has_value());
  EXPECT_NE(p.status().message().find("f32"), std::string::npos) << p.status().message();
  shape.dtype = DType::kBF16;
  shape.dh = 96;
  p = attn::plan(src, shape, opt);
  ASSERT_FALSE(p.has_value());
  EXPECT_NE(p.status().message().find("dh=96"), std::string::npos) << p.status().message();
  shape.dh = 64;
  opt.use_edge_bias = true;
  EXPECT_FALSE(attn::plan(src, shape, opt).has_value());
}

// Argument checks happen before any CUDA call, so they run with or without a device.
TEST(AttnBwdDecodeCudaArgs, RejectsBadArguments) {
  alignas(256) static uint16_t fake[1024];
  static float fake_lse[16];
  bna::cuda::AttnBwdArgs a;
  a.fwd.q = a.fwd.k = a.fwd.v = fake; a.fwd.out = fake; a.fwd.lse = fake_lse;
  a.fwd.T = 4; a.fwd.dh = 64;
  a.dout = fake; a.dq = fake; a.dk = fake; a.dv = fake;
  bna::Status st = bna::cuda::dense_causal_bwd(a);  // no workspace
  EXPECT_EQ(st.code(), bna::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("workspace"), std::string::npos) << st.message();
  a.workspace = fake; a.workspace_bytes = sizeof(fake);
  a.dq = reinterpret_cast<void*>(reinterpret_cast<uintptr_t>(fake) + 2);
  st = bna::cuda::streams_bwd(a, 64, 64, nullptr, 0);
  EXPECT_EQ(st.code(), bna::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("aligned"), std::string::npos) << st.message();
  a.dq = fake; a.fwd.dh = 80;
  EXPECT_EQ(bna::cuda::streams_bwd(a, 64, 64, nullptr, 0).code(), bna::StatusCode::kInvalidArgument);
  a.fwd.dh = 64;
  EXPECT_EQ(bna::cuda::streams_bwd(a, 64, 64, nullptr, 3).code(), bna::StatusCode::kInvalidArgument);

  bna::cuda::DecodeArgs d;
  d.q = d.k = d.v = fake; d.out = fake; d.lse = fake_lse;
  d.Tq = 1; d.Tk = 8; d.dh = 64; d.Hq = 72; d.Hkv = 1;  // G*Tq = 72 > 64
  st = bna::cuda::dense_decode(d);
  EXPECT_EQ(st.code(), bna::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("G*Tq=72"), std::string::npos) << st.message();
  d.Hq = 1; d.Tq = 9;  // Tq > Tk
  EXPECT_EQ(bna::cuda::dense_decode(d).code(), bna::StatusCode::kInvalidArgument);
  d.Tq = 1; d.dtype = DType::kF32;
  EXPECT_EQ(bna::cuda::dense_decode(d).code(), bna::StatusCode::kInvalidArgument);
  d.dtype = DType::kBF16;
  st = bna::cuda::streams_decode(d, 8, 4, nullptr, 0);  // no workspace
  EXPECT_EQ(st.code(), bna::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("workspace"), std::string::npos) << st.message();
}

}  // namespace

#else  // !BNA_HAVE_CUDA

TEST(AttnCudaDispatch, ReportsBuiltWithoutCuda) {
  using namespace bna;
  EXPECT_FALSE(attn::cuda_available());
  attn::GraphSource src;
  src.dense = true;
  attn::Shape shape;
  shape.Tq = shape.Tk = 64;
  shape.dtype = DType::kBF16;
  attn::Options opt;
  opt.backend = attn::Backend::kCuda;
  auto p = attn::plan(src, shape, opt);
  ASSERT_FALSE(p.has_value());
  EXPECT_NE(p.status().message().find("without CUDA"), std::string::npos) << p.status().message();
}

#endif
