// Tests of the decode path and the incremental decode graph:
//  * DecodeGraph rows after appending tokens one by one == graph::build_heads on its cycles at every
//    tested length (random insertion), == Topology{online_insertion}.construct at that length (online
//    insertion), Hamiltonian cycles, determinism by seed, argument errors.
//  * Path::kDecode (split-K + LSE merge) against the float64 oracle of docs/numerics.md on the same rows,
//    and against the gather path on to_abi(): GQA 1/4/8, dh 13/64/128, Tq 1 and 3, bias on/off, bf16,
//    B = 2; ABI rows through forced decode with empty rows (out 0, lse -inf); a token-by-token loop;
//    the kernel itself with 1, 2, 3 and 7 key splits (empty splits included) under the same rule.
#include <gtest/gtest.h>

#include <omp.h>

#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "attention/attn_oracle.hpp"
#include "attention/cpu/decode.hpp"
#include "bna/attention.hpp"
#include "bna/decode_graph.hpp"
#include "bna/topology.hpp"

namespace bna {
namespace {

void expect_rows_equal(const topo::DecodeGraph& dg, const graph::GraphAbi& g, const std::string& cfg) {
  ASSERT_EQ(g.T, dg.size()) << cfg;
  std::vector<int32_t> idx(static_cast<size_t>(dg.max_row_len()));
  std::vector<uint8_t> ty(idx.size());
  for (int64_t h = 0; h < dg.heads(); ++h)
    for (int64_t i = 0; i < dg.size(); ++i) {
      const int64_t n = dg.row(h, i, idx.data(), ty.data());
      ASSERT_LE(n, dg.max_row_len()) << cfg;
      int64_t ng = 0;
      while (ng < g.D && g.row(h, i)[ng] >= 0) ++ng;
      ASSERT_EQ(n, ng) << cfg << " head " << h << " row " << i;
      for (int64_t c = 0; c < n; ++c) {
        ASSERT_EQ(idx[c], g.row(h, i)[c]) << cfg << " head " << h << " row " << i << " col " << c;
        ASSERT_EQ(ty[c], g.row_types(h, i)[c]) << cfg << " head " << h << " row " << i << " col " << c;
      }
    }
}

TEST(DecodeGraph, RandomInsertionRowsEqualBatchBuildAtEveryLength) {
  for (const int64_t ncyc : {1, 3}) {
    topo::DecodeGraphOptions o;
    o.n_heads = 2; o.num_cycles = ncyc; o.window = 4; o.landmark_stride = 5; o.seed = 42;
    auto dg = topo::DecodeGraph::create(o);
    ASSERT_TRUE(dg.has_value()) << dg.status().to_string();
    for (int64_t t = 1; t <= 70; ++t) {
      ASSERT_TRUE(dg->append().is_ok());
      if (!(t <= 3 || t == 7 || t == 33 || t == 70)) continue;
      const std::string cfg = "cycles=" + std::to_string(ncyc) + " T=" + std::to_string(t);
      auto g = dg->to_abi();
      ASSERT_TRUE(g.has_value()) << g.status().to_string();
      graph::ValidateOptions vo;
      vo.enforce_hamiltonian = true;
      EXPECT_TRUE(graph::validate(*g, vo).is_ok()) << cfg << ": " << graph::validate(*g, vo).to_string();
      for (int64_t h = 0; h < 2; ++h)
        for (int64_t c = 0; c < ncyc; ++c) EXPECT_TRUE(topo::validate_perm(dg->cycle(h, c), t).is_ok()) << cfg;
      expect_rows_equal(*dg, *g, cfg);
    }
    // Same seed, same graph; another seed, another graph.
    auto a = topo::DecodeGraph::create(o), b = topo::DecodeGraph::create(o);
    o.seed = 43;
    auto c = topo::DecodeGraph::create(o);
    ASSERT_TRUE(a->append_many(40).is_ok() && b->append_many(40).is_ok() && c->append_many(40).is_ok());
    EXPECT_EQ(a->cycle(1, 0), b->cycle(1, 0));
    EXPECT_NE(a->cycle(1, 0), c->cycle(1, 0));
  }
}

TEST(DecodeGraph, OnlineInsertionEqualsTopologyConstructAtEveryLength) {
  const int64_t H = 2, d = 8, T = 45;
  std::mt19937_64 gen(5);
  std::normal_distribution<float> nd;
  std::vector<float> per_token(static_cast<size_t>(T * H * d));  // [T, H, d] as appended
  for (float& x : per_token) x = nd(gen);
  std::vector<std::vector<float>> per_head(H, std::vector<float>(static_cast<size_t>(T * d)));  // [H][T, d]
  for (int64_t t = 0; t < T; ++t)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t x = 0; x < d; ++x) per_head[h][t * d + x] = per_token[(t * H + h) * d + x];
  topo::DecodeGraphOptions o;
  o.n_heads = H; o.window = 3; o.landmark_stride = 4; o.rule = topo::AppendRule::kOnlineInsertion; o.routing_dim = d;
  auto dg = topo::DecodeGraph::create(o);
  ASSERT_TRUE(dg.has_value()) << dg.status().to_string();
  topo::TopologyOptions to;
  to.n_heads = H; to.strategy = topo::Strategy::kOnlineInsertion; to.window = 3; to.landmark_stride = 4;
  auto topo = topo::Topology::create(to);
  ASSERT_TRUE(topo.has_value());
  for (int64_t t = 1; t <= T; ++t) {
    ASSERT_TRUE(dg->append(per_token.data() + (t - 1) * H * d).is_ok());
    if (!(t <= 4 || t == 17 || t == T)) continue;
    std::vector<topo::Routing> r;
    for (int64_t h = 0; h < H; ++h) r.push_back({per_head[h].data(), t, d});
    auto g = topo->construct(t, &r);
    ASSERT_TRUE(g.has_value()) << g.status().to_string();
    expect_rows_equal(*dg, *g, "online T=" + std::to_string(t));
  }
}

TEST(DecodeGraph, ArgumentErrorsNameTheOption) {
  topo::DecodeGraphOptions o;
  o.window = -1;
  auto g = topo::DecodeGraph::create(o);
  ASSERT_FALSE(g.has_value());
  EXPECT_NE(g.status().message().find("window=-1"), std::string::npos) << g.status().message();
  o.window = 4;
  o.rule = topo::AppendRule::kOnlineInsertion;
  o.num_cycles = 2;
  o.routing_dim = 4;
  g = topo::DecodeGraph::create(o);
  ASSERT_FALSE(g.has_value());
  EXPECT_NE(g.status().message().find("num_cycles=2"), std::string::npos) << g.status().message();
  o.num_cycles = 1;
  g = topo::DecodeGraph::create(o);
  ASSERT_TRUE(g.has_value());
  const Status st = g->append(nullptr);
  EXPECT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("routing"), std::string::npos) << st.message();
}

// ---- the decode path ------------------------------------------------------------------------------

struct Result { std::vector<double> out, lse; attn::Plan plan; };

// Runs plan/run on (src, shape, opt) with the oracle inputs `in`; output widened to double.
Result run_api(const attn::GraphSource& src, const attn::Shape& s, const attn::Options& o, const test::Inputs& in) {
  Result r;
  auto p = attn::plan(src, s, o);
  EXPECT_TRUE(p.has_value()) << p.status().to_string();
  if (!p.has_value()) return r;
  r.plan = *p;
  const bool f32 = s.dtype == DType::kF32;
  std::vector<float> out32(static_cast<size_t>(s.B * s.Hq * s.Tq * s.dh), NAN);
  std::vector<uint16_t> out16(f32 ? 0 : out32.size());
  std::vector<float> lse(static_cast<size_t>(s.B * s.Hq * s.Tq), NAN);
  auto data = [&](const std::vector<float>& a, const std::vector<uint16_t>& b) {
    return f32 ? static_cast<void*>(const_cast<float*>(a.data())) : static_cast<void*>(const_cast<uint16_t*>(b.data()));
  };
  TensorView q(data(in.q, in.q16), s.dtype, Shape{s.B, s.Hq, s.Tq, s.dh});
  TensorView k(data(in.k, in.k16), s.dtype, Shape{s.B, s.Hkv, s.Tk, s.dh});
  TensorView v(data(in.v, in.v16), s.dtype, Shape{s.B, s.Hkv, s.Tk, s.dh});
  TensorView out(f32 ? static_cast<void*>(out32.data()) : static_cast<void*>(out16.data()), s.dtype, Shape{s.B, s.Hq, s.Tq, s.dh});
  TensorView l(lse.data(), DType::kF32, Shape{s.B, s.Hq, s.Tq});
  const Status st = attn::run(*p, q, k, v, out, l);
  EXPECT_TRUE(st.is_ok()) << st.to_string();
  if (!f32) convert_to_float(s.dtype, out16.data(), out32.data(), out32.size());
  r.out.assign(out32.begin(), out32.end());
  r.lse.assign(lse.begin(), lse.end());
  return r;
}

struct DecCfg { int64_t G, dh, Tk, Tq; bool bias; DType dt; int64_t B; };

std::string name(const DecCfg& c) {
  return "G" + std::to_string(c.G) + "_dh" + std::to_string(c.dh) + "_Tk" + std::to_string(c.Tk) + "_Tq" +
         std::to_string(c.Tq) + (c.bias ? "_bias" : "_nobias") + "_" + dtype_name(c.dt) + "_B" + std::to_string(c.B);
}

class DecodePath : public ::testing::TestWithParam<DecCfg> {};

TEST_P(DecodePath, MatchesOracleAndGatherOnSameRows) {
  const DecCfg c = GetParam();
  const std::string cfg = name(c);
  topo::DecodeGraphOptions go;
  go.n_heads = 2; go.num_cycles = 2; go.window = 16; go.landmark_stride = 8; go.seed = 7 + c.Tk;
  auto dg = topo::DecodeGraph::create(go);
  ASSERT_TRUE(dg.has_value());
  ASSERT_TRUE(dg->append_many(c.Tk).is_ok());
  auto abi = dg->to_abi();
  ASSERT_TRUE(abi.has_value());

  attn::Shape s;
  s.B = c.B; s.Hkv = 2; s.Hq = 2 * c.G; s.Tk = c.Tk; s.Tq = c.Tq; s.q_offset = c.Tk - c.Tq; s.dh = c.dh; s.dtype = c.dt;
  attn::Options o;
  o.use_edge_bias = c.bias;
  o.edge_bias = {0.0f, 0.8f, -0.5f, 0.6f, -1.1f};
  const test::Inputs in = test::make_inputs(s, 1000 + c.Tk + c.G * 7 + c.dh);
  const float scale = 1.0f / std::sqrt(static_cast<float>(c.dh));
  const float* bias = c.bias ? o.edge_bias.data() : nullptr;
  const auto lists = test::abi_lists(*abi);
  const auto r64 = test::reference64(in.q, in.k, in.v, s, scale, bias, lists);
  const auto rlp = test::reference_lowp(in.q, in.k, in.v, s, scale, bias, lists);

  attn::GraphSource dsrc;
  dsrc.decode = &*dg;
  const Result dec = run_api(dsrc, s, o, in);
  ASSERT_EQ(dec.plan.path, attn::Path::kDecode) << cfg << " " << dec.plan.reason;
  auto chk = test::fa3_rule(dec.out, r64.out, rlp.out, test::floor_for(c.dt), "decode out");
  EXPECT_TRUE(chk.pass) << cfg << ": " << chk.why;
  chk = test::fa3_rule(dec.lse, r64.lse, rlp.lse, 1e-5, "decode lse");
  EXPECT_TRUE(chk.pass) << cfg << ": " << chk.why;

  attn::GraphSource asrc;
  asrc.abi = &*abi;
  attn::Options og = o;
  og.force_path = attn::Path::kGather;
  const Result gat = run_api(asrc, s, og, in);
  chk = test::fa3_rule(gat.out, r64.out, rlp.out, test::floor_for(c.dt), "gather out");
  EXPECT_TRUE(chk.pass) << cfg << ": " << chk.why;
  // decode vs gather: both within the rule of the oracle, and close to each other.
  double dmax = 0;
  for (size_t x = 0; x < dec.out.size(); ++x) dmax = std::max(dmax, std::abs(dec.out[x] - gat.out[x]));
  double lpmax = 0;
  for (size_t x = 0; x < rlp.out.size(); ++x) lpmax = std::max(lpmax, std::abs(rlp.out[x] - r64.out[x]));
  EXPECT_LE(dmax, 4 * lpmax + 2 * test::floor_for(c.dt)) << cfg;

  // The same ABI rows through forced decode.
  attn::Options od = o;
  od.force_path = attn::Path::kDecode;
  const Result dab = run_api(asrc, s, od, in);
  EXPECT_EQ(dab.plan.path, attn::Path::kDecode);
  chk = test::fa3_rule(dab.out, r64.out, rlp.out, test::floor_for(c.dt), "decode(abi) out");
  EXPECT_TRUE(chk.pass) << cfg << ": " << chk.why;
}

std::vector<DecCfg> decode_configs() {
  std::vector<DecCfg> v;
  for (int64_t G : {1, 4, 8})
    for (int64_t dh : {13, 64, 128}) v.push_back({G, dh, 257, G == 4 ? 3 : 1, G != 1, DType::kF32, 1});
  v.push_back({4, 64, 1031, 1, true, DType::kF32, 1});  // long row: several splits
  v.push_back({4, 64, 61, 3, false, DType::kBF16, 2});
  v.push_back({8, 128, 67, 1, true, DType::kF16, 1});
  v.push_back({1, 64, 1, 1, false, DType::kF32, 1});    // a single token
  return v;
}

INSTANTIATE_TEST_SUITE_P(Configs, DecodePath, ::testing::ValuesIn(decode_configs()),
                         [](const ::testing::TestParamInfo<DecCfg>& i) { return name(i.param); });

TEST(DecodePath, EmptyRowsGiveZeroAndMinusInf) {
  // Hand-made ABI: even rows empty, odd rows {0, i}.
  const int64_t T = 9;
  graph::GraphAbi g;
  g.H = 1; g.T = T; g.D = 2;
  g.neigh_idx.assign(T * 2, -1);
  g.edge_type.assign(T * 2, 0);
  for (int64_t i = 1; i < T; i += 2) {
    g.neigh_idx[i * 2] = 0; g.edge_type[i * 2] = 3;
    g.neigh_idx[i * 2 + 1] = static_cast<int32_t>(i); g.edge_type[i * 2 + 1] = 2;
  }
  attn::Shape s;
  s.Hkv = 1; s.Hq = 4; s.Tk = T; s.Tq = 4; s.q_offset = T - 4; s.dh = 64;
  attn::Options o;
  o.force_path = attn::Path::kDecode;
  const test::Inputs in = test::make_inputs(s, 3);
  attn::GraphSource src;
  src.abi = &g;
  const Result r = run_api(src, s, o, in);
  const auto lists = test::abi_lists(g);
  const float scale = 1.0f / 8.0f;
  const auto r64 = test::reference64(in.q, in.k, in.v, s, scale, nullptr, lists);
  const auto rlp = test::reference_lowp(in.q, in.k, in.v, s, scale, nullptr, lists);
  int empty = 0;
  for (int64_t row = 0; row < s.Hq * s.Tq; ++row) {
    const int64_t pos = s.q_offset + row % s.Tq;
    if (pos % 2 == 0) {
      ++empty;
      EXPECT_EQ(r.lse[row], -INFINITY) << "row " << row;
      for (int64_t d = 0; d < s.dh; ++d) ASSERT_EQ(r.out[row * s.dh + d], 0.0) << "row " << row;
    }
  }
  EXPECT_EQ(empty, 8);
  auto chk = test::fa3_rule(r.out, r64.out, rlp.out, 1e-5, "out");
  EXPECT_TRUE(chk.pass) << chk.why;
  chk = test::fa3_rule(r.lse, r64.lse, rlp.lse, 1e-5, "lse");
  EXPECT_TRUE(chk.pass) << chk.why;
}

// Token-by-token: append, re-plan (O(1) for a decode graph), run one query with a caller workspace.
TEST(DecodePath, TokenByTokenLoopMatchesOracle) {
  topo::DecodeGraphOptions go;
  go.n_heads = 2; go.num_cycles = 1; go.window = 5; go.landmark_stride = 6; go.seed = 1;
  auto dg = topo::DecodeGraph::create(go);
  ASSERT_TRUE(dg.has_value());
  const int64_t Tmax = 40;
  attn::Shape full;
  full.Hkv = 2; full.Hq = 8; full.Tk = Tmax; full.Tq = Tmax; full.dh = 64;
  const test::Inputs all = test::make_inputs(full, 77);
  for (int64_t t = 1; t <= Tmax; ++t) {
    ASSERT_TRUE(dg->append().is_ok());
    attn::Shape s = full;
    s.Tk = t; s.Tq = 1; s.q_offset = t - 1;
    test::Inputs in;  // query t-1, keys 0..t-1
    for (int64_t h = 0; h < s.Hq; ++h)
      in.q.insert(in.q.end(), all.q.begin() + (h * Tmax + t - 1) * 64, all.q.begin() + (h * Tmax + t) * 64);
    for (int64_t h = 0; h < s.Hkv; ++h) {
      in.k.insert(in.k.end(), all.k.begin() + h * Tmax * 64, all.k.begin() + (h * Tmax + t) * 64);
      in.v.insert(in.v.end(), all.v.begin() + h * Tmax * 64, all.v.begin() + (h * Tmax + t) * 64);
    }
    attn::GraphSource src;
    src.decode = &*dg;
    const Result r = run_api(src, s, {}, in);
    auto abi = dg->to_abi();
    ASSERT_TRUE(abi.has_value());
    const auto lists = test::abi_lists(*abi);
    const auto r64 = test::reference64(in.q, in.k, in.v, s, 0.125f, nullptr, lists);
    const auto rlp = test::reference_lowp(in.q, in.k, in.v, s, 0.125f, nullptr, lists);
    auto chk = test::fa3_rule(r.out, r64.out, rlp.out, 1e-5, "out");
    ASSERT_TRUE(chk.pass) << "t=" << t << ": " << chk.why;
    chk = test::fa3_rule(r.lse, r64.lse, rlp.lse, 1e-5, "lse");
    ASSERT_TRUE(chk.pass) << "t=" << t << ": " << chk.why;
  }
}

// The decode rows of positions first .. first+nq-1 of every head of dg (H heads), each cut to its keys
// <= the position: idx / ty [H * nq, M] (row h * nq + i), len [H * nq].
struct CausalRows {
  int64_t M = 0;
  std::vector<int32_t> idx, len;
  std::vector<uint8_t> ty;
};
CausalRows causal_rows(const topo::DecodeGraph& dg, int64_t H, int64_t first, int64_t nq) {
  CausalRows r;
  r.M = dg.max_row_len();
  r.idx.assign(static_cast<size_t>(H * nq * r.M), 0);
  r.ty.assign(r.idx.size(), 0);
  r.len.assign(static_cast<size_t>(H * nq), 0);
  for (int64_t h = 0; h < H; ++h)
    for (int64_t i = 0; i < nq; ++i) {
      const int64_t pos = first + i, row = h * nq + i;
      int32_t* ix = r.idx.data() + row * r.M;
      uint8_t* tp = r.ty.data() + row * r.M;
      const int64_t all = dg.row(h, pos, ix, tp);
      int64_t n = 0;
      for (int64_t c = 0; c < all; ++c)
        if (ix[c] <= pos) { ix[n] = ix[c]; tp[n] = tp[c]; ++n; }
      r.len[static_cast<size_t>(row)] = static_cast<int32_t>(n);
    }
  return r;
}

// The split-K kernel directly: the answer must pass the rule for any split count, empty splits included.
TEST(DecodeKernel, AnySplitCountPassesTheRule) {
  topo::DecodeGraphOptions go;
  go.n_heads = 2; go.num_cycles = 2; go.window = 9; go.landmark_stride = 7; go.seed = 3;
  auto dg = topo::DecodeGraph::create(go);
  ASSERT_TRUE(dg.has_value());
  ASSERT_TRUE(dg->append_many(301).is_ok());
  auto abi = dg->to_abi();
  ASSERT_TRUE(abi.has_value());
  attn::Shape s;
  s.Hkv = 2; s.Hq = 8; s.Tk = 301; s.Tq = 2; s.q_offset = 299; s.dh = 64;
  const test::Inputs in = test::make_inputs(s, 21);
  const std::array<float, 5> bias = {0.0f, 0.8f, -0.5f, 0.6f, -1.1f};
  const auto lists = test::abi_lists(*abi);
  const auto r64 = test::reference64(in.q, in.k, in.v, s, 0.125f, bias.data(), lists);
  const auto rlp = test::reference_lowp(in.q, in.k, in.v, s, 0.125f, bias.data(), lists);
  CausalRows cr = causal_rows(*dg, 2, 299, 2);
  const int64_t M = cr.M;
  std::vector<int32_t>& idx = cr.idx;
  std::vector<int32_t>& len = cr.len;
  std::vector<uint8_t>& ty = cr.ty;
  for (const int64_t ns : {1, 2, 3, 7, 64}) {
    cpu::DecodeRows rows{idx.data(), ty.data(), len.data(), M};
    const size_t per = cpu::decode_scratch_floats_per_thread(64, M, ns);
    std::vector<float> scratch(per * static_cast<size_t>(omp_get_max_threads()) + 16);
    float* base = scratch.data();
    while (reinterpret_cast<uintptr_t>(base) % 64) ++base;
    std::vector<float> part(cpu::decode_partial_floats(8, 2, 64, ns)), out(8 * 2 * 64, NAN), lse(16, NAN);
    cpu::Problem p;
    p.q = in.q.data(); p.k = in.k.data(); p.v = in.v.data(); p.o = out.data(); p.lse = lse.data();
    p.Hq = 8; p.Hkv = 2; p.Tq = 2; p.Tk = 301; p.dh = 64; p.q_offset = 299; p.scale = 0.125f; p.edge_bias = bias.data();
    cpu::decode_fwd(p, rows, ns, part.data(), cpu::FwdScratch{base, per});
    auto chk = test::fa3_rule(std::vector<double>(out.begin(), out.end()), r64.out, rlp.out, 1e-5, "out");
    EXPECT_TRUE(chk.pass) << "splits " << ns << ": " << chk.why;
    chk = test::fa3_rule(std::vector<double>(lse.begin(), lse.end()), r64.lse, rlp.lse, 1e-5, "lse");
    EXPECT_TRUE(chk.pass) << "splits " << ns << ": " << chk.why;
  }
}

// The small-call branch (pass 1 on the calling thread) and the thread team give the same bits: the items
// and the split count are the same, only who runs them differs. G = 2 (attend_row) and G = 4 (TileAttn).
TEST(DecodeKernel, CallingThreadAndTeamAreBitIdentical) {
  EXPECT_FALSE(cpu::decode_fwd_threaded(1, 7, 200, 64));   // an HF Butterfly decode step of one KV head
  EXPECT_TRUE(cpu::decode_fwd_threaded(2, 7, 1100, 64));   // long rows: split across threads
  topo::DecodeGraphOptions go;
  go.n_heads = 2; go.num_cycles = 2; go.window = 9; go.landmark_stride = 7; go.seed = 5;
  auto dg = topo::DecodeGraph::create(go);
  ASSERT_TRUE(dg.has_value());
  ASSERT_TRUE(dg->append_many(301).is_ok());
  CausalRows cr = causal_rows(*dg, 2, 299, 2);
  const int64_t M = cr.M;
  std::vector<int32_t>& idx = cr.idx;
  std::vector<int32_t>& len = cr.len;
  std::vector<uint8_t>& ty = cr.ty;
  const std::array<float, 5> bias = {0.0f, 0.8f, -0.5f, 0.6f, -1.1f};
  const int saved = omp_get_max_threads();
  omp_set_num_threads(2);
  for (const int64_t G : {2, 4})
    for (const int64_t ns : {1, 3, 7}) {
      attn::Shape s;
      s.Hkv = 2; s.Hq = 2 * G; s.Tk = 301; s.Tq = 2; s.q_offset = 299; s.dh = 64;
      const test::Inputs in = test::make_inputs(s, 23);
      cpu::DecodeRows rows{idx.data(), ty.data(), len.data(), M};
      const size_t per = cpu::decode_scratch_floats_per_thread(64, M, ns);
      std::vector<float> scratch(per * 2 + 16);
      float* base = scratch.data();
      while (reinterpret_cast<uintptr_t>(base) % 64) ++base;
      std::vector<float> out[2], lse[2];
      for (int pass = 0; pass < 2; ++pass) {
        std::vector<float> part(cpu::decode_partial_floats(s.Hq, 2, 64, ns));
        out[pass].assign(static_cast<size_t>(s.Hq * 2 * 64), NAN);
        lse[pass].assign(static_cast<size_t>(s.Hq * 2), NAN);
        cpu::Problem p;
        p.q = in.q.data(); p.k = in.k.data(); p.v = in.v.data(); p.o = out[pass].data(); p.lse = lse[pass].data();
        p.Hq = s.Hq; p.Hkv = 2; p.Tq = 2; p.Tk = 301; p.dh = 64; p.q_offset = 299; p.scale = 0.125f;
        p.edge_bias = bias.data();
        // pass 0: always a team; pass 1: always the calling thread.
        cpu::decode_fwd(p, rows, ns, part.data(), cpu::FwdScratch{base, per},
                        pass == 0 ? 0 : std::numeric_limits<int64_t>::max());
      }
      EXPECT_EQ(0, std::memcmp(out[0].data(), out[1].data(), out[0].size() * sizeof(float))) << "G=" << G << " splits=" << ns;
      EXPECT_EQ(0, std::memcmp(lse[0].data(), lse[1].data(), lse[0].size() * sizeof(float))) << "G=" << G << " splits=" << ns;
    }
  omp_set_num_threads(saved);
}

}  // namespace
}  // namespace bna
