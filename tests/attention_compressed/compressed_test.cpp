// Tests of compressed butterfly attention (src/attention/cpu/compressed.cpp): the kernel against a
// float64 reference of the one-cutoff rule (under the conventions' 2x-ref32 + floor rule), chunked
// prefill == one-shot prefill (bitwise: each row depends only on its position), decode-style one
// query at a time == prefill, incremental summaries == one-shot block means, and argument errors.
// The API part (attn::plan/run/run_compressed with force_path = compressed) checks the same through
// the runtime: full prefill under the numerics rule, then chunked prefill (several chunk sizes, with
// and without a CompressedCache) and token-by-token decode bit-identical to it, f32 and bf16.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "attention/cpu/compressed.hpp"
#include "bna/attention.hpp"
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

// ---- through the public API ------------------------------------------------------------------------

struct ApiRun {
  attn::Options opt;
  attn::GraphSource src;
};

ApiRun api_setup(const Inputs& in) {
  ApiRun a;
  a.opt.force_path = attn::Path::kCompressed;
  a.opt.compressed_tail = in.tail;
  a.opt.compressed_block = in.Bs;
  a.src.blocks = &in.routing;
  return a;
}

// Queries [q0, q0 + nq) against keys [0, q0 + nq) through plan/run (or run_compressed with cache),
// inputs rounded to dtype; writes rows into the full-size out/lse (f32 values of the dtype output).
Status api_chunk(const Inputs& in, const ApiRun& a, DType dt, int64_t q0, int64_t nq, attn::CompressedCache* cache,
                 std::vector<float>& out, std::vector<float>& lse) {
  const int64_t Tk = q0 + nq, dh = in.dh;
  attn::Shape sh;
  sh.B = 1; sh.Hq = in.Hq; sh.Hkv = in.Hkv; sh.Tq = nq; sh.Tk = Tk; sh.dh = dh; sh.q_offset = q0; sh.dtype = dt;
  BNA_ASSIGN_OR_RETURN(attn::Plan plan, attn::plan(a.src, sh, a.opt));
  if (plan.path != attn::Path::kCompressed) return internal_error("planner picked " + std::string(attn::path_name(plan.path)));
  std::vector<float> k(static_cast<size_t>(in.Hkv * Tk * dh)), v(k.size());
  for (int64_t h = 0; h < in.Hkv; ++h) {
    std::copy_n(in.k.begin() + h * in.T * dh, Tk * dh, k.begin() + h * Tk * dh);
    std::copy_n(in.v.begin() + h * in.T * dh, Tk * dh, v.begin() + h * Tk * dh);
  }
  std::vector<float> q(static_cast<size_t>(in.Hq * nq * dh)), l(static_cast<size_t>(in.Hq * nq));
  for (int64_t h = 0; h < in.Hq; ++h) std::copy_n(in.q.begin() + (h * in.T + q0) * dh, nq * dh, q.begin() + h * nq * dh);
  const size_t esz = dtype_size(dt);
  std::vector<uint8_t> qb(q.size() * esz), kb(k.size() * esz), vb(v.size() * esz), ob(q.size() * esz);
  convert_from_float(dt, q.data(), qb.data(), static_cast<int64_t>(q.size()));
  convert_from_float(dt, k.data(), kb.data(), static_cast<int64_t>(k.size()));
  convert_from_float(dt, v.data(), vb.data(), static_cast<int64_t>(v.size()));
  TensorView tq(qb.data(), dt, Shape{1, in.Hq, nq, dh}), tk(kb.data(), dt, Shape{1, in.Hkv, Tk, dh}),
      tv(vb.data(), dt, Shape{1, in.Hkv, Tk, dh}), to(ob.data(), dt, Shape{1, in.Hq, nq, dh}),
      tl(l.data(), DType::kF32, Shape{1, in.Hq, nq});
  if (cache) {
    BNA_RETURN_IF_ERROR(attn::run_compressed(plan, tq, tk, tv, to, tl, *cache));
  } else {
    BNA_RETURN_IF_ERROR(attn::run(plan, tq, tk, tv, to, tl));
  }
  std::vector<float> o(q.size());
  convert_to_float(dt, ob.data(), o.data(), static_cast<int64_t>(o.size()));
  for (int64_t h = 0; h < in.Hq; ++h) {
    std::copy_n(o.begin() + h * nq * dh, nq * dh, out.begin() + (h * in.T + q0) * dh);
    std::copy_n(l.begin() + h * nq, nq, lse.begin() + h * in.T + q0);
  }
  return Status::ok();
}

// Rounds every input through dt (the values the kernel sees) so the reference uses them too.
Inputs rounded(Inputs in, DType dt) {
  for (auto* x : {&in.q, &in.k, &in.v}) {
    std::vector<uint8_t> b(x->size() * dtype_size(dt));
    convert_from_float(dt, x->data(), b.data(), static_cast<int64_t>(x->size()));
    convert_to_float(dt, b.data(), x->data(), static_cast<int64_t>(x->size()));
  }
  return in;
}

struct ApiCfg { int64_t G, T, dh, Bs, tail; DType dt; };

class CompressedApi : public ::testing::TestWithParam<ApiCfg> {};

TEST_P(CompressedApi, PrefillMatchesReferenceAndChunkedPrefillAndDecodeAreIdentical) {
  const ApiCfg c = GetParam();
  const std::string cfg = "G=" + std::to_string(c.G) + " T=" + std::to_string(c.T) + " dh=" + std::to_string(c.dh) +
                          " Bs=" + std::to_string(c.Bs) + " tail=" + std::to_string(c.tail) + " " + dtype_name(c.dt);
  const Inputs in = rounded(make_inputs(c.G, c.T, c.dh, c.Bs, c.tail, 29 + c.T * 3 + c.tail), c.dt);
  const ApiRun a = api_setup(in);
  std::vector<double> o64, l64;
  std::vector<float> o32, l32;
  reference<double>(in, o64, l64);
  reference<float>(in, o32, l32);
  if (c.dt != DType::kF32) {  // ref_lp rounds the output to the dtype, as the runtime does
    std::vector<uint8_t> b(o32.size() * dtype_size(c.dt));
    convert_from_float(c.dt, o32.data(), b.data(), static_cast<int64_t>(o32.size()));
    convert_to_float(c.dt, b.data(), o32.data(), static_cast<int64_t>(o32.size()));
  }
  const double floor = c.dt == DType::kF32 ? 1e-5 : c.dt == DType::kF16 ? 1e-3 : 8e-3;

  std::vector<float> out(in.q.size(), NAN), lse(static_cast<size_t>(in.Hq * in.T), NAN);
  Status st = api_chunk(in, a, c.dt, 0, in.T, nullptr, out, lse);
  ASSERT_TRUE(st.is_ok()) << st.to_string() << " " << cfg;
  EXPECT_LE(max_err(out, o64), 2 * max_err(o32, o64) + floor) << cfg;
  EXPECT_LE(max_err(lse, l64), 2 * max_err(l32, l64) + 1e-5) << cfg;
  double mean = 0, mean_lp = 0;
  for (size_t x = 0; x < out.size(); ++x) mean += std::abs(out[x] - o64[x]), mean_lp += std::abs(o32[x] - o64[x]);
  EXPECT_LE(mean / out.size(), 2 * mean_lp / out.size() + floor) << cfg;

  // Chunk 1 is token-by-token decode (Tq = 1, q_offset = Tk - 1).
  for (const int64_t chunk : {int64_t{1}, int64_t{5}, int64_t{16}}) {
    for (const bool use_cache : {false, true}) {
      if (chunk == 5 && use_cache) continue;  // keep the test fast on a loaded machine
      std::vector<float> oc(out.size(), NAN), lc(lse.size(), NAN);
      attn::CompressedCache cache;
      for (int64_t q0 = 0; q0 < in.T; q0 += chunk) {
        st = api_chunk(in, a, c.dt, q0, std::min(chunk, in.T - q0), use_cache ? &cache : nullptr, oc, lc);
        ASSERT_TRUE(st.is_ok()) << st.to_string() << " " << cfg << " chunk " << chunk;
      }
      // Bitwise: every row depends only on its position and K/V[0..pos].
      EXPECT_EQ(max_err(oc, out), 0.0) << cfg << " chunk " << chunk << " cache " << use_cache;
      EXPECT_EQ(max_err(lc, lse), 0.0) << cfg << " chunk " << chunk << " cache " << use_cache;
      if (use_cache) {
        EXPECT_EQ(cache.blocks(), in.T / in.Bs) << cfg;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, CompressedApi,
                         ::testing::Values(ApiCfg{1, 61, 16, 4, 6, DType::kF32}, ApiCfg{4, 67, 64, 8, 13, DType::kF32},
                                           ApiCfg{8, 37, 128, 4, 5, DType::kF32}, ApiCfg{4, 41, 64, 4, 9, DType::kBF16},
                                           ApiCfg{1, 7, 16, 4, 20, DType::kF16}),
                         [](const ::testing::TestParamInfo<ApiCfg>& i) {
                           const ApiCfg& c = i.param;
                           return "G" + std::to_string(c.G) + "_T" + std::to_string(c.T) + "_dh" + std::to_string(c.dh) +
                                  "_Bs" + std::to_string(c.Bs) + "_tail" + std::to_string(c.tail) + "_" + dtype_name(c.dt);
                         });

TEST(CompressedApi, PlannerErrorsNameBothSides) {
  const Inputs in = make_inputs(1, 33, 16, 4, 5, 3);
  attn::Shape sh;
  sh.Hq = in.Hq; sh.Hkv = in.Hkv; sh.Tq = 33; sh.Tk = 33; sh.dh = 16;
  auto msg = [&](const attn::GraphSource& src, const attn::Options& o) {
    auto p = attn::plan(src, sh, o);
    return p.has_value() ? std::string("ok") : p.status().message();
  };
  ApiRun a = api_setup(in);
  attn::Options o = a.opt;
  o.compressed_block = 8;
  EXPECT_NE(msg(a.src, o).find("compressed_block=8 but the routing layout has Bs=4"), std::string::npos) << msg(a.src, o);
  o = a.opt;
  o.compressed_tail = 0;
  EXPECT_NE(msg(a.src, o).find("compressed_tail=0"), std::string::npos) << msg(a.src, o);
  o = a.opt;
  o.use_edge_bias = true;
  EXPECT_NE(msg(a.src, o).find("use_edge_bias"), std::string::npos) << msg(a.src, o);
  attn::GraphSource dense;
  dense.dense = true;
  EXPECT_NE(msg(dense, a.opt).find("force_path=compressed"), std::string::npos) << msg(dense, a.opt);
  sh.Tk = 40; sh.Tq = 1; sh.q_offset = 39;  // routing built for T=33 cannot serve Tk=40
  EXPECT_NE(msg(a.src, a.opt).find("Tk=40 but the routing block layout has T=33"), std::string::npos) << msg(a.src, a.opt);

  // No backward for compressed: a named error, never a wrong gradient.
  sh.Tk = 33; sh.Tq = 33; sh.q_offset = 0;
  auto p = attn::plan(a.src, sh, a.opt);
  ASSERT_TRUE(p.has_value());
  std::vector<float> buf(in.q.size()), kv(in.k.size()), l(static_cast<size_t>(in.Hq * 33));
  TensorView tq(buf.data(), DType::kF32, Shape{1, in.Hq, 33, 16}), tk(kv.data(), DType::kF32, Shape{1, in.Hkv, 33, 16}),
      tl(l.data(), DType::kF32, Shape{1, in.Hq, 33});
  const Status st = attn::run_backward(*p, tq, tk, tk, tq, tl, tq, tq, tk, tk);
  EXPECT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("compressed"), std::string::npos) << st.message();
}

}  // namespace
}  // namespace bna
