// Butterfly block topology: upstream's worked examples, the partner formulas, stage periodicity,
// row properties over a sweep (causal, unique, in range, role order), the BSR layout and its
// validator, the token-level graph, and error messages for bad inputs.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "bna/butterfly.hpp"

namespace bna::topo {
namespace {

std::vector<int32_t> blocks_of(const std::vector<ButterflyEntry>& row) {
  std::vector<int32_t> v;
  for (const auto& e : row) v.push_back(e.block);
  return v;
}

ButterflyOptions make(int64_t N, int64_t layer, PartnerRule rule, int64_t partners, int64_t local, int64_t sinks) {
  ButterflyOptions o;
  o.num_blocks = N;
  o.layer = layer;
  o.rule = rule;
  o.partner_count = partners;
  o.local_blocks = local;
  o.sink_count = sinks;
  return o;
}

TEST(ButterflyNames, RoundTripAndUnknown) {
  for (int i = 0; i < kNumPartnerRules; ++i) {
    const auto r = static_cast<PartnerRule>(i);
    auto p = parse_partner_rule(partner_rule_name(r));
    ASSERT_TRUE(p) << partner_rule_name(r);
    EXPECT_EQ(*p, r);
  }
  EXPECT_STREQ(partner_rule_name(PartnerRule::kCausalShift), "causal_shift");
  auto bad = parse_partner_rule("shuffle");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.status().message().find("'shuffle'"), std::string::npos) << bad.status().message();
  EXPECT_NE(bad.status().message().find("bit_reversal"), std::string::npos);
}

TEST(ButterflyBasics, WidthAndBitReverse) {
  EXPECT_EQ(butterfly_width(0), 1);
  EXPECT_EQ(butterfly_width(1), 1);
  EXPECT_EQ(butterfly_width(2), 1);
  EXPECT_EQ(butterfly_width(3), 2);
  EXPECT_EQ(butterfly_width(8), 3);
  EXPECT_EQ(butterfly_width(9), 4);
  EXPECT_EQ(butterfly_width(1 << 20), 20);
  EXPECT_EQ(bit_reverse(0b0001, 4), 0b1000);
  EXPECT_EQ(bit_reverse(0b1101, 4), 0b1011);
  EXPECT_EQ(bit_reverse(0b110, 3), 0b011);
  EXPECT_EQ(bit_reverse(0b1111, 2), 0b11);  // high bits dropped
  for (int64_t w = 1; w <= 10; ++w)
    for (int64_t v = 0; v < (int64_t{1} << w); ++v) ASSERT_EQ(bit_reverse(bit_reverse(v, w), w), v) << "w=" << w;
}

// Upstream worked example 1: N=8, xor, layer 1 -> stage 1, bits 1,2; block 6 -> [6,5,4,2,0] with 4 both
// local and partner.
TEST(ButterflyWorkedExamples, Xor) {
  auto row = butterfly_row(6, make(8, 1, PartnerRule::kXor, 2, 2, 1));
  ASSERT_TRUE(row) << row.status().to_string();
  EXPECT_EQ(blocks_of(*row), (std::vector<int32_t>{6, 5, 4, 2, 0}));
  EXPECT_EQ((*row)[0].roles, kRoleSelf);
  EXPECT_EQ((*row)[1].roles, kRoleLocal);
  EXPECT_EQ((*row)[2].roles, kRoleLocal | kRolePartner);
  EXPECT_EQ((*row)[3].roles, kRolePartner);
  EXPECT_EQ((*row)[4].roles, kRoleSink);
  EXPECT_EQ(butterfly_roles_string((*row)[2].roles), "local|partner");
  auto plan = butterfly_plan(make(8, 1, PartnerRule::kXor, 2, 2, 1));
  ASSERT_TRUE(plan);
  EXPECT_EQ(plan->stage.stage, 1);
  EXPECT_EQ(plan->stage.stage_count, 3);
  EXPECT_EQ(plan->partner_bits, (std::vector<int64_t>{1, 2}));
}

// Example 2: N=16, causal_shift, layer 5 -> stage 1 (offset 2); block 9 -> [9, 8, 7, 0].
TEST(ButterflyWorkedExamples, CausalShift) {
  auto row = butterfly_row(9, make(16, 5, PartnerRule::kCausalShift, 1, 1, 1));
  ASSERT_TRUE(row) << row.status().to_string();
  EXPECT_EQ(blocks_of(*row), (std::vector<int32_t>{9, 8, 7, 0}));
  EXPECT_EQ((*row)[2].roles, kRolePartner);
  EXPECT_EQ((*row)[3].roles, kRoleSink);
}

// Example 3: N=16, bit_reversal, stage 0 flips bit 3: 13 -> 5; 5 -> 13 is in the future, so none.
TEST(ButterflyWorkedExamples, BitReversal) {
  EXPECT_EQ(butterfly_partner_block(13, 0, 16, PartnerRule::kBitReversal), 5);
  EXPECT_EQ(butterfly_partner_block(5, 0, 16, PartnerRule::kBitReversal), -1);
  auto row5 = butterfly_row(5, make(16, 0, PartnerRule::kBitReversal, 1, 0, 0));
  ASSERT_TRUE(row5);
  EXPECT_EQ(blocks_of(*row5), (std::vector<int32_t>{5}));
  auto row13 = butterfly_row(13, make(16, 0, PartnerRule::kBitReversal, 1, 0, 0));
  ASSERT_TRUE(row13);
  EXPECT_EQ(blocks_of(*row13), (std::vector<int32_t>{13, 5}));
}

// Example 4: N=16 benes: 6 stages, bit per stage 0,1,2,3,2,1.
TEST(ButterflyWorkedExamples, Benes) {
  EXPECT_EQ(butterfly_stage_count(16, PartnerRule::kBenes), 6);
  std::vector<int64_t> bits;
  for (int64_t layer = 0; layer < 6; ++layer) {
    const StageMeta m = butterfly_stage_meta(16, layer, PartnerRule::kBenes);
    const auto b = butterfly_partner_bits(m.stage, m.stage_count, butterfly_width(16), 1, PartnerRule::kBenes);
    ASSERT_EQ(b.size(), 1u);
    bits.push_back(b[0]);
  }
  EXPECT_EQ(bits, (std::vector<int64_t>{0, 1, 2, 3, 2, 1}));
  // Two partners per stage continue the same period: stage 5 -> bits of phases 5, 0.
  EXPECT_EQ(butterfly_partner_bits(5, 6, 4, 2, PartnerRule::kBenes), (std::vector<int64_t>{1, 0}));
  // Width 1 (N <= 2): one stage, bit 0.
  EXPECT_EQ(butterfly_stage_count(2, PartnerRule::kBenes), 1);
  EXPECT_EQ(butterfly_partner_bits(0, 1, 1, 1, PartnerRule::kBenes), (std::vector<int64_t>{0}));
}

TEST(ButterflyPartner, FormulasAndCausalFilter) {
  // causal_shift: b - 2^k, none below 0.
  EXPECT_EQ(butterfly_partner_block(9, 3, 16, PartnerRule::kCausalShift), 1);
  EXPECT_EQ(butterfly_partner_block(3, 2, 16, PartnerRule::kCausalShift), -1);
  // xor / benes: only when the bit is set in b.
  EXPECT_EQ(butterfly_partner_block(6, 1, 8, PartnerRule::kXor), 4);
  EXPECT_EQ(butterfly_partner_block(6, 0, 8, PartnerRule::kXor), -1);
  EXPECT_EQ(butterfly_partner_block(6, 2, 8, PartnerRule::kBenes), 2);
  // fixed_stride: b - 1 at every stage.
  for (int64_t k = 0; k < 3; ++k) EXPECT_EQ(butterfly_partner_block(5, k, 8, PartnerRule::kFixedStride), 4);
  EXPECT_EQ(butterfly_partner_block(0, 0, 8, PartnerRule::kFixedStride), -1);
  // bit outside [0, w).
  EXPECT_EQ(butterfly_partner_block(6, 3, 8, PartnerRule::kXor), -1);
  EXPECT_EQ(butterfly_partner_block(6, -1, 8, PartnerRule::kXor), -1);
  // random: the 32-bit hash computed by hand. b=7,k=1: 7*2654435761 + 374761393 = 18955811720,
  // mod 2^32 = 1776002952 ... take mod 7.
  const uint64_t h = (7ull * 2654435761ull + 1ull * 374761393ull) % 4294967296ull;
  EXPECT_EQ(butterfly_partner_block(7, 1, 16, PartnerRule::kRandom), static_cast<int64_t>(h % 7));
  // Large b where b*2654435761 exceeds 2^32 many times over: still the low 32 bits.
  const uint64_t b = 123456789, k = 20;
  const uint64_t h2 = (b * 2654435761ull + k * 374761393ull) % 4294967296ull;
  EXPECT_EQ(butterfly_partner_block(b, k, 1 << 27, PartnerRule::kRandom), static_cast<int64_t>(h2 % b));
  EXPECT_EQ(butterfly_partner_block(0, 0, 16, PartnerRule::kRandom), -1);
}

TEST(ButterflyStages, PeriodicityForEveryRule) {
  for (int r = 0; r < kNumPartnerRules; ++r) {
    const auto rule = static_cast<PartnerRule>(r);
    for (int64_t N : {1, 2, 3, 7, 16, 33, 100}) {
      const int64_t sc = butterfly_stage_count(N, rule);
      const int64_t w = butterfly_width(N);
      EXPECT_EQ(sc, rule == PartnerRule::kBenes ? std::max<int64_t>(1, 2 * w - 2) : w);
      for (int64_t layer = 0; layer < 3 * sc; ++layer) {
        auto a = butterfly_plan(make(N, layer, rule, 2, 1, 1));
        auto b = butterfly_plan(make(N, layer + sc, rule, 2, 1, 1));
        ASSERT_TRUE(a && b);
        ASSERT_EQ(a->stage.stage, layer % sc);
        for (int64_t blk = 0; blk < N; ++blk) {
          std::vector<ButterflyEntry> ra, rb;
          butterfly_row(blk, *a, ra);
          butterfly_row(blk, *b, rb);
          ASSERT_EQ(blocks_of(ra), blocks_of(rb))
              << partner_rule_name(rule) << " N=" << N << " layer=" << layer << " block=" << blk;
        }
      }
    }
  }
}

// Every row over a sweep of rules, sizes, layers and counts: starts with self, entries causal, unique and
// in range, roles non-empty, role order respected (locals descending and adjacent, sinks ascending last),
// and exactly the expected set (recomputed naively from the formulas).
TEST(ButterflyRows, PropertiesSweep) {
  for (int r = 0; r < kNumPartnerRules; ++r) {
    const auto rule = static_cast<PartnerRule>(r);
    for (int64_t N : {1, 2, 5, 16, 37, 128}) {
      for (int64_t layer : {0, 1, 4, 9}) {
        for (int64_t partners : {0, 1, 3, 9}) {
          for (int64_t local : {0, 1, 4}) {
            for (int64_t sinks : {0, 1, 3, 200}) {
              const auto opt = make(N, layer, rule, partners, local, sinks);
              auto plan = butterfly_plan(opt);
              ASSERT_TRUE(plan);
              std::vector<ButterflyEntry> row;
              for (int64_t b = 0; b < N; ++b) {
                butterfly_row(b, *plan, row);
                const std::string cfg = std::string(partner_rule_name(rule)) + " N=" + std::to_string(N) +
                                        " layer=" + std::to_string(layer) + " partners=" + std::to_string(partners) +
                                        " local=" + std::to_string(local) + " sinks=" + std::to_string(sinks) +
                                        " block=" + std::to_string(b);
                ASSERT_FALSE(row.empty()) << cfg;
                ASSERT_EQ(row[0].block, b) << cfg;
                ASSERT_TRUE(row[0].roles & kRoleSelf) << cfg;
                std::set<int32_t> seen;
                for (const auto& e : row) {
                  ASSERT_GE(e.block, 0) << cfg;
                  ASSERT_LE(e.block, b) << cfg;  // causal, sinks included
                  ASSERT_NE(e.roles, 0) << cfg;
                  ASSERT_TRUE(seen.insert(e.block).second) << cfg << " duplicate " << e.block;
                }
                // Expected set and roles from the definitions.
                std::set<int32_t> want{static_cast<int32_t>(b)};
                for (int64_t d = 1; d <= local && b - d >= 0; ++d) want.insert(b - d);
                for (int64_t k : plan->partner_bits) {
                  const int64_t p = butterfly_partner_block(b, k, N, rule);
                  if (p >= 0) want.insert(static_cast<int32_t>(p));
                }
                for (int64_t s = 0; s < std::min(sinks, N) && s <= b; ++s) want.insert(static_cast<int32_t>(s));
                ASSERT_EQ(seen, want) << cfg;
                // Locals right after self, descending.
                const int64_t n_local = std::min(local, b);
                for (int64_t d = 1; d <= n_local; ++d) {
                  ASSERT_EQ(row[d].block, b - d) << cfg;
                  ASSERT_TRUE(row[d].roles & kRoleLocal) << cfg;
                }
                // Entries with only the sink role come last, ascending.
                int32_t last_sink = -1;
                bool in_sinks = false;
                for (size_t i = 1 + n_local; i < row.size(); ++i) {
                  if (row[i].roles == kRoleSink) {
                    in_sinks = true;
                    ASSERT_GT(row[i].block, last_sink) << cfg;
                    last_sink = row[i].block;
                  } else {
                    ASSERT_FALSE(in_sinks) << cfg << " partner after a sink";
                    ASSERT_TRUE(row[i].roles & kRolePartner) << cfg;
                  }
                }
              }
            }
          }
        }
      }
    }
  }
}

// The upstream bug (item 5 of the consolidated list): with sink_count >= 2 block 0 listed sink 1.
TEST(ButterflyRows, SinksAreCausallyFiltered) {
  auto row0 = butterfly_row(0, make(8, 0, PartnerRule::kXor, 1, 2, 3));
  ASSERT_TRUE(row0);
  EXPECT_EQ(blocks_of(*row0), (std::vector<int32_t>{0}));
  EXPECT_EQ((*row0)[0].roles, kRoleSelf | kRoleSink);
  auto row1 = butterfly_row(1, make(8, 0, PartnerRule::kXor, 1, 0, 3));
  ASSERT_TRUE(row1);
  EXPECT_EQ(blocks_of(*row1), (std::vector<int32_t>{1, 0}));  // sink 2 dropped; 0 is partner and sink
  EXPECT_EQ((*row1)[1].roles, kRolePartner | kRoleSink);
}

TEST(ButterflyErrors, BadInputsNameTheValue) {
  auto msg = [](const ButterflyOptions& o) { return butterfly_row(0, o).status().message(); };
  EXPECT_NE(msg(make(0, 0, PartnerRule::kXor, 1, 1, 1)).find("num_blocks=0"), std::string::npos);
  EXPECT_NE(msg(make(-3, 0, PartnerRule::kXor, 1, 1, 1)).find("num_blocks=-3"), std::string::npos);
  EXPECT_NE(msg(make(8, -1, PartnerRule::kXor, 1, 1, 1)).find("layer=-1"), std::string::npos);
  EXPECT_NE(msg(make(8, 0, PartnerRule::kXor, -2, 1, 1)).find("partner_count=-2"), std::string::npos);
  EXPECT_NE(msg(make(8, 0, PartnerRule::kXor, 1, -4, 1)).find("local_blocks=-4"), std::string::npos);
  EXPECT_NE(msg(make(8, 0, PartnerRule::kXor, 1, 1, -5)).find("sink_count=-5"), std::string::npos);
  EXPECT_NE(msg(make(8, 0, static_cast<PartnerRule>(17), 1, 1, 1)).find("rule=17"), std::string::npos);
  auto oob = butterfly_row(8, make(8, 0, PartnerRule::kXor, 1, 1, 1));
  ASSERT_FALSE(oob);
  EXPECT_NE(oob.status().message().find("block=8"), std::string::npos);
  ButterflyOptions o;
  EXPECT_NE(butterfly_block_layout(0, 64, 1, o).status().message().find("T=0"), std::string::npos);
  EXPECT_NE(butterfly_block_layout(100, 0, 1, o).status().message().find("block_size=0"), std::string::npos);
  EXPECT_NE(butterfly_block_layout(100, 16, 0, o).status().message().find("Hkv=0"), std::string::npos);
  o.num_blocks = 5;  // T=100, Bs=16 -> N=7
  EXPECT_NE(butterfly_block_layout(100, 16, 1, o).status().message().find("num_blocks=5"), std::string::npos);
  o.num_blocks = 0;
  o.sink_count = -1;
  EXPECT_NE(butterfly_token_graph(100, 16, 1, o).status().message().find("sink_count=-1"), std::string::npos);
}

TEST(ButterflyLayout, BsrMatchesRowsForEveryHead) {
  for (int r = 0; r < kNumPartnerRules; ++r) {
    const auto rule = static_cast<PartnerRule>(r);
    for (int64_t T : {1, 63, 64, 1000, 4099}) {
      ButterflyOptions o = make(0, 3, rule, 2, 2, 2);
      auto L = butterfly_block_layout(T, 64, 3, o);
      ASSERT_TRUE(L) << L.status().to_string();
      const std::string cfg = std::string(partner_rule_name(rule)) + " T=" + std::to_string(T);
      ASSERT_TRUE(validate_block_layout(*L).is_ok()) << cfg << ": " << validate_block_layout(*L).message();
      const int64_t N = (T + 63) / 64;
      ASSERT_EQ(L->n_blocks, N) << cfg;
      o.num_blocks = N;
      for (int64_t h = 0; h < 3; ++h)
        for (int64_t b = 0; b < N; ++b) {
          auto row = butterfly_row(b, o);
          ASSERT_TRUE(row);
          auto want = blocks_of(*row);
          std::sort(want.begin(), want.end());
          ASSERT_EQ(std::vector<int32_t>(L->row_begin(h, b), L->row_end(h, b)), want) << cfg << " h=" << h << " b=" << b;
        }
    }
  }
}

TEST(ButterflyLayout, ValidatorCatchesEachDefect) {
  auto L = butterfly_block_layout(640, 64, 2, make(0, 1, PartnerRule::kXor, 1, 2, 1));
  ASSERT_TRUE(L);
  ASSERT_TRUE(validate_block_layout(*L).is_ok());
  {
    auto bad = *L;
    bad.n_blocks = 9;
    EXPECT_NE(validate_block_layout(bad).message().find("n_blocks=9"), std::string::npos);
  }
  {
    auto bad = *L;
    bad.indptr.pop_back();
    EXPECT_NE(validate_block_layout(bad).message().find("indptr"), std::string::npos);
  }
  {
    auto bad = *L;
    bad.indices[bad.head_base[1] + bad.indptr[11 + 4]] = 10;  // head 1, block 4, position 0
    const std::string m = validate_block_layout(bad).message();
    EXPECT_NE(m.find("head 1 block 4 position 0: index 10 out of range [0, 10)"), std::string::npos) << m;
  }
  {
    auto bad = *L;
    // Block 9's row is sorted ascending with >= 2 entries; swap its first two.
    int32_t* r = bad.indices.data() + bad.indptr[9];
    std::swap(r[0], r[1]);
    const std::string m = validate_block_layout(bad).message();
    EXPECT_NE(m.find("head 0 block 9"), std::string::npos) << m;
    EXPECT_NE(m.find("ascending"), std::string::npos) << m;
  }
  {
    auto bad = *L;
    bad.head_base[1] = static_cast<int64_t>(bad.indices.size());
    EXPECT_NE(validate_block_layout(bad).message().find("head 1"), std::string::npos);
  }
}

TEST(ButterflyTokenGraph, RowsExpandTheBlockRows) {
  const int64_t T = 70, Bs = 8;  // N = 9, last block has 6 tokens
  const auto opt = make(0, 2, PartnerRule::kXor, 2, 1, 1);
  auto g = butterfly_token_graph(T, Bs, 2, opt);
  ASSERT_TRUE(g) << g.status().to_string();
  EXPECT_EQ(g->meta.strategy, "butterfly");
  EXPECT_EQ(g->meta.num_cycles, 0);
  auto o = opt;
  o.num_blocks = 9;
  int64_t longest = 0;
  for (int64_t h = 0; h < 2; ++h)
    for (int64_t i = 0; i < T; ++i) {
      const int64_t b = i / Bs;
      auto row = butterfly_row(b, o);
      ASSERT_TRUE(row);
      std::vector<int32_t> want_idx;
      std::vector<uint8_t> want_ty;
      for (const auto& e : *row) {
        const uint8_t t = (e.roles & kRolePartner) ? 4 : (e.roles & kRoleSink) ? 3 : 2;
        for (int64_t j = e.block * Bs; j < std::min<int64_t>(T, (e.block + 1) * Bs) && j <= i; ++j) {
          want_idx.push_back(static_cast<int32_t>(j));
          want_ty.push_back(t);
        }
      }
      longest = std::max<int64_t>(longest, want_idx.size());
      std::vector<int32_t> got(g->row(h, i), g->row(h, i) + g->D);
      std::vector<uint8_t> got_ty(g->row_types(h, i), g->row_types(h, i) + g->D);
      ASSERT_LE(want_idx.size(), static_cast<size_t>(g->D));
      want_idx.resize(g->D, -1);
      want_ty.resize(g->D, 0);
      ASSERT_EQ(got, want_idx) << "h=" << h << " i=" << i;
      ASSERT_EQ(got_ty, want_ty) << "h=" << h << " i=" << i;
    }
  EXPECT_EQ(g->D, longest);
}

// The token graph is a valid ABI (no backbone, so without the Hamiltonian check) for every rule.
TEST(ButterflyTokenGraph, PassesAbiValidation) {
  for (int r = 0; r < kNumPartnerRules; ++r) {
    const auto opt = make(0, 5, static_cast<PartnerRule>(r), 3, 2, 2);
    auto g = butterfly_token_graph(301, 16, 3, opt);
    ASSERT_TRUE(g) << g.status().to_string();
    graph::ValidateOptions v;
    v.enforce_hamiltonian = false;
    v.expect_heads = 3;
    v.expect_tokens = 301;
    const Status st = graph::validate(*g, v);
    EXPECT_TRUE(st.is_ok()) << partner_rule_name(static_cast<PartnerRule>(r)) << ": " << st.message();
  }
}

}  // namespace
}  // namespace bna::topo
