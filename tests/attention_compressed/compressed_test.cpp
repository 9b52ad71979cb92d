// Tests of compressed butterfly attention (src/attention/cpu/compressed.cpp): the kernel against a
// float64 reference of the one-cutoff rule (under the conventions' 2x-ref32 + floor rule), chunked
// prefill == one-shot prefill (bitwise: each row depends only on its position), decode-style one
// query at a time == prefill, incremental summaries == one-shot block means, and argument errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "attention/cpu/compressed.hpp"
#include "bna/rng.hpp"

namespace bna {
namespace {

struct Inputs {
  int64_t Hq, Hkv, T, dh, Bs, tail;
  std::vector<float> q, k, v;
  topo::BlockSparseLayout routing;
};

// Routing like the butterfly layout: self, previous block, a causal_shift partner b - 2^k and sink 0.
topo::BlockSparseLayout make_routing(int64_t H, int64_t T, int64_t Bs) {
  topo::BlockSparseLayout L;
  L.H = H; L.T = T; L.block_size = Bs; L.n_blocks = (T + Bs - 1) / Bs;
  for (int64_t h = 0; h < H; ++h) {
    L.head_base.push_back(static_cast<int64_t>(L.indices.size()));
    L.indptr.push_back(0);
    int32_t count = 0;
    for (int64_t b = 0; b < L.n_blocks; ++b) {
      std::vector<int32_t> row = {static_cast<int32_t>(b)};
      if (b >= 1) row.push_back(static_cast<int32_t>(b - 1));
      const int64_t partner = b - (int64_t{1} << ((b + h) % 3 + 1));
      if (partner >= 0) row.push_back(static_cast<int32_t>(partner));
      row.push_back(0);
      std::sort(row.begin(), row.end());
      row.erase(std::unique(row.begin(), row.end()), row.end());
      for (int32_t x : row) L.indices.push_back(x);
      count += static_cast<int32_t>(row.size());
      L.indptr.push_back(count);
    }
  }
  return L;
}

Inputs make_inputs(int64_t G, int64_t T, int64_t dh, int64_t Bs, int64_t tail, uint64_t seed) {
  Rng rng(seed);
  Inputs in{2 * G, 2, T, dh, Bs, tail, {}, {}, {}, {}};
  auto rn = [&](int64_t n) { std::vector<float> x(static_cast<size_t>(n)); for (auto& e : x) e = static_cast<float>(rng.normal()); return x; };
  in.q = rn(in.Hq * T * dh);
  in.k = rn(in.Hkv * T * dh);
  in.v = rn(in.Hkv * T * dh);
  in.routing = make_routing(in.Hkv, T, Bs);
  return in;
}

// Reference in F: raw keys [c, pos] and routed complete blocks ending at or before c, one softmax.
template <class F>
void reference(const Inputs& in, std::vector<F>& out, std::vector<F>& lse) {
  const int64_t G = in.Hq / in.Hkv, dh = in.dh;
  const F scale = F(1) / std::sqrt(static_cast<F>(dh));
  out.assign(in.q.size(), F(0));
  lse.assign(static_cast<size_t>(in.Hq * in.T), F(0));
  for (int64_t hq = 0; hq < in.Hq; ++hq) {
    const int64_t h = hq / G;
    for (int64_t pos = 0; pos < in.T; ++pos) {
      const int64_t c = std::max<int64_t>(0, pos - in.tail + 1);
      std::vector<std::vector<F>> ks, vs;
      for (int64_t j = c; j <= pos; ++j) {
        ks.emplace_back(in.k.begin() + (h * in.T + j) * dh, in.k.begin() + (h * in.T + j + 1) * dh);
        vs.emplace_back(in.v.begin() + (h * in.T + j) * dh, in.v.begin() + (h * in.T + j + 1) * dh);
      }
      const int64_t qb = pos / in.Bs;
      for (const int32_t* b = in.routing.row_begin(h, qb); b != in.routing.row_end(h, qb); ++b) {
        if ((*b + 1) * in.Bs > c) continue;
        std::vector<F> km(static_cast<size_t>(dh), F(0)), vm(static_cast<size_t>(dh), F(0));
        for (int64_t t = *b * in.Bs; t < (*b + 1) * in.Bs; ++t)
          for (int64_t d = 0; d < dh; ++d) {
            km[d] += in.k[(h * in.T + t) * dh + d] / static_cast<F>(in.Bs);
            vm[d] += in.v[(h * in.T + t) * dh + d] / static_cast<F>(in.Bs);
          }
        ks.push_back(km);
        vs.push_back(vm);
      }
      const F* q = nullptr;
      std::vector<F> qv(in.q.begin() + (hq * in.T + pos) * dh, in.q.begin() + (hq * in.T + pos + 1) * dh);
      q = qv.data();
      std::vector<F> s(ks.size());
      F m = -std::numeric_limits<F>::infinity();
      for (size_t x = 0; x < ks.size(); ++x) {
        F a = 0;
        for (int64_t d = 0; d < dh; ++d) a += q[d] * ks[x][d];
        s[x] = scale * a;
        m = std::max(m, s[x]);
      }
      F l = 0;
      for (size_t x = 0; x < ks.size(); ++x) {
        const F e = std::exp(s[x] - m);
        l += e;
        for (int64_t d = 0; d < dh; ++d) out[(hq * in.T + pos) * dh + d] += e * vs[x][d];
      }
      for (int64_t d = 0; d < dh; ++d) out[(hq * in.T + pos) * dh + d] /= l;
      lse[hq * in.T + pos] = m + std::log(l);
    }
  }
}

// Runs the kernel for queries [q0, q0 + nq) with the keys [0, q0 + nq) only (a chunk or decode step),
// extending `s` from that prefix, and writes into the full-size out/lse.
Status run_chunk(const Inputs& in, int64_t q0, int64_t nq, cpu::CompressedSummaries& s, std::vector<float>& out,
                 std::vector<float>& lse) {
  const int64_t Tk = q0 + nq, dh = in.dh;
  std::vector<float> k(static_cast<size_t>(in.Hkv * Tk * dh)), v(k.size());
  for (int64_t h = 0; h < in.Hkv; ++h) {
    std::copy_n(in.k.begin() + h * in.T * dh, Tk * dh, k.begin() + h * Tk * dh);
    std::copy_n(in.v.begin() + h * in.T * dh, Tk * dh, v.begin() + h * Tk * dh);
  }
  std::vector<float> q(static_cast<size_t>(in.Hq * nq * dh)), o(q.size()), l(static_cast<size_t>(in.Hq * nq));
  for (int64_t h = 0; h < in.Hq; ++h) std::copy_n(in.q.begin() + (h * in.T + q0) * dh, nq * dh, q.begin() + h * nq * dh);
  BNA_RETURN_IF_ERROR(cpu::extend_summaries(s, k.data(), v.data(), in.Hkv, Tk, dh, in.Bs));
  cpu::Problem p;
  p.q = q.data(); p.k = k.data(); p.v = v.data(); p.o = o.data(); p.lse = l.data();
  p.Hq = in.Hq; p.Hkv = in.Hkv; p.Tq = nq; p.Tk = Tk; p.dh = dh; p.q_offset = q0;
  p.scale = 1.0f / std::sqrt(static_cast<float>(dh));
  BNA_RETURN_IF_ERROR(cpu::compressed_fwd(p, in.routing, in.tail, s));
  for (int64_t h = 0; h < in.Hq; ++h) {
    std::copy_n(o.begin() + h * nq * dh, nq * dh, out.begin() + (h * in.T + q0) * dh);
    std::copy_n(l.begin() + h * nq, nq, lse.begin() + h * in.T + q0);
  }
  return Status::ok();
}

template <class A, class B>
double max_err(const std::vector<A>& a, const std::vector<B>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double e = std::abs(static_cast<double>(a[i]) - static_cast<double>(b[i]));
    if (!std::isfinite(e)) return INFINITY;
    m = std::max(m, e);
  }
  return m;
}

struct Cfg { int64_t G, T, dh, Bs, tail; };

class CompressedSweep : public ::testing::TestWithParam<Cfg> {};

TEST_P(CompressedSweep, MatchesFloat64ReferenceAndChunkingInvariant) {
  const Cfg c = GetParam();
  const Inputs in = make_inputs(c.G, c.T, c.dh, c.Bs, c.tail, 11 + c.T + c.tail);
  std::vector<double> o64, l64;
  std::vector<float> o32, l32;
  reference<double>(in, o64, l64);
  reference<float>(in, o32, l32);

  std::vector<float> out(in.q.size()), lse(static_cast<size_t>(in.Hq * in.T));
  cpu::CompressedSummaries s;
  ASSERT_TRUE(run_chunk(in, 0, in.T, s, out, lse).is_ok());
  const double floor = 1e-5;
  EXPECT_LE(max_err(out, o64), 2 * max_err(o32, o64) + floor);
  EXPECT_LE(max_err(lse, l64), 2 * max_err(l32, l64) + floor);

  // Chunked prefill and token-by-token decode give bitwise the same rows as one-shot prefill.
  for (const int64_t chunk : {int64_t{1}, int64_t{5}, int64_t{17}}) {
    std::vector<float> oc(out.size(), NAN), lc(lse.size(), NAN);
    cpu::CompressedSummaries sc;
    for (int64_t q0 = 0; q0 < in.T; q0 += chunk)
      ASSERT_TRUE(run_chunk(in, q0, std::min(chunk, in.T - q0), sc, oc, lc).is_ok());
    EXPECT_EQ(max_err(oc, out), 0.0) << "chunk " << chunk;
    EXPECT_EQ(max_err(lc, lse), 0.0) << "chunk " << chunk;
    EXPECT_EQ(sc.k, s.k) << "incremental summaries, chunk " << chunk;
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, CompressedSweep,
                         ::testing::Values(Cfg{1, 61, 16, 4, 6}, Cfg{4, 61, 64, 4, 9}, Cfg{1, 33, 64, 8, 1},
                                           Cfg{4, 97, 16, 8, 13}, Cfg{1, 7, 16, 4, 20}),
                         [](const ::testing::TestParamInfo<Cfg>& i) {
                           const Cfg& c = i.param;
                           return "G" + std::to_string(c.G) + "_T" + std::to_string(c.T) + "_dh" + std::to_string(c.dh) +
                                  "_Bs" + std::to_string(c.Bs) + "_tail" + std::to_string(c.tail);
                         });

TEST(Compressed, SummariesAreBlockMeans) {
  const Inputs in = make_inputs(1, 23, 8, 4, 3, 5);
  cpu::CompressedSummaries s;
  ASSERT_TRUE(cpu::extend_summaries(s, in.k.data(), in.v.data(), in.Hkv, in.T, in.dh, in.Bs).is_ok());
  ASSERT_EQ(s.n_blocks, 5);  // the partial trailing block (tokens 20..22) is not summarised
  for (int64_t j = 0; j < 5; ++j)
    for (int64_t h = 0; h < in.Hkv; ++h)
      for (int64_t d = 0; d < in.dh; ++d) {
        double m = 0;
        for (int64_t t = j * 4; t < j * 4 + 4; ++t) m += in.k[(h * in.T + t) * in.dh + d];
        EXPECT_NEAR(s.k[(j * in.Hkv + h) * in.dh + d], m / 4, 1e-6);
      }
}

TEST(Compressed, ArgumentErrorsNameTheArgument) {
  Inputs in = make_inputs(1, 16, 8, 4, 4, 3);
  std::vector<float> out(in.q.size()), lse(static_cast<size_t>(in.Hq * in.T));
  cpu::CompressedSummaries s;
  in.tail = 0;
  Status st = run_chunk(in, 0, in.T, s, out, lse);
  EXPECT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("tail=0"), std::string::npos) << st.message();
  in.tail = 4;
  cpu::CompressedSummaries wrong;
  ASSERT_TRUE(cpu::extend_summaries(wrong, in.k.data(), in.v.data(), in.Hkv, in.T, in.dh, 8).is_ok());
  st = run_chunk(in, 0, in.T, wrong, out, lse);
  EXPECT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("Bs=8"), std::string::npos) << st.message();
  EXPECT_FALSE(cpu::extend_summaries(s, in.k.data(), in.v.data(), in.Hkv, in.T, in.dh, 0).is_ok());
}

}  // namespace
}  // namespace bna
