// Host-side helpers of the GPU tests (backward, KV views): dtype-rounded random tensors, device upload/download,
// and the gradient pass rule of docs/numerics.md (max and mean error against ref64 within twice the
// low-precision reference's, plus a floor of half an ulp of the dtype at max|ref64|; NaN/Inf never
// passes). CUDA builds only.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "attention/cuda/device_memory.hpp"
#include "attention/cuda/launch.hpp"
#include "bna/dtype.hpp"
#include "bna/rng.hpp"
#include "bna/threads.hpp"

namespace bna::test::cuda_bwd {

using bna::DType;
using bna::cuda::DeviceBuffer;

struct HostTensor {
  std::vector<uint16_t> bits;
  std::vector<float> f;  // the rounded values
};

inline HostTensor random_tensor(size_t n, DType dt, bna::Rng& rng, bool normal) {
  HostTensor t;
  t.bits.resize(n);
  t.f.resize(n);
  for (size_t x = 0; x < n; ++x) {
    const float v = normal ? static_cast<float>(rng.normal()) : static_cast<float>(2.0 * rng.uniform01() - 1.0);
    t.bits[x] = dt == DType::kBF16 ? bna::float_to_bf16(v) : bna::float_to_f16(v);
    t.f[x] = dt == DType::kBF16 ? bna::bf16_to_float(t.bits[x]) : bna::f16_to_float(t.bits[x]);
  }
  return t;
}

inline float to_f(DType dt, uint16_t b) { return dt == DType::kBF16 ? bna::bf16_to_float(b) : bna::f16_to_float(b); }

// A device buffer of `bytes` filled with 0xFF: NaN in bf16/f16/f32, so an element a kernel should
// have written and did not fails the pass rule.
inline DeviceBuffer poisoned(size_t bytes) {
  DeviceBuffer d;
  EXPECT_TRUE(d.allocate(bytes).is_ok());
  EXPECT_TRUE(bna::cuda::device_memset(d.get(), 0xFF, bytes).is_ok());
  return d;
}

// Arguments for the argument-error tests: q, k, v, out and lse all point into `buf` (1 MiB, which
// the caller keeps), B = Hq = Hkv = 1, T = 64, dh = 64. Valid as they stand; each test breaks one
// field and expects a named error before any launch reads the buffer.
inline bna::cuda::AttnArgs error_test_args(DeviceBuffer& buf) {
  EXPECT_TRUE(buf.allocate(1 << 20).is_ok());
  bna::cuda::AttnArgs a;
  a.q = a.k = a.v = buf.get();
  a.out = buf.get();
  a.lse = buf.as<float>();
  a.T = 64;
  a.dh = 64;
  return a;
}

inline DeviceBuffer upload(const void* src, size_t bytes) {
  DeviceBuffer d;
  EXPECT_TRUE(d.allocate(bytes).is_ok());
  EXPECT_TRUE(bna::cuda::copy_to_device(d.get(), src, bytes).is_ok());
  return d;
}

template <class T>
inline std::vector<T> download(const DeviceBuffer& d, size_t n) {
  std::vector<T> h(n);
  EXPECT_TRUE(bna::cuda::copy_to_host(h.data(), d.get(), n * sizeof(T)).is_ok());
  return h;
}

// Compares got (dtype bits) with ref64 and ref_lp under the pass rule; returns "" or a failure text.
inline std::string check(const char* what, DType dt, const std::vector<uint16_t>& got, const std::vector<double>& r64,
                  const std::vector<double>& rlp) {
  double amax = 0;
  for (double x : r64) amax = std::max(amax, std::fabs(x));
  const double floor = (dt == DType::kBF16 ? 0x1.0p-9 : 0x1.0p-12) * std::max(amax, 1e-3);
  double gmax = 0, gsum = 0, lmax = 0, lsum = 0;
  for (size_t x = 0; x < got.size(); ++x) {
    const double g = to_f(dt, got[x]);
    if (!std::isfinite(g)) return std::string(what) + ": non-finite at element " + std::to_string(x);
    const double e = std::fabs(g - r64[x]), el = std::fabs(rlp[x] - r64[x]);
    gmax = std::max(gmax, e);
    gsum += e;
    lmax = std::max(lmax, el);
    lsum += el;
  }
  const double n = static_cast<double>(std::max<size_t>(1, got.size()));
  std::string msg;
  if (!(gmax <= 2 * lmax + floor))
    msg += std::string(what) + " max error " + std::to_string(gmax) + " > 2*" + std::to_string(lmax) + " + " + std::to_string(floor) + "; ";
  if (!(gsum / n <= 2 * lsum / n + floor / 4))
    msg += std::string(what) + " mean error " + std::to_string(gsum / n) + " > 2*" + std::to_string(lsum / n) + " + " + std::to_string(floor / 4) + "; ";
  return msg;
}

// Scores (scale * q.k) and dO.v of one query row against keys (rows of the [.., T, dh] K/V at
// offset kvb), in float64 and in f32 (sums in d order), with the row maxima of both.
struct RowDots {
  std::vector<double> s64, dp64;
  std::vector<float> s32, dp32;
  double max64 = -std::numeric_limits<double>::infinity();
  float max32 = -std::numeric_limits<float>::infinity();
};
inline RowDots row_dots(const float* qr, const float* dor, const HostTensor& k, const HostTensor& v, size_t kvb,
                        const std::vector<int64_t>& keys, int64_t dh, double scale) {
  const size_t n = keys.size();
  const float scalef = static_cast<float>(scale);
  RowDots r;
  r.s64.resize(n); r.dp64.resize(n); r.s32.resize(n); r.dp32.resize(n);
  for (size_t x = 0; x < n; ++x) {
    const float* kr = &k.f[kvb + static_cast<size_t>(keys[x] * dh)];
    const float* vr = &v.f[kvb + static_cast<size_t>(keys[x] * dh)];
    double a64 = 0, d64 = 0;
    float a32 = 0, d32 = 0;
    for (int64_t d = 0; d < dh; ++d) {
      a64 += static_cast<double>(qr[d]) * kr[d];
      d64 += static_cast<double>(dor[d]) * vr[d];
      a32 += qr[d] * kr[d];
      d32 += dor[d] * vr[d];
    }
    r.s64[x] = a64 * scale;
    r.dp64[x] = d64;
    r.s32[x] = a32 * scalef;
    r.dp32[x] = d32;
    r.max64 = std::max(r.max64, r.s64[x]);
    r.max32 = std::max(r.max32, r.s32[x]);
  }
  return r;
}

// One allowed (query row, key) pair of a backward reference: key j, the dV coefficient p and dS, in
// float64 and in the kernels' low precision.
struct PairGrad {
  int32_t j;
  double p64, ds64;
  float plp, dslp;
};

// dK[j] += scale * dS * q_row and dV[j] += p * dO_row over every row's pairs (rows [B, Hq, T]; key
// rows [B, Hkv, T], G = Hq / Hkv query heads per KV head): float64, and f32 sums rounded to the dtype.
inline void kv_grads_from_pairs(const std::vector<std::vector<PairGrad>>& pairs, const HostTensor& q,
                                const HostTensor& dO, int64_t B, int64_t Hq, int64_t Hkv, int64_t T, int64_t dh, DType dt,
                                double scale, std::vector<double>& dk64, std::vector<double>& dv64,
                                std::vector<double>& dklp, std::vector<double>& dvlp) {
  const size_t nk = static_cast<size_t>(B * Hkv * T * dh);
  const int64_t G = Hq / Hkv;
  const float scalef = static_cast<float>(scale);
  dk64.assign(nk, 0.0);
  dv64.assign(nk, 0.0);
  dklp.assign(nk, 0.0);
  dvlp.assign(nk, 0.0);
  bna::parallel_for_dynamic(0, B * Hkv * dh, 1, [&](int64_t task) {
    const int64_t d = task % dh, bkv = task / dh, b = bkv / Hkv, hkv = bkv % Hkv;
    std::vector<float> k32(static_cast<size_t>(T), 0.0f), v32(static_cast<size_t>(T), 0.0f);
    for (int64_t g = 0; g < G; ++g) {
      const int64_t hq = hkv * G + g;
      for (int64_t i = 0; i < T; ++i) {
        const int64_t row = (b * Hq + hq) * T + i;
        const double qd = q.f[static_cast<size_t>(row * dh + d)], od = dO.f[static_cast<size_t>(row * dh + d)];
        for (const PairGrad& e : pairs[static_cast<size_t>(row)]) {
          const size_t at = static_cast<size_t>((bkv * T + e.j) * dh + d);
          dk64[at] += scale * e.ds64 * qd;
          dv64[at] += e.p64 * od;
          k32[static_cast<size_t>(e.j)] += scalef * e.dslp * static_cast<float>(qd);
          v32[static_cast<size_t>(e.j)] += e.plp * static_cast<float>(od);
        }
      }
    }
    for (int64_t j = 0; j < T; ++j) {
      const size_t at = static_cast<size_t>((bkv * T + j) * dh + d);
      dklp[at] = bna::round_to(dt, k32[static_cast<size_t>(j)]);
      dvlp[at] = bna::round_to(dt, v32[static_cast<size_t>(j)]);
    }
  });
}

}  // namespace bna::test::cuda_bwd
