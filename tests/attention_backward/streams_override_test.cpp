// Streams backward with edge bias on real butterfly graphs where cycle neighbours fall on landmarks
// left of the band (StreamsGraph::landmark_override) or inside the band (band_override): the type the
// ABI gives such a key (CYCLE, higher priority than LANDMARK/WINDOW) must be the one whose bias the
// backward adds and whose d_bias it collects. Checked against gather backward on the same ABI and
// against the float64 reference of bwd_reference.hpp (rows taken from the ABI itself).
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "attention/cpu/backward.hpp"
#include "bna/topology.hpp"
#include "bwd_reference.hpp"

namespace bna {
namespace {

struct Err { double max = 0, mean = 0; };
template <class A, class B>
Err err(const std::vector<A>& a, const std::vector<B>& b) {
  Err e;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = std::abs(static_cast<double>(a[i]) - static_cast<double>(b[i]));
    if (!std::isfinite(d)) return {INFINITY, INFINITY};
    e.max = std::max(e.max, d);
    e.mean += d;
  }
  if (!a.empty()) e.mean /= static_cast<double>(a.size());
  return e;
}

struct Out { std::vector<float> dq, dk, dv; std::vector<float> db = std::vector<float>(5, NAN); };

Out run(bool streams, const testref::Dims& d, const std::vector<float>& q, const std::vector<float>& k,
        const std::vector<float>& v, const std::vector<float>& o, const std::vector<float>& lse,
        const std::vector<float>& dout, const float* bias, const graph::GraphAbi& g, const cpu::StreamsGraph& sg) {
  Out r;
  r.dq.assign(q.size(), NAN); r.dk.assign(k.size(), NAN); r.dv.assign(v.size(), NAN);
  cpu::GradProblem gp;
  gp.fwd.q = q.data(); gp.fwd.k = k.data(); gp.fwd.v = v.data();
  gp.fwd.o = const_cast<float*>(o.data()); gp.fwd.lse = const_cast<float*>(lse.data());
  gp.fwd.Hq = d.Hq; gp.fwd.Hkv = d.Hkv; gp.fwd.Tq = d.Tq; gp.fwd.Tk = d.Tk; gp.fwd.dh = d.dh;
  gp.fwd.q_offset = d.q_offset; gp.fwd.scale = static_cast<float>(d.scale); gp.fwd.edge_bias = bias;
  gp.dout = dout.data(); gp.dq = r.dq.data(); gp.dk = r.dk.data(); gp.dv = r.dv.data(); gp.d_edge_bias = r.db.data();
  if (streams) cpu::streams_bwd(gp, sg); else cpu::gather_bwd(gp, g);
  return r;
}

TEST(StreamsBackwardOverrides, TypedLandmarksAndBandKeysMatchGatherWithBias) {
  for (const int64_t T : {61, 97}) {
    for (const int64_t offset : {0, 7}) {
      const std::string cfg = "T=" + std::to_string(T) + " q_offset=" + std::to_string(offset);
      topo::TopologyOptions to;
      to.n_heads = 2; to.num_cycles = 3; to.window = 3; to.landmark_stride = 4; to.seed = 11 + T;
      auto topo = topo::Topology::create(to);
      ASSERT_TRUE(topo.has_value());
      auto g = topo->construct(T);
      ASSERT_TRUE(g.has_value()) << g.status().to_string();
      auto sg = cpu::streams_from_abi(*g, to.window, to.landmark_stride);
      ASSERT_TRUE(sg.has_value()) << sg.status().to_string();
      // The graph must exercise both overrides, or this test proves nothing.
      ASSERT_GT(sg->typed_landmarks, 0) << cfg;
      int64_t band_over = 0;
      for (int32_t j : sg->band_override) band_over += j >= 0;
      ASSERT_GT(band_over, 0) << cfg;

      testref::Dims d;
      d.Hkv = 2; d.Hq = 8; d.Tk = T; d.q_offset = offset; d.Tq = T - offset; d.dh = 16;
      d.scale = 1.0 / std::sqrt(16.0);
      Rng rng(3 + T + offset);
      const auto q = testref::randn(static_cast<size_t>(d.Hq * d.Tq * d.dh), rng);
      const auto k = testref::randn(static_cast<size_t>(d.Hkv * d.Tk * d.dh), rng);
      const auto v = testref::randn(k.size(), rng);
      const auto dout = testref::randn(q.size(), rng);
      // Distinct biases per type so a wrong type shows in every gradient.
      const std::vector<float> bias = {0.0f, 1.3f, -0.4f, 0.7f, -0.9f};
      const std::vector<double> b64(bias.begin(), bias.end());
      const testref::RowSpec spec = testref::gather_rows(d, *g);
      std::vector<double> o64, l64;
      testref::forward<double>(d, spec, testref::widen(q), testref::widen(k), testref::widen(v), b64.data(), o64, l64);
      const auto g64 = testref::backward<double>(d, spec, testref::widen(q), testref::widen(k), testref::widen(v),
                                                 b64.data(), testref::widen(dout));
      const auto g32 = testref::backward<float>(d, spec, q, k, v, bias.data(), dout);
      const auto o = testref::narrow(o64), lse = testref::narrow(l64);
      const Out s = run(true, d, q, k, v, o, lse, dout, bias.data(), *g, *sg);
      const Out ga = run(false, d, q, k, v, o, lse, dout, bias.data(), *g, *sg);
      for (auto [x, r64, r32, what] : {std::tuple{&s.dq, &g64.dq, &g32.dq, "dq"},
                                       std::tuple{&s.dk, &g64.dk, &g32.dk, "dk"},
                                       std::tuple{&s.dv, &g64.dv, &g32.dv, "dv"}}) {
        const Err lp = err(*r32, *r64);
        EXPECT_LE(err(*x, *r64).max, 2 * lp.max + 1e-5) << what << " streams vs ref64, " << cfg;
        EXPECT_LE(err(*x, *r64).mean, 2 * lp.mean + 1e-6) << what << " streams vs ref64 (mean), " << cfg;
      }
      EXPECT_LE(err(s.dq, ga.dq).max, 2 * err(g32.dq, g64.dq).max + 1e-5) << "dq streams vs gather, " << cfg;
      EXPECT_LE(err(s.dk, ga.dk).max, 2 * err(g32.dk, g64.dk).max + 1e-5) << "dk streams vs gather, " << cfg;
      const std::vector<double> db64(g64.dbias, g64.dbias + 5);
      const std::vector<float> db32(g32.dbias, g32.dbias + 5);
      const Err lpb = err(db32, db64);
      for (int t = 0; t < 5; ++t) {
        EXPECT_LE(std::abs(s.db[t] - db64[t]), 2 * lpb.max + 1e-5 * std::max(1.0, std::abs(db64[t])))
            << "d_bias[" << t << "] streams " << s.db[t] << " ref64 " << db64[t] << ", " << cfg;
        EXPECT_LE(std::abs(s.db[t] - ga.db[t]), 2 * lpb.max + 1e-5 * std::max(1.0, std::abs(db64[t])))
            << "d_bias[" << t << "] streams " << s.db[t] << " gather " << ga.db[t] << ", " << cfg;
      }
    }
  }
}

}  // namespace
}  // namespace bna
