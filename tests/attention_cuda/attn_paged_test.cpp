// Chunked prefill (AttnArgs::q_offset) and paged K/V (kv_pages) for the dense and streams forward
// and the decode kernels. Both only change where rows are read and written, never the arithmetic, so
// the results must be bit-identical to the same kernels on contiguous tensors with Tq == Tk (which
// the other tests check against float64):
//  - q_offset = p0: out / lse rows equal rows p0.. of the full forward over all T keys;
//  - paged (dense forward and decode; streams forward refuses pages): K/V scattered over pages in a
//    shuffled pool whose unused rows are NaN (a read of a wrong row or page shows up as NaN or a
//    mismatch) equal the contiguous K/V.
// And the arguments are checked: a bad q_offset or page size, a short table stride, and q_offset or
// pages on a kernel that does not take them.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <numeric>
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

using bna::test::cuda_bwd::download;
using bna::test::cuda_bwd::upload;

constexpr int64_t kW = 16, kS = 16, kE = 2;

// Random bf16 q [B, Hq, T, dh], k / v [B, Hkv, T, dh] and a streams extras table [Hkv, T, E] whose
// entries lie outside the band and the landmarks (or -1).
struct Problem {
  int64_t B, Hq, Hkv, T, dh;
  std::vector<uint16_t> q, k, v;
  std::vector<int32_t> ex;
  Problem(int64_t B_, int64_t Hq_, int64_t Hkv_, int64_t T_, int64_t dh_, uint64_t seed)
      : B(B_), Hq(Hq_), Hkv(Hkv_), T(T_), dh(dh_) {
    bna::Rng rng(seed);
    auto rnd = [&](size_t n) {
      std::vector<uint16_t> b(n);
      for (auto& x : b) x = bna::float_to_bf16(static_cast<float>(rng.normal()));
      return b;
    };
    q = rnd(static_cast<size_t>(B * Hq * T * dh));
    k = rnd(static_cast<size_t>(B * Hkv * T * dh));
    v = rnd(k.size());
    ex.assign(static_cast<size_t>(Hkv * T * kE), -1);
    for (int64_t h = 0; h < Hkv; ++h)
      for (int64_t i = 0; i < T; ++i) {
        int32_t* row = &ex[static_cast<size_t>((h * T + i) * kE)];
        for (int64_t e = 0; e < kE; ++e) {
          if (i - kW <= 1) continue;
          int32_t j = static_cast<int32_t>(rng.uniform_below(static_cast<uint64_t>(i - kW)));
          if (j % kS == 0) j = j + 1 < i - kW ? j + 1 : -1;
          if (e == 1 && j == row[0]) j = -1;
          row[e] = j;
        }
      }
  }
};

// The K/V of p in pages of P rows: a pool of B * stride + 3 pages in shuffled order, NaN where no
// key lives, and the table of device page pointers [B, stride].
struct Paged {
  DeviceBuffer pool, table;
  int64_t P = 0, stride = 0;
  Paged(const Problem& p, int64_t P_, uint64_t seed) : P(P_) {
    stride = (p.T + P - 1) / P + 1;  // one spare entry: the stride may exceed ceil(T / P)
    const int64_t n_pages = p.B * stride + 3, page_elems = 2 * p.Hkv * P * p.dh;
    std::vector<uint16_t> h(static_cast<size_t>(n_pages * page_elems), 0x7fc0);
    std::vector<int64_t> order(static_cast<size_t>(n_pages));
    std::iota(order.begin(), order.end(), 0);
    bna::Rng rng(seed);
    for (int64_t i = n_pages - 1; i > 0; --i)
      std::swap(order[static_cast<size_t>(i)], order[static_cast<size_t>(rng.uniform_below(static_cast<uint64_t>(i + 1)))]);
    for (int64_t b = 0; b < p.B; ++b)
      for (int64_t hk = 0; hk < p.Hkv; ++hk)
        for (int64_t j = 0; j < p.T; ++j) {
          const int64_t page = order[static_cast<size_t>(b * stride + j / P)];
          const int64_t row = (hk * P + j % P) * p.dh, src = ((b * p.Hkv + hk) * p.T + j) * p.dh;
          std::memcpy(&h[static_cast<size_t>(page * page_elems + row)], &p.k[static_cast<size_t>(src)], p.dh * 2);
          std::memcpy(&h[static_cast<size_t>(page * page_elems + p.Hkv * P * p.dh + row)], &p.v[static_cast<size_t>(src)],
                      p.dh * 2);
        }
    pool = upload(h.data(), h.size() * 2);
    std::vector<uint64_t> t(static_cast<size_t>(p.B * stride));
    for (size_t i = 0; i < t.size(); ++i)
      t[i] = reinterpret_cast<uint64_t>(pool.as<uint16_t>() + order[i] * page_elems);
    table = upload(t.data(), t.size() * 8);
  }
  const void* const* pages() const { return reinterpret_cast<const void* const*>(table.get()); }
};

struct Out {
  std::vector<uint16_t> o;
  std::vector<float> lse;
};

// Forward of rows [q_off, T) of p (q copied to [B, Hq, T - q_off, dh]), contiguous or through pages.
Out forward(const Problem& p, bool dense, int variant, int64_t q_off, const Paged* pg) {
  const int64_t Tq = p.T - q_off;
  std::vector<uint16_t> qs(static_cast<size_t>(p.B * p.Hq * Tq * p.dh));
  for (int64_t bh = 0; bh < p.B * p.Hq; ++bh)
    std::memcpy(&qs[static_cast<size_t>(bh * Tq * p.dh)], &p.q[static_cast<size_t>((bh * p.T + q_off) * p.dh)],
                Tq * p.dh * 2);
  DeviceBuffer q = upload(qs.data(), qs.size() * 2), k = upload(p.k.data(), p.k.size() * 2),
               v = upload(p.v.data(), p.v.size() * 2), ex = upload(p.ex.data(), p.ex.size() * 4), o, lse;
  EXPECT_TRUE(o.allocate(qs.size() * 2).is_ok());
  EXPECT_TRUE(lse.allocate(static_cast<size_t>(p.B * p.Hq * Tq) * 4).is_ok());
  bna::cuda::AttnArgs a;
  a.q = q.get(); a.k = k.get(); a.v = v.get(); a.out = o.get(); a.lse = lse.as<float>();
  a.B = p.B; a.Hq = p.Hq; a.Hkv = p.Hkv; a.T = p.T; a.dh = p.dh; a.dtype = DType::kBF16;
  a.fwd_variant = variant;
  a.q_offset = q_off;
  if (pg != nullptr) {
    a.k = a.v = nullptr;
    a.kv_pages = pg->pages();
    a.kv_page = pg->P;
    a.kv_pages_stride = pg->stride;
  }
  const bna::Status st = dense ? bna::cuda::dense_causal_fwd(a) : bna::cuda::streams_fwd(a, kW, kS, ex.as<int32_t>(), kE);
  if (!dense && pg != nullptr) {  // streams forward takes no pages
    EXPECT_EQ(st.code(), bna::StatusCode::kInvalidArgument) << st.to_string();
    EXPECT_NE(st.message().find("kv_pages"), std::string::npos) << st.to_string();
    return {};
  }
  EXPECT_TRUE(st.is_ok()) << st.to_string();
  EXPECT_TRUE(bna::cuda::device_synchronize().is_ok());
  return {download<uint16_t>(o, qs.size()), download<float>(lse, static_cast<size_t>(p.B * p.Hq * Tq))};
}

// Out rows of `part` (rows q_off.. of each head) against rows q_off.. of `full`, bit for bit.
void expect_rows_equal(const Problem& p, const Out& full, const Out& part, int64_t q_off, const std::string& what) {
  const int64_t Tq = p.T - q_off;
  for (int64_t bh = 0; bh < p.B * p.Hq; ++bh)
    for (int64_t r = 0; r < Tq; ++r) {
      const size_t fi = static_cast<size_t>(bh * p.T + q_off + r), pi = static_cast<size_t>(bh * Tq + r);
      ASSERT_EQ(std::memcmp(&full.lse[fi], &part.lse[pi], 4), 0)
          << what << ": lse differs at head " << bh << " row " << q_off + r << " (" << full.lse[fi] << " vs "
          << part.lse[pi] << ")";
      for (int64_t d = 0; d < p.dh; ++d) {
        const uint16_t x = full.o[fi * p.dh + d], y = part.o[pi * p.dh + d];
        ASSERT_TRUE(std::isfinite(bna::bf16_to_float(y))) << what << ": non-finite out at row " << q_off + r;
        ASSERT_EQ(x, y) << what << ": out differs at head " << bh << " row " << q_off + r << " d " << d;
      }
    }
}

struct FwdCase {
  bool dense;
  int variant;
  int64_t B, Hq, Hkv, T, dh;
};

std::string name_of(const FwdCase& c) {
  return std::string(c.dense ? "dense" : "streams") + "_v" + std::to_string(c.variant) + "_B" + std::to_string(c.B) +
         "_G" + std::to_string(c.Hq / c.Hkv) + "_T" + std::to_string(c.T) + "_dh" + std::to_string(c.dh);
}

class CacheViews : public ::testing::TestWithParam<FwdCase> {};

TEST_P(CacheViews, QOffsetRowsEqualTheFullForward) {
  if (!bna::cuda::device_available()) GTEST_SKIP() << "no CUDA device";
  const FwdCase c = GetParam();
  const Problem p(c.B, c.Hq, c.Hkv, c.T, c.dh, static_cast<uint64_t>(c.T * 7 + c.dh + c.variant));
  const Out full = forward(p, c.dense, c.variant, 0, nullptr);
  // Offsets on and off the 64- and 128-row tile boundaries, and the last row alone.
  for (int64_t q_off : {int64_t{1}, int64_t{63}, int64_t{64}, int64_t{128}, c.T / 2 + 5, c.T - 1}) {
    if (q_off <= 0 || q_off >= c.T) continue;
    expect_rows_equal(p, full, forward(p, c.dense, c.variant, q_off, nullptr), q_off,
                      name_of(c) + " q_offset=" + std::to_string(q_off));
  }
}

TEST_P(CacheViews, PagedEqualsContiguous) {
  if (!bna::cuda::device_available()) GTEST_SKIP() << "no CUDA device";
  const FwdCase c = GetParam();
  const Problem p(c.B, c.Hq, c.Hkv, c.T, c.dh, static_cast<uint64_t>(c.T * 11 + c.dh + c.variant));
  if (!c.dense) {  // refused by name (checked inside forward)
    const Paged pg(p, 16, 1);
    EXPECT_TRUE(forward(p, false, c.variant, 0, &pg).o.empty());
    return;
  }
  const Out full = forward(p, c.dense, c.variant, 0, nullptr);
  for (int64_t P : {int64_t{1}, int64_t{16}, int64_t{64}, int64_t{256}}) {
    const Paged pg(p, P, static_cast<uint64_t>(P + c.T));
    const std::string what = name_of(c) + " page=" + std::to_string(P);
    expect_rows_equal(p, full, forward(p, c.dense, c.variant, 0, &pg), 0, what);
    const int64_t q_off = c.T / 3 + 1;  // paged chunked prefill
    expect_rows_equal(p, full, forward(p, c.dense, c.variant, q_off, &pg), q_off, what + " q_offset");
  }
}

INSTANTIATE_TEST_SUITE_P(
    Cases, CacheViews,
    ::testing::Values(FwdCase{true, 1, 1, 4, 2, 300, 64}, FwdCase{true, 2, 1, 4, 2, 300, 64},
                      FwdCase{false, 1, 1, 4, 2, 300, 64}, FwdCase{false, 2, 1, 4, 2, 300, 64},
                      FwdCase{true, 1, 2, 2, 1, 517, 128}, FwdCase{false, 2, 2, 8, 1, 517, 128},
                      FwdCase{false, 1, 1, 2, 2, 1000, 128}),
    [](const ::testing::TestParamInfo<FwdCase>& i) { return name_of(i.param); });

// Decode (Tq new rows at the end of Tk keys) through pages equals decode on contiguous K/V.
struct DecCase {
  bool dense;
  int64_t B, Hq, Hkv, Tq, Tk, dh;
};

class PagedDecode : public ::testing::TestWithParam<DecCase> {};

TEST_P(PagedDecode, EqualsContiguous) {
  if (!bna::cuda::device_available()) GTEST_SKIP() << "no CUDA device";
  const DecCase c = GetParam();
  const Problem p(c.B, c.Hq, c.Hkv, c.Tk, c.dh, static_cast<uint64_t>(c.Tk * 13 + c.Tq));
  const size_t nq = static_cast<size_t>(c.B * c.Hq * c.Tq * c.dh), rows = static_cast<size_t>(c.B * c.Hq * c.Tq);
  DeviceBuffer q = upload(p.q.data(), nq * 2), k = upload(p.k.data(), p.k.size() * 2),
               v = upload(p.v.data(), p.v.size() * 2), ex = upload(p.ex.data(), p.ex.size() * 4), ws;
  auto run = [&](const Paged* pg) -> Out {
    DeviceBuffer o, lse;
    EXPECT_TRUE(o.allocate(nq * 2).is_ok());
    EXPECT_TRUE(lse.allocate(rows * 4).is_ok());
    bna::cuda::DecodeArgs a;
    a.q = q.get(); a.k = k.get(); a.v = v.get(); a.out = o.get(); a.lse = lse.as<float>();
    a.B = c.B; a.Hq = c.Hq; a.Hkv = c.Hkv; a.Tq = c.Tq; a.Tk = c.Tk; a.dh = c.dh; a.dtype = DType::kBF16;
    if (pg != nullptr) {
      a.k = a.v = nullptr;
      a.kv_pages = pg->pages();
      a.kv_page = pg->P;
      a.kv_pages_stride = pg->stride;
    }
    const size_t need = bna::cuda::decode_workspace_bytes(a, c.dense, kW, kS, kE);
    if (ws.bytes() < need) { EXPECT_TRUE(ws.allocate(need).is_ok()); }
    a.workspace = ws.get();
    a.workspace_bytes = ws.bytes();
    const bna::Status st =
        c.dense ? bna::cuda::dense_decode(a) : bna::cuda::streams_decode(a, kW, kS, ex.as<int32_t>(), kE);
    EXPECT_TRUE(st.is_ok()) << st.to_string();
    EXPECT_TRUE(bna::cuda::device_synchronize().is_ok());
    return {download<uint16_t>(o, nq), download<float>(lse, rows)};
  };
  const Out base = run(nullptr);
  for (int64_t P : {int64_t{1}, int64_t{32}, int64_t{128}}) {
    const Paged pg(p, P, static_cast<uint64_t>(P * 3 + c.Tk));
    const Out got = run(&pg);
    for (size_t i = 0; i < rows; ++i)
      ASSERT_EQ(std::memcmp(&base.lse[i], &got.lse[i], 4), 0) << "page " << P << ": lse differs at " << i;
    for (size_t i = 0; i < nq; ++i) {
      ASSERT_TRUE(std::isfinite(bna::bf16_to_float(got.o[i]))) << "page " << P << ": non-finite out at " << i;
      ASSERT_EQ(base.o[i], got.o[i]) << "page " << P << ": out differs at " << i;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, PagedDecode,
                         ::testing::Values(DecCase{true, 1, 4, 2, 1, 300, 64}, DecCase{false, 1, 4, 2, 3, 300, 64},
                                           DecCase{true, 2, 8, 1, 1, 2000, 128}, DecCase{false, 2, 8, 1, 1, 2000, 128}),
                         [](const ::testing::TestParamInfo<DecCase>& i) {
                           const DecCase& c = i.param;
                           return std::string(c.dense ? "dense" : "streams") + "_B" + std::to_string(c.B) + "_Tq" +
                                  std::to_string(c.Tq) + "_Tk" + std::to_string(c.Tk) + "_dh" + std::to_string(c.dh);
                         });

TEST(CacheViewErrors, NamedAndRefusedWhereUnsupported) {
  if (!bna::cuda::device_available()) GTEST_SKIP() << "no CUDA device";
  DeviceBuffer buf;
  bna::cuda::AttnArgs a = bna::test::cuda_bwd::error_test_args(buf);
  auto expect_bad = [](const bna::Status& st, const std::string& needle) {
    EXPECT_EQ(st.code(), bna::StatusCode::kInvalidArgument) << st.to_string();
    EXPECT_NE(st.message().find(needle), std::string::npos) << st.to_string();
  };
  a.q_offset = 64;  // must be < T
  expect_bad(bna::cuda::dense_causal_fwd(a), "q_offset=64");
  a.q_offset = -1;
  expect_bad(bna::cuda::streams_fwd(a, 16, 16, nullptr, 0), "q_offset=-1");
  a.q_offset = 8;  // gather reads Tq == Tk only
  DeviceBuffer idx;
  ASSERT_TRUE(idx.allocate(64 * 4).is_ok());
  expect_bad(bna::cuda::gather_fwd(a, idx.as<int32_t>(), 1), "q_offset=8");
  a.q_offset = 0;
  a.kv_pages = reinterpret_cast<const void* const*>(buf.get());
  a.kv_page = 48;  // not a power of two
  a.kv_pages_stride = 2;
  expect_bad(bna::cuda::dense_causal_fwd(a), "kv_page=48");
  a.kv_page = 16;  // 64 keys need 4 pages
  expect_bad(bna::cuda::dense_causal_fwd(a), "kv_pages_stride=2");
  a.kv_pages_stride = 4;
  expect_bad(bna::cuda::gather_fwd(a, idx.as<int32_t>(), 1), "kv_pages");
  bna::cuda::DecodeArgs d;
  d.q = buf.get();
  d.out = buf.get();
  d.lse = buf.as<float>();
  d.Tq = 1; d.Tk = 64; d.dh = 64;
  d.kv_pages = reinterpret_cast<const void* const*>(buf.get());
  d.kv_page = 0;
  d.workspace = buf.get();
  d.workspace_bytes = buf.bytes();
  expect_bad(bna::cuda::dense_decode(d), "kv_page=0");
  d.kv_pages = nullptr;  // neither k/v nor pages
  expect_bad(bna::cuda::dense_decode(d), "kv_pages");
}

}  // namespace
#endif  // BNA_HAVE_CUDA
