// kv_rows (AttnArgs / DecodeArgs): dense and streams forward and decode reading K, V and the extras
// from a cache of capacity N > T rows per KV head must give bit-identical out and lse to the same
// kernels on contiguous [.., T, dh] tensors (the other tests check those against float64). The
// cache's unused rows are NaN, so a read past row T-1 (or of another head's rows) shows up as NaN.
// Kernels that do not read a strided cache reject kv_rows != T.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "bna/dtype.hpp"
#include "bna/rng.hpp"

#ifdef BNA_HAVE_CUDA
#include "attention/cuda/device_memory.hpp"
#include "attention/cuda/launch.hpp"
#include "gpu_check.hpp"

namespace {

using bna::DType;
using bna::cuda::DeviceBuffer;

struct Buffers {
  DeviceBuffer q, k, v, kc, vc, ex, exc, out, lse, out2, lse2, ws;
};

using bna::test::cuda_bwd::download;
using bna::test::cuda_bwd::upload;

struct Case {
  bool dense, decode;
  int64_t Hq, Hkv, Tq, Tk, cap, dh;
};

std::string name_of(const Case& c) {
  return std::string(c.dense ? "dense" : "streams") + (c.decode ? "_decode" : "_fwd") + "_Tk" + std::to_string(c.Tk) +
         "_cap" + std::to_string(c.cap) + "_dh" + std::to_string(c.dh);
}

class KvRows : public ::testing::TestWithParam<Case> {};

TEST_P(KvRows, StridedCacheEqualsContiguous) {
  if (!bna::cuda::device_available()) GTEST_SKIP() << "no CUDA device";
  const Case c = GetParam();
  const int64_t W = 16, S = 16, E = 2, dh = c.dh;
  bna::Rng rng(static_cast<uint64_t>(c.Tk * 31 + c.cap + dh));
  auto rnd = [&](size_t n) {
    std::vector<uint16_t> b(n);
    for (auto& x : b) x = bna::float_to_bf16(static_cast<float>(rng.normal()));
    return b;
  };
  const size_t nq = static_cast<size_t>(c.Hq * c.Tq * dh), nk = static_cast<size_t>(c.Hkv * c.Tk * dh);
  const std::vector<uint16_t> q = rnd(nq), k = rnd(nk), v = rnd(nk);
  // The cache: rows [0, Tk) per head hold k / v; the rest is NaN.
  const uint16_t nan = 0x7fc0;
  std::vector<uint16_t> kc(static_cast<size_t>(c.Hkv * c.cap * dh), nan), vc(kc.size(), nan);
  for (int64_t h = 0; h < c.Hkv; ++h) {
    std::memcpy(&kc[static_cast<size_t>(h * c.cap * dh)], &k[static_cast<size_t>(h * c.Tk * dh)], c.Tk * dh * 2);
    std::memcpy(&vc[static_cast<size_t>(h * c.cap * dh)], &v[static_cast<size_t>(h * c.Tk * dh)], c.Tk * dh * 2);
  }
  // Extras outside band and landmarks, -1 padded; in the cache layout rows >= Tk point at NaN rows.
  std::vector<int32_t> ex(static_cast<size_t>(c.Hkv * c.Tk * E), -1), exc(static_cast<size_t>(c.Hkv * c.cap * E), -1);
  for (int64_t h = 0; h < c.Hkv; ++h)
    for (int64_t i = 0; i < c.cap; ++i)
      for (int64_t e = 0; e < E; ++e) {
        int32_t j = -1;
        if (i - W > 1) {
          j = static_cast<int32_t>(rng.uniform_below(static_cast<uint64_t>(i - W)));
          if (j % S == 0) j = j + 1 < i - W ? j + 1 : -1;
          if (e == 1 && j >= 0 && j == exc[static_cast<size_t>((h * c.cap + i) * E)]) j = -1;
        }
        if (i >= c.Tk) j = static_cast<int32_t>(std::min<int64_t>(i, c.cap - 1));  // poison: must never be read
        exc[static_cast<size_t>((h * c.cap + i) * E + e)] = j;
        if (i < c.Tk) ex[static_cast<size_t>((h * c.Tk + i) * E + e)] = j;
      }
  Buffers b;
  b.q = upload(q.data(), nq * 2);
  b.k = upload(k.data(), nk * 2);
  b.v = upload(v.data(), nk * 2);
  b.kc = upload(kc.data(), kc.size() * 2);
  b.vc = upload(vc.data(), vc.size() * 2);
  b.ex = upload(ex.data(), ex.size() * 4);
  b.exc = upload(exc.data(), exc.size() * 4);
  const size_t rows = static_cast<size_t>(c.Hq * c.Tq);
  for (DeviceBuffer* o : {&b.out, &b.out2}) ASSERT_TRUE(o->allocate(nq * 2).is_ok());
  for (DeviceBuffer* l : {&b.lse, &b.lse2}) ASSERT_TRUE(l->allocate(rows * 4).is_ok());
  auto run = [&](bool strided, DeviceBuffer& out, DeviceBuffer& lse) -> bna::Status {
    const void* kk = strided ? b.kc.get() : b.k.get();
    const void* vv = strided ? b.vc.get() : b.v.get();
    const int32_t* xe = strided ? b.exc.as<int32_t>() : b.ex.as<int32_t>();
    if (!c.decode) {
      bna::cuda::AttnArgs a;
      a.q = b.q.get(); a.k = kk; a.v = vv; a.out = out.get(); a.lse = lse.as<float>();
      a.Hq = c.Hq; a.Hkv = c.Hkv; a.T = c.Tk; a.dh = dh; a.dtype = DType::kBF16;
      a.kv_rows = strided ? c.cap : 0;
      return c.dense ? bna::cuda::dense_causal_fwd(a) : bna::cuda::streams_fwd(a, W, S, xe, E);
    }
    bna::cuda::DecodeArgs a;
    a.q = b.q.get(); a.k = kk; a.v = vv; a.out = out.get(); a.lse = lse.as<float>();
    a.Hq = c.Hq; a.Hkv = c.Hkv; a.Tq = c.Tq; a.Tk = c.Tk; a.dh = dh; a.dtype = DType::kBF16;
    a.kv_rows = strided ? c.cap : 0;
    const size_t wsb = bna::cuda::decode_workspace_bytes(a, c.dense, W, S, E);
    if (b.ws.bytes() < wsb) EXPECT_TRUE(b.ws.allocate(wsb).is_ok());
    a.workspace = b.ws.get();
    a.workspace_bytes = b.ws.bytes();
    return c.dense ? bna::cuda::dense_decode(a) : bna::cuda::streams_decode(a, W, S, xe, E);
  };
  ASSERT_TRUE(run(false, b.out, b.lse).is_ok()) << name_of(c);
  ASSERT_TRUE(run(true, b.out2, b.lse2).is_ok()) << name_of(c);
  ASSERT_TRUE(bna::cuda::device_synchronize().is_ok());
  const auto o1 = download<uint16_t>(b.out, nq), o2 = download<uint16_t>(b.out2, nq);
  const auto l1 = download<float>(b.lse, rows), l2 = download<float>(b.lse2, rows);
  for (size_t i = 0; i < nq; ++i) {
    ASSERT_TRUE(std::isfinite(bna::bf16_to_float(o2[i]))) << name_of(c) << ": non-finite out at " << i;
    ASSERT_EQ(o1[i], o2[i]) << name_of(c) << ": out differs at " << i;
  }
  for (size_t i = 0; i < rows; ++i) ASSERT_EQ(std::memcmp(&l1[i], &l2[i], 4), 0) << name_of(c) << ": lse differs at " << i;
}

INSTANTIATE_TEST_SUITE_P(
    Cases, KvRows,
    ::testing::Values(Case{true, false, 4, 2, 200, 200, 333, 64}, Case{false, false, 4, 2, 200, 200, 333, 64},
                      Case{false, false, 2, 1, 1000, 1000, 1100, 128}, Case{true, false, 2, 2, 77, 77, 78, 128},
                      Case{true, true, 4, 2, 1, 300, 512, 64}, Case{false, true, 4, 2, 3, 300, 512, 64},
                      Case{false, true, 8, 1, 1, 2000, 2100, 128}),
    [](const ::testing::TestParamInfo<Case>& i) { return name_of(i.param); });

TEST(KvRowsErrors, RejectedWhereUnsupportedOrTooSmall) {
  if (!bna::cuda::device_available()) GTEST_SKIP() << "no CUDA device";
  DeviceBuffer buf;
  bna::cuda::AttnArgs a = bna::test::cuda_bwd::error_test_args(buf);
  a.kv_rows = 63;  // < T
  bna::Status st = bna::cuda::dense_causal_fwd(a);
  EXPECT_EQ(st.code(), bna::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("kv_rows=63"), std::string::npos) << st.to_string();
  a.kv_rows = 128;  // gather reads K/V with stride T only
  DeviceBuffer idx;
  ASSERT_TRUE(idx.allocate(64 * 4).is_ok());
  st = bna::cuda::gather_fwd(a, idx.as<int32_t>(), 1);
  EXPECT_EQ(st.code(), bna::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("kv_rows=128"), std::string::npos) << st.to_string();
  bna::cuda::DecodeArgs d;
  d.q = d.k = d.v = buf.get();
  d.out = buf.get();
  d.lse = buf.as<float>();
  d.Tq = 1; d.Tk = 64; d.dh = 64; d.kv_rows = 10;
  d.workspace = buf.get();
  d.workspace_bytes = buf.bytes();
  st = bna::cuda::dense_decode(d);
  EXPECT_EQ(st.code(), bna::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("kv_rows=10"), std::string::npos) << st.to_string();
}

}  // namespace
#endif  // BNA_HAVE_CUDA
