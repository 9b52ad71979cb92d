// GQA-packed query tiles (src/attention/cpu/gqa_pack.hpp) of the dense and streams forward kernels:
// for small Tq (decode, short chunks) the planner packs the G query heads of a KV head into one tile.
// Required: out and lse bit-identical to the unpacked tiles (one head per tile) for every pack size,
// odd/prime Tk and Tq (including Tq not a multiple of 16, so packed band groups straddle tiles),
// GQA 2/4/7/8, dh 13 (scalar tails) / 64 / 128, edge bias on and off, several cycles (extras, typed
// band keys and landmarks); the API result passes the float64 oracle (docs/numerics.md); the plan's
// reason names the packing, and says nothing of it where it does not apply.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include <omp.h>

#include "attention/attn_oracle.hpp"
#include "attention/cpu/gqa_pack.hpp"
#include "attention/cpu/kernels.hpp"
#include "bna/attention.hpp"

namespace bna::test {
namespace {

using attn::Path;

struct PCfg {
  Path path;
  int64_t Hkv, G, Tq, Tk, dh, W, S;
  int ncyc;
  bool bias;
};

std::string pcfg_name(const PCfg& c) {
  return std::string(attn::path_name(c.path)) + "_Hkv" + std::to_string(c.Hkv) + "_G" + std::to_string(c.G) + "_Tq" +
         std::to_string(c.Tq) + "_Tk" + std::to_string(c.Tk) + "_dh" + std::to_string(c.dh) + "_W" + std::to_string(c.W) +
         "_S" + std::to_string(c.S) + "_cyc" + std::to_string(c.ncyc) + (c.bias ? "_bias" : "_nobias");
}
void PrintTo(const PCfg& c, std::ostream* os) { *os << pcfg_name(c); }

// Hkv KV heads of G query heads each, Tq queries at the end of Tk keys.
attn::Shape gqa_shape(int64_t Hkv, int64_t G, int64_t Tq, int64_t Tk, int64_t dh) {
  attn::Shape s;
  s.Hkv = Hkv;
  s.Hq = Hkv * G;
  s.Tq = Tq;
  s.Tk = Tk;
  s.q_offset = Tk - Tq;
  s.dh = dh;
  return s;
}

struct AlignedFloats {
  std::unique_ptr<float, decltype(&std::free)> p{nullptr, &std::free};
  explicit AlignedFloats(size_t n) : p(static_cast<float*>(std::aligned_alloc(64, ((n + 16) * sizeof(float) + 63) & ~size_t(63))), &std::free) {}
  float* get() const { return p.get(); }
};

// Runs the CPU kernel of c.path on Problem p with the given pack size; returns out then lse.
struct KernelOut {
  std::vector<float> o, lse;
};
KernelOut run_kernel(const PCfg& c, cpu::Problem p, const cpu::StreamsGraph* sg, int64_t pack) {
  KernelOut r;
  r.o.assign(p.Hq * p.Tq * p.dh, 12345.0f);
  r.lse.assign(p.Hq * p.Tq, 12345.0f);
  p.o = r.o.data();
  p.lse = r.lse.data();
  p.gqa_pack = pack;
  const int64_t C = sg ? sg->C : 0;
  const size_t per = (cpu::fwd_scratch_floats_per_thread(p.dh, C) + 15) & ~size_t(15);
  AlignedFloats scratch(per * static_cast<size_t>(omp_get_max_threads()));
  const cpu::FwdScratch ws{scratch.get(), per};
  if (c.path == Path::kDense) {
    cpu::dense_fwd(p, ws);
  } else {
    AlignedFloats lm(cpu::streams_workspace_floats(p.Hkv, p.Tk, p.dh, sg->S) + 16);
    cpu::streams_fwd(p, *sg, ws, lm.get());
  }
  return r;
}

class GqaPackBitIdentity : public ::testing::TestWithParam<PCfg> {};

TEST_P(GqaPackBitIdentity, EveryPackSizeEqualsOneHeadPerTile) {
  const PCfg c = GetParam();
  const attn::Shape s = gqa_shape(c.Hkv, c.G, c.Tq, c.Tk, c.dh);
  const Inputs in = make_inputs(s, 9100 + c.Tk * 7 + c.Tq * 3 + c.G + c.dh);
  const std::array<float, 5> eb = {0.0f, 0.7f, -0.3f, 0.45f, -0.9f};
  cpu::Problem p;
  p.q = in.q.data();
  p.k = in.k.data();
  p.v = in.v.data();
  p.Hq = s.Hq; p.Hkv = s.Hkv; p.Tq = s.Tq; p.Tk = s.Tk; p.dh = s.dh; p.q_offset = s.q_offset;
  p.scale = 1.0f / std::sqrt(static_cast<float>(c.dh));
  p.edge_bias = c.bias ? eb.data() : nullptr;
  std::optional<cpu::StreamsGraph> sg;
  if (c.path == Path::kStreams) {
    const graph::GraphAbi abi = butterfly_abi(c.Hkv, c.Tk, c.W, c.S, c.ncyc, 77 + c.Tk);
    auto g = cpu::streams_from_abi(abi, c.W, c.S);
    ASSERT_TRUE(g.has_value()) << pcfg_name(c) << ": " << g.status().to_string();
    sg = std::move(*g);
  }
  const KernelOut ref = run_kernel(c, p, sg ? &*sg : nullptr, 1);
  for (float x : ref.lse) ASSERT_NE(x, 12345.0f) << pcfg_name(c) << ": unpacked left an lse unwritten";
  for (int64_t pack = 2; pack <= c.G; ++pack) {
    const KernelOut got = run_kernel(c, p, sg ? &*sg : nullptr, pack);
    ASSERT_EQ(0, std::memcmp(got.o.data(), ref.o.data(), ref.o.size() * sizeof(float)))
        << pcfg_name(c) << ": out differs from the unpacked tiles at pack " << pack;
    ASSERT_EQ(0, std::memcmp(got.lse.data(), ref.lse.data(), ref.lse.size() * sizeof(float)))
        << pcfg_name(c) << ": lse differs from the unpacked tiles at pack " << pack;
  }
}

std::vector<PCfg> bit_sweep() {
  std::vector<PCfg> v;
  for (Path path : {Path::kDense, Path::kStreams})
    for (int64_t G : {2, 4, 7, 8})
      for (int64_t Tq : {1, 3, 9, 17, 40, 63})
        for (bool bias : {false, true}) {
          const int64_t Tk = Tq == 1 ? 257 : Tq < 20 ? 331 : 613;
          const int64_t W = G == 7 ? 16 : 64, S = G == 7 ? 16 : G == 4 ? 64 : 32;
          const int64_t dh = G == 7 ? 64 : G == 8 ? 13 : G == 4 ? 128 : 64;
          const int64_t Hkv = G == 2 ? 3 : G == 8 ? 1 : 2;
          v.push_back({path, Hkv, G, Tq, Tk, dh, W, S, path == Path::kStreams ? 3 : 1, bias});
        }
  // Short prefixes: the band reaches key 0 and Tk == Tq (q_offset 0).
  v.push_back({Path::kStreams, 2, 4, 9, 9, 64, 16, 4, 2, true});
  v.push_back({Path::kDense, 2, 4, 9, 9, 64, 16, 4, 1, true});
  v.push_back({Path::kStreams, 1, 7, 1, 1, 64, 16, 4, 1, false});
  return v;
}

INSTANTIATE_TEST_SUITE_P(Sweep, GqaPackBitIdentity, ::testing::ValuesIn(bit_sweep()),
                         [](const ::testing::TestParamInfo<PCfg>& i) { return pcfg_name(i.param); });

// Through the API: the planner packs, says so, and the result passes the oracle and equals the
// unpacked kernel bit for bit (f32) or after the same rounding (bf16).
struct ACfg {
  Path path;
  int64_t Hkv, G, Tq, Tk, dh;
  DType dtype;
  bool bias;
};
std::string acfg_name(const ACfg& c) {
  return std::string(attn::path_name(c.path)) + "_Hkv" + std::to_string(c.Hkv) + "_G" + std::to_string(c.G) + "_Tq" +
         std::to_string(c.Tq) + "_Tk" + std::to_string(c.Tk) + "_dh" + std::to_string(c.dh) + "_" + dtype_name(c.dtype) +
         (c.bias ? "_bias" : "_nobias");
}
void PrintTo(const ACfg& c, std::ostream* os) { *os << acfg_name(c); }

class GqaPackApi : public ::testing::TestWithParam<ACfg> {};

TEST_P(GqaPackApi, PlanNamesPackingAndPassesOracle) {
  const ACfg c = GetParam();
  attn::Shape s = gqa_shape(c.Hkv, c.G, c.Tq, c.Tk, c.dh);
  s.dtype = c.dtype;
  const int64_t W = 32, S = 16;
  graph::GraphAbi abi;
  attn::GraphSource src;
  attn::Options opt;
  KeyLists lists;
  if (c.path == Path::kDense) {
    src.dense = true;
    lists = dense_lists();
  } else {
    abi = butterfly_abi(c.Hkv, c.Tk, W, S, 2, 5 + c.Tk);
    src.abi = &abi;
    opt.force_path = Path::kStreams;
    lists = abi_lists(abi);
  }
  if (c.bias) {
    opt.use_edge_bias = true;
    opt.edge_bias = {0.0f, 0.7f, -0.3f, 0.45f, -0.9f};
  }
  auto plan = attn::plan(src, s, opt);
  ASSERT_TRUE(plan.has_value()) << acfg_name(c) << ": " << plan.status().to_string();
  ASSERT_EQ(plan->path, c.path) << acfg_name(c);
  const int64_t want_pack = cpu::gqa_pack_heads(s.Hq, s.Hkv, s.Tq, std::max(1, omp_get_max_threads()));
  ASSERT_GT(want_pack, 1) << acfg_name(c) << ": the sweep expects packing";
  EXPECT_NE(plan->reason.find("GQA-packed decode tiles: " + std::to_string(want_pack) + " query heads"), std::string::npos)
      << acfg_name(c) << ": reason '" << plan->reason << "'";
  const Inputs in = make_inputs(s, 700 + c.Tk + c.G);
  const size_t qn = s.Hq * s.Tq * s.dh, kn = s.Hkv * s.Tk * s.dh;
  const bool f32 = c.dtype == DType::kF32;
  std::vector<float> out(qn, 12345.0f), lse(s.Hq * s.Tq, 12345.0f);
  std::vector<uint16_t> out16(f32 ? 0 : qn);
  auto tv = [&](const std::vector<float>& f, const std::vector<uint16_t>& h, int64_t H, int64_t T) {
    void* d = f32 ? static_cast<void*>(const_cast<float*>(f.data())) : static_cast<void*>(const_cast<uint16_t*>(h.data()));
    return TensorView(d, c.dtype, {1, H, T, s.dh});
  };
  const TensorView q = tv(in.q, in.q16, s.Hq, s.Tq), k = tv(in.k, in.k16, s.Hkv, s.Tk), v = tv(in.v, in.v16, s.Hkv, s.Tk);
  const TensorView o(f32 ? static_cast<void*>(out.data()) : static_cast<void*>(out16.data()), c.dtype, {1, s.Hq, s.Tq, s.dh});
  const TensorView l(lse.data(), DType::kF32, {1, s.Hq, s.Tq});
  const Status st = attn::run(*plan, q, k, v, o, l);
  ASSERT_TRUE(st.is_ok()) << acfg_name(c) << ": " << st.to_string();
  if (!f32)
    for (size_t e = 0; e < qn; ++e) out[e] = c.dtype == DType::kBF16 ? bf16_to_float(out16[e]) : f16_to_float(out16[e]);
  // Bit-identical to the unpacked kernel on the same (rounded) inputs, rounded to the dtype likewise.
  cpu::Problem p;
  p.q = in.q.data();
  p.k = in.k.data();
  p.v = in.v.data();
  p.Hq = s.Hq; p.Hkv = s.Hkv; p.Tq = s.Tq; p.Tk = s.Tk; p.dh = s.dh; p.q_offset = s.q_offset;
  p.scale = 1.0f / std::sqrt(static_cast<float>(c.dh));
  p.edge_bias = c.bias ? opt.edge_bias.data() : nullptr;
  std::optional<cpu::StreamsGraph> sg;
  if (c.path == Path::kStreams) sg = *cpu::streams_from_abi(abi, W, S);
  PCfg pc{c.path, c.Hkv, c.G, c.Tq, c.Tk, c.dh, W, S, 2, c.bias};
  KernelOut ref = run_kernel(pc, p, sg ? &*sg : nullptr, 1);
  if (!f32)
    for (float& x : ref.o) x = round_to(c.dtype, x);
  EXPECT_EQ(0, std::memcmp(out.data(), ref.o.data(), qn * sizeof(float))) << acfg_name(c) << ": out != unpacked";
  EXPECT_EQ(0, std::memcmp(lse.data(), ref.lse.data(), lse.size() * sizeof(float))) << acfg_name(c) << ": lse != unpacked";
  // The float64 oracle, pass rule of docs/numerics.md.
  const float* bias = c.bias ? opt.edge_bias.data() : nullptr;
  const RefResult r64 = reference64(in.q, in.k, in.v, s, p.scale, bias, lists);
  const RefResult rlp = reference_lowp(in.q, in.k, in.v, s, p.scale, bias, lists);
  const std::vector<double> got_o(out.begin(), out.end()), got_l(lse.begin(), lse.end());
  const Check co = fa3_rule(got_o, r64.out, rlp.out, floor_for(c.dtype), "out");
  EXPECT_TRUE(co.pass) << acfg_name(c) << ": " << co.why;
  const Check cl = fa3_rule(got_l, r64.lse, rlp.lse, floor_for(DType::kF32), "lse");
  EXPECT_TRUE(cl.pass) << acfg_name(c) << ": " << cl.why;
  (void)kn;
}

std::vector<ACfg> api_sweep() {
  std::vector<ACfg> v;
  for (Path path : {Path::kDense, Path::kStreams}) {
    v.push_back({path, 2, 7, 1, 257, 64, DType::kF32, false});   // Qwen2-0.5B-like decode step
    v.push_back({path, 1, 4, 9, 331, 128, DType::kF32, true});   // short chunk, q_offset > 0
    v.push_back({path, 2, 8, 1, 61, 64, DType::kBF16, false});
    v.push_back({path, 1, 2, 7, 67, 64, DType::kF16, true});
  }
  return v;
}

INSTANTIATE_TEST_SUITE_P(Sweep, GqaPackApi, ::testing::ValuesIn(api_sweep()),
                         [](const ::testing::TestParamInfo<ACfg>& i) { return acfg_name(i.param); });

TEST(GqaPackPlan, NoPackingWhereItCannotHelp) {
  attn::GraphSource src;
  src.dense = true;
  attn::Shape s;
  s.Hq = 8; s.Hkv = 8; s.Tq = 1; s.Tk = 100; s.q_offset = 99; s.dh = 64;  // G = 1
  auto p1 = attn::plan(src, s);
  ASSERT_TRUE(p1.has_value());
  EXPECT_EQ(p1->reason.find("GQA-packed"), std::string::npos) << p1->reason;
  s.Hkv = 2; s.Tq = 100; s.q_offset = 0;  // prefill: full tiles already
  auto p2 = attn::plan(src, s);
  ASSERT_TRUE(p2.has_value());
  EXPECT_EQ(p2->reason.find("GQA-packed"), std::string::npos) << p2->reason;
  s.Tq = 1; s.q_offset = 99;  // decode with G = 4: packed
  auto p3 = attn::plan(src, s);
  ASSERT_TRUE(p3.has_value());
  EXPECT_NE(p3->reason.find("GQA-packed decode tiles"), std::string::npos) << p3->reason;
}

TEST(GqaPackPlan, PackSizeChoice) {
  // One KV head per call (the HF decoder), 2 threads: every head of the group in one tile.
  EXPECT_EQ(cpu::gqa_pack_heads(7, 1, 1, 2), 7);
  EXPECT_EQ(cpu::gqa_pack_heads(2, 1, 1, 2), 2);
  // Hq = 14, Hkv = 2 on 2 threads: one pack per KV head.
  EXPECT_EQ(cpu::gqa_pack_heads(14, 2, 1, 2), 7);
  // One KV head, G = 8, Tq = 16 on 4 threads: 128 lanes would be 2 items of 4 groups; four packs of
  // 2 heads (32 lanes, 2 groups each) take one round of 2 groups.
  EXPECT_EQ(cpu::gqa_pack_heads(8, 1, 16, 4), 2);
  EXPECT_EQ(cpu::gqa_pack_heads(8, 8, 1, 4), 1);   // G = 1
  EXPECT_EQ(cpu::gqa_pack_heads(8, 2, 64, 4), 1);  // Tq >= kQt
  for (int th : {1, 2, 3, 8, 64})
    for (int64_t G : {2, 3, 7, 16})
      for (int64_t Tq : {1, 5, 33})
        for (int64_t Hkv : {1, 4}) {
          const int64_t gp = cpu::gqa_pack_heads(G * Hkv, Hkv, Tq, th);
          EXPECT_GE(gp, 1);
          EXPECT_LE(gp, G);
        }
}

}  // namespace
}  // namespace bna::test
