// Forward paths at the tile scale of the QTile engine (micro_tile.hpp): windows and landmark strides
// as in the benchmark (W 64/70, S 16/64), so bands span several 16-row groups and key chunks, T not
// divisible by the 64-row tile, several tiles per head, q_offset > 0 (Tq < Tk chunks), GQA 1/4, edge
// bias on/off, dh 64 and 40 (a PV tail of 4-row micro-tiles is exercised by dh 40 % 16 != 0), against
// the float64 oracle with the pass rule of docs/numerics.md.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "attn_oracle.hpp"
#include "bna/attention.hpp"

namespace bna::test {
namespace {

using attn::Path;

struct TCfg {
  Path path;
  int64_t T, W, S, dh, G, Tq;  // Tq < T: the last Tq positions (q_offset = T - Tq)
  bool bias;
};

std::string tcfg_name(const TCfg& c) {
  return std::string(attn::path_name(c.path)) + "_T" + std::to_string(c.T) + "_W" + std::to_string(c.W) + "_S" +
         std::to_string(c.S) + "_dh" + std::to_string(c.dh) + "_G" + std::to_string(c.G) + "_Tq" + std::to_string(c.Tq) +
         (c.bias ? "_bias" : "_nobias");
}

class ForwardTiles : public ::testing::TestWithParam<TCfg> {};

TEST_P(ForwardTiles, PassRuleOnOutAndLse) {
  const TCfg c = GetParam();
  attn::Shape s;
  s.B = 1;
  s.Hkv = 2;
  s.Hq = s.Hkv * c.G;
  s.Tk = c.T;
  s.Tq = c.Tq;
  s.q_offset = c.T - c.Tq;
  s.dh = c.dh;
  graph::GraphAbi abi;
  topo::PermsOnly perms;
  topo::BlockSparseLayout blocks;
  attn::GraphSource src;
  attn::Options opt;
  KeyLists lists;
  switch (c.path) {
    case Path::kDense: src.dense = true; lists = dense_lists(); break;
    case Path::kStreams:
    case Path::kGather:
      abi = butterfly_abi(s.Hkv, c.T, c.W, c.S, 2, 31 + c.T);
      src.abi = &abi;
      opt.force_path = c.path;
      lists = abi_lists(abi);
      break;
    case Path::kPermuteWindow:
      perms = make_perms(s.Hkv, c.T, 1, 17 + c.T);
      src.perms = &perms;
      opt.permute_window = c.W;
      lists = perm_lists(perms, c.W, attn::MultiCycleMode::kAverage, false);
      break;
    default:
      blocks = make_blocks(s.Hkv, c.T, c.S);
      src.blocks = &blocks;
      lists = block_lists(blocks);
      break;
  }
  if (c.bias) {
    opt.use_edge_bias = true;
    opt.edge_bias = {0.0f, 0.7f, -0.3f, 0.45f, -0.9f};
  }
  auto plan = attn::plan(src, s, opt);
  ASSERT_TRUE(plan.has_value()) << tcfg_name(c) << ": " << plan.status().to_string();
  ASSERT_EQ(plan->path, c.path) << tcfg_name(c) << ": " << plan->reason;
  const Inputs in = make_inputs(s, 4000 + c.T * 3 + c.dh + c.G);
  std::vector<float> out(s.Hq * s.Tq * s.dh, 12345.0f), lse(s.Hq * s.Tq, 12345.0f);
  TensorView q(const_cast<float*>(in.q.data()), DType::kF32, {1, s.Hq, s.Tq, s.dh});
  TensorView k(const_cast<float*>(in.k.data()), DType::kF32, {1, s.Hkv, s.Tk, s.dh});
  TensorView v(const_cast<float*>(in.v.data()), DType::kF32, {1, s.Hkv, s.Tk, s.dh});
  TensorView o(out.data(), DType::kF32, {1, s.Hq, s.Tq, s.dh});
  TensorView l(lse.data(), DType::kF32, {1, s.Hq, s.Tq});
  const Status st = attn::run(*plan, q, k, v, o, l);
  ASSERT_TRUE(st.is_ok()) << tcfg_name(c) << ": " << st.to_string();
  const float scale = 1.0f / std::sqrt(static_cast<float>(c.dh));
  const float* bias = c.bias ? opt.edge_bias.data() : nullptr;
  const RefResult r64 = reference64(in.q, in.k, in.v, s, scale, bias, lists);
  const RefResult rlp = reference_lowp(in.q, in.k, in.v, s, scale, bias, lists);
  const std::vector<double> got_o(out.begin(), out.end()), got_l(lse.begin(), lse.end());
  const Check co = fa3_rule(got_o, r64.out, rlp.out, floor_for(DType::kF32), "out");
  EXPECT_TRUE(co.pass) << tcfg_name(c) << ": " << co.why;
  const Check cl = fa3_rule(got_l, r64.lse, rlp.lse, floor_for(DType::kF32), "lse");
  EXPECT_TRUE(cl.pass) << tcfg_name(c) << ": " << cl.why;
}

std::vector<TCfg> tile_sweep() {
  std::vector<TCfg> v;
  for (Path p : {Path::kDense, Path::kStreams, Path::kGather, Path::kPermuteWindow, Path::kBlockSparse})
    for (int64_t T : {203, 331})
      for (bool bias : {false, true}) {
        const int64_t W = T == 203 ? 64 : 70, S = T == 203 ? 64 : 16;
        v.push_back({p, T, W, S, 64, 1, T, bias});
        v.push_back({p, T, W, S, 40, 4, T, bias});
        v.push_back({p, T, W, S, 64, 4, 77, bias});  // q_offset = T - 77, tiles not aligned to 64
      }
  return v;
}

INSTANTIATE_TEST_SUITE_P(Paths, ForwardTiles, ::testing::ValuesIn(tile_sweep()),
                         [](const ::testing::TestParamInfo<TCfg>& i) { return tcfg_name(i.param); });

}  // namespace
}  // namespace bna::test
