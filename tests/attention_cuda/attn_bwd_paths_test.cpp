// GPU backward of the graph paths (gather, permute-window in every mode, block-sparse) through
// plan/run/run_backward with Backend::kCuda, against float64 gradients written here from each row's
// key lists (graph_cases.hpp), independently of the kernels.
// A row is one softmax per component (several only in permute-window average mode, out = mean of the
// components' outputs, so component c sees dO / ncomp). ref64: exact gradients from the rounded
// inputs. ref_lp repeats the row-list kernel's rounding points: f32 scores, sums and products, P and
// dS never rounded to the dtype, the GPU's lse and out for single-component rows, per-component lse
// and D recomputed in f32 for average mode; outputs rounded to the dtype once.
// Pass rule per gradient: gpu_check.hpp (docs/numerics.md). Skips without a device.
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
#include "attention/cuda/device_memory.hpp"
#include "attention/cuda/launch.hpp"
#include "gpu_check.hpp"
#include "graph_cases.hpp"

namespace {

using bna::DType;
namespace attn = bna::attn;
using namespace bna::test::cuda_paths;
using namespace bna::test::cuda_bwd;

class AttnBwdPathsCuda : public ::testing::TestWithParam<Case> {};

TEST_P(AttnBwdPathsCuda, MatchesFloat64Reference) {
  if (!bna::cuda::device_available()) GTEST_SKIP() << "no CUDA device (cudaGetDeviceCount reports none)";
  const Case c = GetParam();
  const std::string name = case_name(c);
  const int64_t Hkv = c.group == 8 ? 1 : 2;
  const int64_t B = c.T <= 257 ? 2 : 1, Hq = Hkv * c.group, T = c.T, dh = c.dh;
  bna::Rng rng(0xbac0000u + static_cast<uint64_t>(T * 131 + dh * 7 + c.group + c.Bs * 1009 + c.w * 17 + c.cycles * 3) +
               static_cast<uint64_t>(c.kind) * 1000003u + (c.dtype == DType::kF16 ? 77u : 0u) + (c.union_mode ? 5u : 0u));
  const Graph g = make_graph(c, Hkv, rng);

  attn::GraphSource src;
  attn::Options opt;
  plan_inputs(c, g, src, opt);
  attn::Shape shape;
  shape.B = B; shape.Hq = Hq; shape.Hkv = Hkv; shape.Tq = shape.Tk = T; shape.dh = dh; shape.dtype = c.dtype;
  auto plan = attn::plan(src, shape, opt);
  ASSERT_TRUE(plan.has_value()) << name << ": " << plan.status().to_string();

  const size_t nq = static_cast<size_t>(B * Hq * T * dh), nk = static_cast<size_t>(B * Hkv * T * dh);
  const size_t rows = static_cast<size_t>(B * Hq * T);
  const HostTensor q = random_tensor(nq, c.dtype, rng, true), k = random_tensor(nk, c.dtype, rng, true),
                   v = random_tensor(nk, c.dtype, rng, false), dO = random_tensor(nq, c.dtype, rng, true);
  DeviceBuffer d_q = upload(q.bits.data(), nq * 2), d_k = upload(k.bits.data(), nk * 2),
               d_v = upload(v.bits.data(), nk * 2), d_do = upload(dO.bits.data(), nq * 2);
  DeviceBuffer d_out, d_lse, ws;
  ASSERT_TRUE(d_out.allocate(nq * 2).is_ok());
  ASSERT_TRUE(d_lse.allocate(rows * 4).is_ok());
  DeviceBuffer gq = poisoned(nq * 2), gk = poisoned(nk * 2), gv = poisoned(nk * 2);
  ASSERT_TRUE(ws.allocate(std::max<size_t>(plan->workspace_bytes, 256)).is_ok());
  ASSERT_TRUE(bna::cuda::device_memset(ws.get(), 0xFF, std::max<size_t>(plan->workspace_bytes, 256)).is_ok());
  auto v4 = [&](void* d, int64_t h) { return bna::TensorView{d, c.dtype, bna::Shape{B, h, T, dh}}; };
  const bna::TensorView lse_view{d_lse.get(), DType::kF32, bna::Shape{B, Hq, T}};
  bna::Status st = attn::run(*plan, v4(d_q.get(), Hq), v4(d_k.get(), Hkv), v4(d_v.get(), Hkv), v4(d_out.get(), Hq),
                             lse_view, ws.get());
  ASSERT_TRUE(st.is_ok()) << name << ": " << st.to_string();
  st = attn::run_backward(*plan, v4(d_q.get(), Hq), v4(d_k.get(), Hkv), v4(d_v.get(), Hkv), v4(d_out.get(), Hq),
                          lse_view, v4(d_do.get(), Hq), v4(gq.get(), Hq), v4(gk.get(), Hkv), v4(gv.get(), Hkv), nullptr,
                          ws.get());
  ASSERT_TRUE(st.is_ok()) << name << ": " << st.to_string();
  ASSERT_TRUE(bna::cuda::device_synchronize().is_ok());
  const auto out_bits = download<uint16_t>(d_out, nq);
  const auto lse = download<float>(d_lse, rows);
  const auto gq_h = download<uint16_t>(gq, nq), gk_h = download<uint16_t>(gk, nk), gv_h = download<uint16_t>(gv, nk);

  // Phase 1 (rows in parallel): per (row, entry) P and dS times the component weight, in both
  // precisions, and dq.
  const double scale = 1.0 / std::sqrt(static_cast<double>(dh));
  const float scalef = static_cast<float>(scale);
  std::vector<std::vector<PairGrad>> pairs(rows);
  std::vector<double> dq64(nq, 0.0), dqlp(nq);
  bna::parallel_for_dynamic(0, static_cast<int64_t>(rows), 8, [&](int64_t row) {
    const int64_t i = row % T, bh = row / T, hqi = bh % Hq, b = bh / Hq, hkv = hqi / c.group;
    std::vector<std::vector<int64_t>> comps;
    row_keys(c, g, hkv, i, comps);
    const float* qr = &q.f[static_cast<size_t>(row * dh)];
    const float* dor = &dO.f[static_cast<size_t>(row * dh)];
    const size_t kvb = static_cast<size_t>((b * Hkv + hkv) * T * dh);
    const double wc = 1.0 / static_cast<double>(std::max<size_t>(1, comps.size()));
    const float wcf = static_cast<float>(wc);
    const bool single = comps.size() == 1;
    std::vector<float> acc(static_cast<size_t>(dh), 0.0f);
    double* q64 = &dq64[static_cast<size_t>(row * dh)];
    auto& pr = pairs[static_cast<size_t>(row)];
    for (const auto& keys : comps) {
      const size_t n = keys.size();
      if (n == 0) continue;
      const RowDots rd = row_dots(qr, dor, k, v, kvb, keys, dh, scale);
      const std::vector<double>& s64 = rd.s64;
      const std::vector<double>& dp64 = rd.dp64;
      const std::vector<float>& s32 = rd.s32;
      const std::vector<float>& dp32 = rd.dp32;
      const double m = rd.max64;
      const float m32 = rd.max32;
      double l = 0, D64 = 0;
      float l32 = 0, t32 = 0;
      for (size_t x = 0; x < n; ++x) {
        const double pe = std::exp(s64[x] - m);
        l += pe;
        D64 += pe * dp64[x];  // sum p (dO . v) = dO . o, unnormalised
        const float pl = std::exp(s32[x] - m32);
        l32 += pl;
        t32 += pl * dp32[x];
      }
      const double lse64 = m + std::log(l);
      D64 = wc * D64 / l;
      float lse32, D32;
      if (single) {
        lse32 = lse[static_cast<size_t>(row)];
        D32 = 0;
        for (int64_t d = 0; d < dh; ++d) D32 += dor[d] * to_f(c.dtype, out_bits[static_cast<size_t>(row * dh + d)]);
      } else {
        lse32 = m32 + std::log(l32);
        D32 = wcf * t32 / l32;
      }
      for (size_t x = 0; x < n; ++x) {
        const double pe = std::exp(s64[x] - lse64);
        const double ds = pe * (wc * dp64[x] - D64);
        const float pl = std::exp(s32[x] - lse32);
        const float dsl = pl * (wcf * dp32[x] - D32);
        pr.push_back({static_cast<int32_t>(keys[x]), pe * wc, ds, pl * wcf, dsl});
        const float* kr = &k.f[kvb + static_cast<size_t>(keys[x] * dh)];
        for (int64_t d = 0; d < dh; ++d) {
          q64[d] += scale * ds * kr[d];
          acc[static_cast<size_t>(d)] += dsl * kr[d];
        }
      }
    }
    double* qlp = &dqlp[static_cast<size_t>(row * dh)];
    for (int64_t d = 0; d < dh; ++d) qlp[d] = bna::round_to(c.dtype, scalef * acc[static_cast<size_t>(d)]);
  });
  // Phase 2: dk, dv from the pairs.
  std::vector<double> dk64, dv64, dklp, dvlp;
  kv_grads_from_pairs(pairs, q, dO, B, Hq, Hkv, T, dh, c.dtype, scale, dk64, dv64, dklp, dvlp);
  const std::string msg = check("dq", c.dtype, gq_h, dq64, dqlp) + check("dk", c.dtype, gk_h, dk64, dklp) +
                          check("dv", c.dtype, gv_h, dv64, dvlp);
  EXPECT_TRUE(msg.empty()) << name << ": " << msg;
}

std::vector<Case> bwd_path_cases() {
  std::vector<Case> v;
  const DType bf = DType::kBF16, hf = DType::kF16;
  for (int64_t T : {1, 63, 257, 1000})
    for (int64_t dh : {64, 128})
      for (int64_t g : {1, 4, 8}) {
        v.push_back({Kind::kGather, T, dh, g, bf});
        v.push_back({Kind::kPermute, T, dh, g, bf, 64, 32, 1});
        v.push_back({Kind::kBlockButterfly, T, dh, g, bf, 64});
        v.push_back({Kind::kBlockRandom, T, dh, g, bf, 32});
      }
  for (int64_t dh : {64, 128}) {
    v.push_back({Kind::kGather, 300, dh, 4, hf});
    v.push_back({Kind::kBlockRandom, 777, dh, 1, hf, 100});
    for (bool uni : {false, true}) {
      v.push_back({Kind::kPermute, 1000, dh, 4, bf, 64, 32, 3, uni});
      v.push_back({Kind::kPermute, 257, dh, 8, hf, 64, 16, 2, uni, true});
    }
  }
  v.push_back({Kind::kPermute, 61, 64, 1, bf, 64, 40, 1, false, true});  // 2w+1 >= T: full causal prefix
  v.push_back({Kind::kPermute, 1000, 128, 1, bf, 64, 0, 1});              // self only
  v.push_back({Kind::kBlockButterfly, 1000, 64, 1, bf, 200});
  v.push_back({Kind::kGather, 300, 64, 1, bf, 64, 64, 1, false, false, 1});
  return v;
}

INSTANTIATE_TEST_SUITE_P(Sweep, AttnBwdPathsCuda, ::testing::ValuesIn(bwd_path_cases()),
                         [](const ::testing::TestParamInfo<Case>& info) { return case_name(info.param); });

// Argument checks happen before any CUDA call, so they run with or without a device.
TEST(AttnBwdPathsCudaArgs, RejectsBadArguments) {
  bna::cuda::AttnBwdArgs a;
  a.fwd.T = 64;
  a.fwd.dh = 64;
  // Null tensors are named first.
  EXPECT_FALSE(bna::cuda::gather_bwd(a, nullptr, 4, nullptr, nullptr).is_ok());
  bna::cuda::PermuteWindowArgs pw;
  EXPECT_FALSE(bna::cuda::permute_window_bwd(a, pw).is_ok());
  EXPECT_FALSE(bna::cuda::block_sparse_bwd(a, 64, 1, nullptr, nullptr, nullptr, nullptr).is_ok());
  // With plausible device pointers, the graph arguments are checked before any launch.
  alignas(256) static char fake[1 << 16];
  a.fwd.q = a.fwd.k = a.fwd.v = fake;
  a.fwd.out = fake;
  a.fwd.lse = reinterpret_cast<float*>(fake);
  a.dout = a.dq = a.dk = a.dv = fake;
  a.workspace = fake;
  a.workspace_bytes = bna::cuda::graph_bwd_workspace_bytes(a.fwd, 1);
  const auto* i32 = reinterpret_cast<const int32_t*>(fake);
  const auto* i64 = reinterpret_cast<const int64_t*>(fake);
  const bna::Status s1 = bna::cuda::gather_bwd(a, nullptr, 4, i64, i32);
  EXPECT_NE(s1.message().find("neigh_idx is null"), std::string::npos) << s1.to_string();
  const bna::Status s2 = bna::cuda::gather_bwd(a, i32, 0, i64, i32);
  const bna::Status s2b = bna::cuda::gather_bwd(a, i32, 4, nullptr, i32);
  EXPECT_NE(s2b.message().find("transpose"), std::string::npos) << s2b.to_string();
  EXPECT_NE(s2.message().find("D=0"), std::string::npos) << s2.to_string();
  pw.perm = reinterpret_cast<const int32_t*>(fake);
  const bna::Status s3 = bna::cuda::permute_window_bwd(a, pw);
  EXPECT_NE(s3.message().find("inv"), std::string::npos) << s3.to_string();
  pw.inv = pw.perm;
  pw.w = -1;
  const bna::Status s4 = bna::cuda::permute_window_bwd(a, pw);
  EXPECT_NE(s4.message().find("w=-1"), std::string::npos) << s4.to_string();
  const bna::Status s5 = bna::cuda::block_sparse_bwd(a, 16, 3, i32, i32, i32, i32);
  EXPECT_NE(s5.message().find("N=3, expected ceil(T/Bs)=4"), std::string::npos) << s5.to_string();
  // Average mode over 3 cycles needs 3 statistics per row.
  pw.w = 4;
  pw.num_cycles = 3;
  const bna::Status s7 = bna::cuda::permute_window_bwd(a, pw);
  EXPECT_NE(s7.message().find("graph_bwd_workspace_bytes"), std::string::npos) << s7.to_string();
  a.workspace_bytes = 16;
  const bna::Status s6 = bna::cuda::gather_bwd(a, i32, 4, i64, i32);
  EXPECT_NE(s6.message().find("workspace"), std::string::npos) << s6.to_string();
}

}  // namespace

#else

TEST(AttnBwdPathsCuda, SkippedWithoutCuda) { GTEST_SKIP() << "built without the CUDA backend (BNA_CUDA=OFF or no nvcc)"; }

#endif
