// Tests of the CPU attention backward kernels (backward_*.cpp):
//  (a) the float64 reference backward (bwd_reference.hpp) against float64 central finite differences;
//  (b) every kernel's dq/dk/dv/d_bias against the float64 reference, under the numerics rule
//      max|kernel - ref64| <= 2 max|ref32 - ref64| + floor (and the same on the mean error), where
//      ref32 is the same reference computed in float;
//  (c) streams backward == gather backward on the same graph.
// The kernels' forward inputs (out, lse) come from the float64 reference rounded to f32.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <sstream>
#include <string>

#include "attention/cpu/backward.hpp"
#include "bwd_reference.hpp"

namespace bna {
namespace {

using testref::Dims;
using testref::RowSpec;

// ---- (a) finite differences -----------------------------------------------------------------------

// A row description that exercises everything: multisets, additive terms, several weighted segments,
// all edge types, empty rows and empty segments.
RowSpec random_generic_rows(const Dims& d, Rng& rng) {
  RowSpec r;
  for (int64_t h = 0; h < d.Hkv; ++h)
    for (int64_t i = 0; i < d.Tq; ++i) {
      const int64_t pos = d.q_offset + i;
      testref::Row row;
      if (rng.uniform01() < 0.15) { r.rows.push_back(row); continue; }  // empty row
      const int nseg = 1 + static_cast<int>(rng.uniform_below(3));
      for (int c = 0; c < nseg; ++c) {
        testref::Segment s;
        s.weight = nseg == 1 ? 1.0 : 0.2 + rng.uniform01();
        const int64_t n = static_cast<int64_t>(rng.uniform_below(static_cast<uint64_t>(pos + 3)));
        for (int64_t x = 0; x < n; ++x) {
          const int32_t j = static_cast<int32_t>(rng.uniform_below(static_cast<uint64_t>(pos + 1)));
          s.push(j, static_cast<uint8_t>(rng.uniform_below(5)), rng.uniform01() < 0.3 ? std::log(2.0) : 0.0);
        }
        row.push_back(s);
      }
      r.rows.push_back(row);
    }
  return r;
}

TEST(ReferenceBackward, MatchesFiniteDifferences) {
  for (const int64_t G : {1, 2}) {
    for (const int64_t Tq : {1, 5, 9}) {
      Rng rng(100 + 10 * G + Tq);
      Dims d;
      d.Hkv = 2; d.Hq = 2 * G; d.Tq = Tq; d.Tk = Tq + 2; d.q_offset = 2; d.dh = 3; d.scale = 0.7;
      const RowSpec spec = random_generic_rows(d, rng);
      auto q = testref::widen(testref::randn(static_cast<size_t>(d.Hq * d.Tq * d.dh), rng));
      auto k = testref::widen(testref::randn(static_cast<size_t>(d.Hkv * d.Tk * d.dh), rng));
      auto v = testref::widen(testref::randn(static_cast<size_t>(d.Hkv * d.Tk * d.dh), rng));
      auto dout = testref::widen(testref::randn(q.size(), rng));
      double bias[5] = {0.0, 0.3, -0.4, 0.8, -0.2};

      auto loss = [&]() {
        std::vector<double> out, lse;
        testref::forward<double>(d, spec, q, k, v, bias, out, lse);
        double L = 0;
        for (size_t x = 0; x < out.size(); ++x) L += out[x] * dout[x];
        return L;
      };
      const auto g = testref::backward<double>(d, spec, q, k, v, bias, dout);
      const double h = 1e-6;
      auto check = [&](double* x, size_t n, const double* grad, const char* what) {
        for (size_t e = 0; e < n; ++e) {
          const double x0 = x[e];
          x[e] = x0 + h; const double lp = loss();
          x[e] = x0 - h; const double lm = loss();
          x[e] = x0;
          const double fd = (lp - lm) / (2 * h);
          ASSERT_NEAR(grad[e], fd, 1e-6 * (1 + std::abs(fd))) << what << "[" << e << "] G=" << G << " Tq=" << Tq;
        }
      };
      check(q.data(), q.size(), g.dq.data(), "dq");
      check(k.data(), k.size(), g.dk.data(), "dk");
      check(v.data(), v.size(), g.dv.data(), "dv");
      check(bias + 1, 4, g.dbias + 1, "dbias");
    }
  }
}

// ---- (b) kernels against the reference -----------------------------------------------------------

enum class PathKind { kDense, kGather, kStreams, kPermuteUnion, kPermuteAverage, kPermuteCircular, kBlockSparse };
const char* kind_name(PathKind p) {
  switch (p) {
    case PathKind::kDense: return "dense";
    case PathKind::kGather: return "gather";
    case PathKind::kStreams: return "streams";
    case PathKind::kPermuteUnion: return "permute_union";
    case PathKind::kPermuteAverage: return "permute_average";
    case PathKind::kPermuteCircular: return "permute_circular_avg";
    case PathKind::kBlockSparse: return "block_sparse";
  }
  return "?";
}

struct Config {
  PathKind path;
  int64_t T;       // Tq
  int64_t dh;
  int64_t G;       // GQA ratio
  bool bias;
  bool offset;     // Tk = Tq + 5, q_offset = 5
};

std::string config_name(const Config& c) {
  std::ostringstream s;
  s << kind_name(c.path) << "_T" << c.T << "_dh" << c.dh << "_G" << c.G << (c.bias ? "_bias" : "_nobias")
    << (c.offset ? "_offset" : "");
  return s.str();
}

void PrintTo(const Config& c, std::ostream* os) { *os << config_name(c); }

// max|a - b| and mean|a - b|.
struct Err { double max = 0, mean = 0; };
template <class A, class B>
Err err(const std::vector<A>& a, const std::vector<B>& b) {
  Err e;
  for (size_t i = 0; i < a.size(); ++i) {
    const double x = std::abs(static_cast<double>(a[i]) - static_cast<double>(b[i]));
    if (!std::isfinite(static_cast<double>(a[i]))) return {INFINITY, INFINITY};
    e.max = std::max(e.max, x);
    e.mean += x;
  }
  if (!a.empty()) e.mean /= static_cast<double>(a.size());
  return e;
}
double max_abs(const std::vector<double>& a) {
  double m = 0;
  for (double x : a) m = std::max(m, std::abs(x));
  return m;
}

// The conventions' rule; floor(f32) = 1e-5 relative to the gradient's magnitude (at least 1).
void expect_within(const char* what, const std::vector<float>& got, const std::vector<double>& ref64,
                   const std::vector<float>& ref32, const std::string& cfg) {
  const double floor = 1e-5 * std::max(1.0, max_abs(ref64));
  const Err ek = err(got, ref64), el = err(ref32, ref64);
  EXPECT_LE(ek.max, 2 * el.max + floor) << what << " max err, " << cfg << " (ref32 err " << el.max << ")";
  EXPECT_LE(ek.mean, 2 * el.mean + floor / 10) << what << " mean err, " << cfg;
}

// Everything a kernel run needs, built from a Config.
struct Case {
  Dims d;
  std::vector<float> q, k, v, dout, bias;
  graph::GraphAbi abi;
  cpu::StreamsGraph streams;
  topo::PermsOnly perms;
  topo::BlockSparseLayout blocks;
  int64_t w = 0;
  RowSpec spec;
};

Case make_case(const Config& c, uint64_t seed) {
  Rng rng(seed);
  Case k;
  Dims& d = k.d;
  d.Hkv = 2; d.Hq = 2 * c.G; d.Tq = c.T; d.dh = c.dh;
  d.q_offset = c.offset ? 5 : 0;
  d.Tk = d.Tq + d.q_offset;
  d.scale = 1.0 / std::sqrt(static_cast<double>(c.dh));
  k.q = testref::randn(static_cast<size_t>(d.Hq * d.Tq * d.dh), rng);
  k.k = testref::randn(static_cast<size_t>(d.Hkv * d.Tk * d.dh), rng);
  k.v = testref::randn(static_cast<size_t>(d.Hkv * d.Tk * d.dh), rng);
  k.dout = testref::randn(k.q.size(), rng);
  if (c.bias) k.bias = {0.0f, 0.5f, -0.3f, 0.9f, -0.7f};
  switch (c.path) {
    case PathKind::kDense: k.spec = testref::dense_rows(d, c.bias ? k.bias[2] : 0.0); break;
    case PathKind::kGather: {
      std::set<int64_t> empty = {d.Tk / 2, d.Tk - 1};
      k.abi = testref::random_abi(d.Hkv, d.Tk, 9, rng, empty);
      k.spec = testref::gather_rows(d, k.abi);
      break;
    }
    case PathKind::kStreams: {
      k.streams = testref::random_streams(d.Hkv, d.Tk, 4, 3, 3, rng);
      k.abi = testref::streams_to_abi(k.streams);
      k.spec = testref::gather_rows(d, k.abi);
      break;
    }
    case PathKind::kPermuteUnion:
    case PathKind::kPermuteAverage:
    case PathKind::kPermuteCircular: {
      k.perms = testref::random_perms(d.Hkv, d.Tk, 3, rng);
      k.w = 2;
      const bool avg = c.path != PathKind::kPermuteUnion;
      k.spec = testref::permute_rows(d, k.perms, k.w, avg, c.path == PathKind::kPermuteCircular);
      break;
    }
    case PathKind::kBlockSparse:
      k.blocks = testref::random_blocks(d.Hkv, d.Tk, 4, rng);
      k.spec = testref::block_rows(d, k.blocks, c.bias ? k.bias[2] : 0.0);
      break;
  }
  return k;
}

struct KernelOut { std::vector<float> dq, dk, dv; float dbias[5] = {0, 0, 0, 0, 0}; };

KernelOut run_kernel(const Config& c, const Case& k, const std::vector<float>& out, const std::vector<float>& lse,
                     PathKind path) {
  KernelOut r;
  r.dq.assign(k.q.size(), NAN);
  r.dk.assign(k.k.size(), NAN);
  r.dv.assign(k.v.size(), NAN);
  for (float& x : r.dbias) x = NAN;
  cpu::GradProblem gp;
  gp.fwd.q = k.q.data(); gp.fwd.k = k.k.data(); gp.fwd.v = k.v.data();
  gp.fwd.o = const_cast<float*>(out.data()); gp.fwd.lse = const_cast<float*>(lse.data());
  gp.fwd.Hq = k.d.Hq; gp.fwd.Hkv = k.d.Hkv; gp.fwd.Tq = k.d.Tq; gp.fwd.Tk = k.d.Tk; gp.fwd.dh = k.d.dh;
  gp.fwd.q_offset = k.d.q_offset;
  gp.fwd.scale = static_cast<float>(k.d.scale);
  gp.fwd.edge_bias = k.bias.empty() ? nullptr : k.bias.data();
  gp.dout = k.dout.data();
  gp.dq = r.dq.data(); gp.dk = r.dk.data(); gp.dv = r.dv.data();
  gp.d_edge_bias = r.dbias;
  switch (path) {
    case PathKind::kDense: cpu::dense_bwd(gp); break;
    case PathKind::kGather: cpu::gather_bwd(gp, k.abi); break;
    case PathKind::kStreams: cpu::streams_bwd(gp, k.streams); break;
    case PathKind::kPermuteUnion:
      cpu::permute_window_bwd(gp, k.perms, k.w, attn::MultiCycleMode::kUnionLogMultiplicity, false);
      break;
    case PathKind::kPermuteAverage:
      cpu::permute_window_bwd(gp, k.perms, k.w, attn::MultiCycleMode::kAverage, false);
      break;
    case PathKind::kPermuteCircular:
      cpu::permute_window_bwd(gp, k.perms, k.w, attn::MultiCycleMode::kAverage, true);
      break;
    case PathKind::kBlockSparse: cpu::block_sparse_bwd(gp, k.blocks); break;
  }
  return r;
}

class KernelVsReference : public ::testing::TestWithParam<Config> {};

TEST_P(KernelVsReference, GradientsMatchFloat64Reference) {
  const Config c = GetParam();
  const std::string cfg = config_name(c);
  const Case k = make_case(c, 7 + c.T * 131 + c.dh * 7 + c.G + static_cast<int>(c.path) * 1009);
  const Dims& d = k.d;

  const auto q64 = testref::widen(k.q), k64 = testref::widen(k.k), v64 = testref::widen(k.v);
  const auto do64 = testref::widen(k.dout);
  const std::vector<double> b64(k.bias.begin(), k.bias.end());
  const double* bias64 = k.bias.empty() ? nullptr : b64.data();
  const float* bias32 = k.bias.empty() ? nullptr : k.bias.data();

  std::vector<double> out64, lse64;
  testref::forward<double>(d, k.spec, q64, k64, v64, bias64, out64, lse64);
  const auto g64 = testref::backward<double>(d, k.spec, q64, k64, v64, bias64, do64);
  const auto g32 = testref::backward<float>(d, k.spec, k.q, k.k, k.v, bias32, k.dout);

  const KernelOut r = run_kernel(c, k, testref::narrow(out64), testref::narrow(lse64), c.path);
  expect_within("dq", r.dq, g64.dq, g32.dq, cfg);
  expect_within("dk", r.dk, g64.dk, g32.dk, cfg);
  expect_within("dv", r.dv, g64.dv, g32.dv, cfg);

  const std::vector<float> db(r.dbias, r.dbias + 5), db32(g32.dbias, g32.dbias + 5);
  const std::vector<double> db64(g64.dbias, g64.dbias + 5);
  expect_within("d_bias", db, db64, db32, cfg);

  // Empty rows (lse = -inf) have dq exactly 0.
  for (int64_t row = 0; row < d.Hq * d.Tq; ++row) {
    if (std::isinf(lse64[row])) {
      for (int64_t x = 0; x < d.dh; ++x) ASSERT_EQ(r.dq[row * d.dh + x], 0.0f) << cfg << " empty row " << row;
    }
  }
}

std::vector<Config> all_configs() {
  std::vector<Config> v;
  for (PathKind p : {PathKind::kDense, PathKind::kGather, PathKind::kStreams, PathKind::kPermuteUnion,
                     PathKind::kPermuteAverage, PathKind::kPermuteCircular, PathKind::kBlockSparse})
    for (int64_t T : {1, 7, 33, 61})
      for (int64_t dh : {16, 64})
        for (int64_t G : {1, 4})
          for (bool bias : {false, true}) v.push_back({p, T, dh, G, bias, T == 33});
  return v;
}

INSTANTIATE_TEST_SUITE_P(Paths, KernelVsReference, ::testing::ValuesIn(all_configs()),
                         [](const ::testing::TestParamInfo<Config>& i) { return config_name(i.param); });

// ---- (c) streams == gather on the same graph ------------------------------------------------------

TEST(StreamsBackward, EqualsGatherOnSameGraph) {
  for (const int64_t T : {7, 61}) {
    for (const bool bias : {false, true}) {
      const Config c{PathKind::kStreams, T, 32, 2, bias, false};
      const std::string cfg = config_name(c);
      const Case k = make_case(c, 99 + T);
      const auto q64 = testref::widen(k.q), k64 = testref::widen(k.k), v64 = testref::widen(k.v);
      const std::vector<double> b64(k.bias.begin(), k.bias.end());
      std::vector<double> out64, lse64;
      testref::forward<double>(k.d, k.spec, q64, k64, v64, bias ? b64.data() : nullptr, out64, lse64);
      const auto g64 = testref::backward<double>(k.d, k.spec, q64, k64, v64, bias ? b64.data() : nullptr,
                                                 testref::widen(k.dout));
      const auto g32 = testref::backward<float>(k.d, k.spec, k.q, k.k, k.v, bias ? k.bias.data() : nullptr, k.dout);
      const auto out = testref::narrow(out64), lse = testref::narrow(lse64);
      const KernelOut s = run_kernel(c, k, out, lse, PathKind::kStreams);
      const KernelOut g = run_kernel(c, k, out, lse, PathKind::kGather);
      // Same rows in a different key order: equal up to f32 summation order.
      for (auto [a, b, r64, r32, what] :
           {std::tuple{&s.dq, &g.dq, &g64.dq, &g32.dq, "dq"}, std::tuple{&s.dk, &g.dk, &g64.dk, &g32.dk, "dk"},
            std::tuple{&s.dv, &g.dv, &g64.dv, &g32.dv, "dv"}}) {
        const double floor = 1e-5 * std::max(1.0, max_abs(*r64));
        EXPECT_LE(err(*a, *b).max, 2 * err(*r32, *r64).max + floor) << what << " " << cfg;
      }
      for (int t = 0; t < 5; ++t) EXPECT_NEAR(s.dbias[t], g.dbias[t], 1e-4 * (1 + std::abs(g.dbias[t]))) << cfg;
    }
  }
}

// Without edge bias the gradient w.r.t. a zero bias is still reported (it is well defined).
TEST(GatherBackward, BiasGradientReportedWhenBiasOff) {
  const Config c{PathKind::kGather, 33, 16, 1, false, false};
  const Case k = make_case(c, 5);
  std::vector<double> out64, lse64;
  testref::forward<double>(k.d, k.spec, testref::widen(k.q), testref::widen(k.k), testref::widen(k.v), nullptr,
                           out64, lse64);
  const KernelOut r = run_kernel(c, k, testref::narrow(out64), testref::narrow(lse64), PathKind::kGather);
  EXPECT_EQ(r.dbias[0], 0.0f);
  double total = 0;
  for (int t = 1; t < 5; ++t) total += std::abs(r.dbias[t]);
  EXPECT_GT(total, 0.0);
}

}  // namespace
}  // namespace bna
