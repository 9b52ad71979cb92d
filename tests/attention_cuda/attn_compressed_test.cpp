// GPU compressed butterfly forward through plan/run (force_path = compressed, Backend::kCuda) against a
// float64 reference written here from the semantics of docs/numerics.md: query i attends the raw keys
// [c, i], c = max(0, i - tail + 1), plus the means of the routed complete blocks j with (j+1)*Bs <= c
// (a multiset), one softmax. ref64 uses float64 block means of the rounded K/V. ref_lp repeats the
// kernels' rounding points: f32 scores and sums, P rounded to the dtype on the raw band (tensor
// cores), the band's output rounded to the dtype before the f32 merge with the f32 summaries, output
// rounded once. Pass rule as the other forward tests (max and mean error, out and lse). Skips without
// a device; argument checks run anyway.
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

#ifdef BNA_HAVE_CUDA
#include "attention/cuda/device_memory.hpp"
#include "attention/cuda/launch.hpp"
#include "gpu_check.hpp"

namespace {

using bna::DType;
namespace attn = bna::attn;
namespace topo = bna::topo;
using namespace bna::test::cuda_bwd;

struct CCase {
  int64_t T, dh, group;
  DType dtype;
  int64_t tail, Bs;
  bool shared_routing;  // routing H = 1 for every KV head
  bool random_routing;  // random multiset rows (else the butterfly layout)
};

std::string cname(const CCase& c) {
  return std::string(bna::dtype_name(c.dtype)) + "_T" + std::to_string(c.T) + "_dh" + std::to_string(c.dh) + "_g" +
         std::to_string(c.group) + "_L" + std::to_string(c.tail) + "_Bs" + std::to_string(c.Bs) +
         (c.shared_routing ? "_shared" : "") + (c.random_routing ? "_rand" : "_bfly");
}

topo::BlockSparseLayout make_routing(const CCase& c, int64_t H, bna::Rng& rng) {
  if (!c.random_routing) {
    topo::ButterflyOptions bo;
    bo.layer = 2;
    auto L = topo::butterfly_block_layout(c.T, c.Bs, H, bo);
    EXPECT_TRUE(L.has_value()) << L.status().to_string();
    return std::move(L).value();
  }
  // Random rows over all blocks (future ones included: the cutoff must drop them), repeats allowed.
  topo::BlockSparseLayout L;
  L.H = H; L.T = c.T; L.block_size = c.Bs; L.n_blocks = (c.T + c.Bs - 1) / c.Bs;
  for (int64_t h = 0; h < H; ++h) {
    L.head_base.push_back(static_cast<int64_t>(L.indices.size()));
    const int64_t base = L.head_base.back();
    for (int64_t b = 0; b < L.n_blocks; ++b) {
      L.indptr.push_back(static_cast<int32_t>(L.indices.size() - base));
      const int64_t n = static_cast<int64_t>(rng.uniform_below(6));
      for (int64_t e = 0; e < n; ++e) L.indices.push_back(static_cast<int32_t>(rng.uniform_below(static_cast<uint64_t>(L.n_blocks))));
    }
    L.indptr.push_back(static_cast<int32_t>(L.indices.size() - base));
  }
  return L;
}

class AttnCompressedCuda : public ::testing::TestWithParam<CCase> {};

TEST_P(AttnCompressedCuda, MatchesFloat64Reference) {
  if (!bna::cuda::device_available()) GTEST_SKIP() << "no CUDA device (cudaGetDeviceCount reports none)";
  const CCase c = GetParam();
  const std::string name = cname(c);
  const int64_t Hkv = c.group == 8 ? 1 : 2, Hq = Hkv * c.group, T = c.T, dh = c.dh, B = T <= 257 ? 2 : 1;
  bna::Rng rng(0xc0c0000u + static_cast<uint64_t>(T * 131 + dh * 7 + c.group + c.tail * 17 + c.Bs * 1009) +
               (c.shared_routing ? 3u : 0u) + (c.random_routing ? 5u : 0u) + (c.dtype == DType::kF16 ? 77u : 0u));
  const topo::BlockSparseLayout R = make_routing(c, c.shared_routing ? 1 : Hkv, rng);
  attn::GraphSource src;
  src.blocks = &R;
  attn::Options opt;
  opt.backend = attn::Backend::kCuda;
  opt.force_path = attn::Path::kCompressed;
  opt.compressed_tail = c.tail;
  opt.compressed_block = c.Bs;
  attn::Shape shape;
  shape.B = B; shape.Hq = Hq; shape.Hkv = Hkv; shape.Tq = shape.Tk = T; shape.dh = dh; shape.dtype = c.dtype;
  auto plan = attn::plan(src, shape, opt);
  ASSERT_TRUE(plan.has_value()) << name << ": " << plan.status().to_string();

  const size_t nq = static_cast<size_t>(B * Hq * T * dh), nk = static_cast<size_t>(B * Hkv * T * dh);
  const size_t rows = static_cast<size_t>(B * Hq * T);
  const HostTensor q = random_tensor(nq, c.dtype, rng, true), k = random_tensor(nk, c.dtype, rng, true),
                   v = random_tensor(nk, c.dtype, rng, false);
  DeviceBuffer d_q = upload(q.bits.data(), nq * 2), d_k = upload(k.bits.data(), nk * 2), d_v = upload(v.bits.data(), nk * 2);
  DeviceBuffer d_out, d_lse;
  ASSERT_TRUE(d_out.allocate(nq * 2).is_ok());
  ASSERT_TRUE(d_lse.allocate(rows * 4).is_ok());
  ASSERT_TRUE(bna::cuda::device_memset(d_out.get(), 0xFF, nq * 2).is_ok());  // NaN poison
  ASSERT_TRUE(bna::cuda::device_memset(d_lse.get(), 0xFF, rows * 4).is_ok());
  auto v4 = [&](void* d, int64_t h) { return bna::TensorView{d, c.dtype, bna::Shape{B, h, T, dh}}; };
  const bna::Status st = attn::run(*plan, v4(d_q.get(), Hq), v4(d_k.get(), Hkv), v4(d_v.get(), Hkv), v4(d_out.get(), Hq),
                                   bna::TensorView{d_lse.get(), DType::kF32, bna::Shape{B, Hq, T}});
  ASSERT_TRUE(st.is_ok()) << name << ": " << st.to_string();
  ASSERT_TRUE(bna::cuda::device_synchronize().is_ok());
  const auto out_bits = download<uint16_t>(d_out, nq);
  const auto lse = download<float>(d_lse, rows);

  // Block means (f64 and f32, token order) of every complete block of each (b, hkv).
  const int64_t nblk = T / c.Bs;
  std::vector<double> sk64(static_cast<size_t>(B * Hkv * nblk * dh)), sv64(sk64.size());
  std::vector<float> sk32(sk64.size()), sv32(sk64.size());
  for (int64_t bk = 0; bk < B * Hkv; ++bk)
    for (int64_t j = 0; j < nblk; ++j)
      for (int64_t d = 0; d < dh; ++d) {
        double a = 0, b2 = 0;
        float af = 0, bf = 0;
        for (int64_t r = 0; r < c.Bs; ++r) {
          const size_t at = static_cast<size_t>((bk * T + j * c.Bs + r) * dh + d);
          a += k.f[at]; b2 += v.f[at]; af += k.f[at]; bf += v.f[at];
        }
        const size_t o = static_cast<size_t>((bk * nblk + j) * dh + d);
        sk64[o] = a / static_cast<double>(c.Bs); sv64[o] = b2 / static_cast<double>(c.Bs);
        sk32[o] = af * (1.0f / static_cast<float>(c.Bs)); sv32[o] = bf * (1.0f / static_cast<float>(c.Bs));
      }

  const double scale = 1.0 / std::sqrt(static_cast<double>(dh));
  const float scalef = static_cast<float>(scale);
  std::vector<double> o64(nq), olp(nq), l64(rows), llp(rows);
  bna::parallel_for_dynamic(0, static_cast<int64_t>(rows), 16, [&](int64_t row) {
    const int64_t i = row % T, bh = row / T, hq = bh % Hq, b = bh / Hq, hkv = hq / c.group;
    const int64_t cut = std::max<int64_t>(0, i - c.tail + 1);
    const int64_t rh = R.H == 1 ? 0 : hkv, bk = b * Hkv + hkv;
    std::vector<int64_t> blocks;
    for (const int32_t* x = R.row_begin(rh, i / c.Bs); x != R.row_end(rh, i / c.Bs); ++x)
      if ((int64_t{*x} + 1) * c.Bs <= cut) blocks.push_back(*x);
    const float* qr = &q.f[static_cast<size_t>(row * dh)];
    // float64: one softmax over raw keys and summaries.
    std::vector<double> s64;
    std::vector<const double*> v64;
    std::vector<std::vector<double>> rawv;
    for (int64_t j = cut; j <= i; ++j) {
      double a = 0;
      const float* kr = &k.f[static_cast<size_t>((bk * T + j) * dh)];
      for (int64_t d = 0; d < dh; ++d) a += static_cast<double>(qr[d]) * kr[d];
      s64.push_back(a * scale);
    }
    for (int64_t j : blocks) {
      double a = 0;
      const double* kr = &sk64[static_cast<size_t>((bk * nblk + j) * dh)];
      for (int64_t d = 0; d < dh; ++d) a += qr[d] * kr[d];
      s64.push_back(a * scale);
    }
    double m = -std::numeric_limits<double>::infinity();
    for (double x : s64) m = std::max(m, x);
    double l = 0;
    std::vector<double> acc(static_cast<size_t>(dh), 0.0);
    for (size_t n = 0; n < s64.size(); ++n) {
      const double p = std::exp(s64[n] - m);
      l += p;
      for (int64_t d = 0; d < dh; ++d) {
        const double vv = static_cast<int64_t>(n) <= i - cut ? static_cast<double>(v.f[static_cast<size_t>((bk * T + cut + static_cast<int64_t>(n)) * dh + d)])
                                                              : sv64[static_cast<size_t>((bk * nblk + blocks[n - static_cast<size_t>(i - cut + 1)]) * dh + d)];
        acc[static_cast<size_t>(d)] += p * vv;
      }
    }
    for (int64_t d = 0; d < dh; ++d) o64[static_cast<size_t>(row * dh + d)] = acc[static_cast<size_t>(d)] / l;
    l64[static_cast<size_t>(row)] = m + std::log(l);
    // Low precision: the band (P rounded), its output rounded, then the f32 merge with summaries.
    float mb = -std::numeric_limits<float>::infinity();
    std::vector<float> sb;
    for (int64_t j = cut; j <= i; ++j) {
      float a = 0;
      const float* kr = &k.f[static_cast<size_t>((bk * T + j) * dh)];
      for (int64_t d = 0; d < dh; ++d) a += qr[d] * kr[d];
      sb.push_back(a * scalef);
      mb = std::max(mb, sb.back());
    }
    float lb = 0;
    std::vector<float> ab(static_cast<size_t>(dh), 0.0f);
    for (size_t n = 0; n < sb.size(); ++n) {
      const float p = std::exp(sb[n] - mb);
      const float pr = bna::round_to(c.dtype, p);
      lb += p;
      for (int64_t d = 0; d < dh; ++d) ab[static_cast<size_t>(d)] += pr * v.f[static_cast<size_t>((bk * T + cut + static_cast<int64_t>(n)) * dh + d)];
    }
    float mm = mb + std::log(lb), ll = 1.0f;
    std::vector<float> am(static_cast<size_t>(dh));
    for (int64_t d = 0; d < dh; ++d) am[static_cast<size_t>(d)] = bna::round_to(c.dtype, ab[static_cast<size_t>(d)] / lb);
    for (int64_t j : blocks) {
      float a = 0;
      const float* kr = &sk32[static_cast<size_t>((bk * nblk + j) * dh)];
      for (int64_t d = 0; d < dh; ++d) a += qr[d] * kr[d];
      const float s = a * scalef, mx = std::max(mm, s);
      const float al = std::exp(mm - mx), pj = std::exp(s - mx);
      ll = ll * al + pj;
      const float* vr = &sv32[static_cast<size_t>((bk * nblk + j) * dh)];
      for (int64_t d = 0; d < dh; ++d) am[static_cast<size_t>(d)] = am[static_cast<size_t>(d)] * al + pj * vr[d];
      mm = mx;
    }
    for (int64_t d = 0; d < dh; ++d) olp[static_cast<size_t>(row * dh + d)] = bna::round_to(c.dtype, am[static_cast<size_t>(d)] / ll);
    llp[static_cast<size_t>(row)] = mm + std::log(ll);
  });
  std::string msg = check("out", c.dtype, out_bits, o64, olp);
  // lse: absolute error rule with floor 2e-4 (as the other forward tests).
  double gmax = 0, lmax = 0;
  for (size_t r = 0; r < rows; ++r) {
    if (!std::isfinite(lse[r])) { msg += "lse non-finite at row " + std::to_string(r) + "; "; break; }
    gmax = std::max(gmax, std::fabs(lse[r] - l64[r]));
    lmax = std::max(lmax, std::fabs(llp[r] - l64[r]));
  }
  if (!(gmax <= 2 * lmax + 2e-4)) msg += "lse max error " + std::to_string(gmax) + " > 2*" + std::to_string(lmax) + " + 2e-4; ";
  EXPECT_TRUE(msg.empty()) << name << ": " << msg;
}

std::vector<CCase> ccases() {
  std::vector<CCase> v;
  const DType bf = DType::kBF16, hf = DType::kF16;
  for (int64_t T : {1, 63, 257, 1000})
    for (int64_t dh : {64, 128})
      for (int64_t g : {1, 4, 8}) v.push_back({T, dh, g, bf, 64, 16, false, false});
  for (int64_t tail : {1, 16, 100, 1024}) {
    v.push_back({1000, 128, 4, bf, tail, 32, false, true});
    v.push_back({777, 64, 1, hf, tail, 64, true, true});
  }
  v.push_back({4097, 128, 1, bf, 1024, 64, false, false});
  v.push_back({2000, 64, 8, bf, 256, 50, true, false});  // Bs not dividing T, G = 8
  return v;
}

INSTANTIATE_TEST_SUITE_P(Sweep, AttnCompressedCuda, ::testing::ValuesIn(ccases()),
                         [](const ::testing::TestParamInfo<CCase>& info) { return cname(info.param); });

TEST(AttnCompressedCudaArgs, RejectsBadArguments) {
  bna::cuda::AttnArgs a;
  alignas(256) static char fake[4096];
  a.q = a.k = a.v = fake;
  a.out = fake;
  a.lse = reinterpret_cast<float*>(fake);
  a.T = 64;
  a.dh = 64;
  bna::cuda::CompressedArgs c;
  c.tail = 0;
  bna::Status st = bna::cuda::compressed_fwd(a, c);
  EXPECT_NE(st.message().find("tail=0"), std::string::npos) << st.to_string();
  c.tail = 16;
  c.N = 0;  // ceil(64 / Bs = 64) = 1 block row needed
  st = bna::cuda::compressed_fwd(a, c);
  EXPECT_NE(st.message().find("N=0"), std::string::npos) << st.to_string();
  c.N = 1;
  st = bna::cuda::compressed_fwd(a, c);
  EXPECT_NE(st.message().find("indptr"), std::string::npos) << st.to_string();
  c.indptr = c.indices = reinterpret_cast<const int32_t*>(fake);
  c.routing_heads = 2;
  st = bna::cuda::compressed_fwd(a, c);
  EXPECT_NE(st.message().find("routing_heads=2"), std::string::npos) << st.to_string();
  c.routing_heads = 1;
  st = bna::cuda::compressed_fwd(a, c);
  EXPECT_NE(st.message().find("workspace"), std::string::npos) << st.to_string();
}

}  // namespace

#else

TEST(AttnCompressedCuda, SkippedWithoutCuda) { GTEST_SKIP() << "built without the CUDA backend (BNA_CUDA=OFF or no nvcc)"; }

#endif
