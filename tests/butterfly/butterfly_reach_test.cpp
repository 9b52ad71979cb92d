// The causal_shift theorem, checked exhaustively: with one partner per layer, ceil(log2 N) consecutive
// layers (any starting layer) let every block b depend on every block 0..b, with local_blocks = 1 and
// also with local_blocks = 0. With local_blocks = 0 the bound is tight: one layer fewer never suffices
// for N >= 2. Reachability is composed layer by layer as bitsets: after layers l0..lk, block b depends on
// reach[b] = union of reach_prev[c] over c in row_lk(b).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "bna/butterfly.hpp"

namespace bna::topo {
namespace {

class BlockReach {
 public:
  explicit BlockReach(int64_t N) : N_(N), words_((N + 63) / 64), bits_(N * words_, 0), tmp_(N * words_, 0) {
    for (int64_t b = 0; b < N; ++b) bits_[b * words_ + b / 64] |= uint64_t{1} << (b % 64);
  }
  // Compose one more layer on top of the layers applied so far.
  void apply(const ButterflyPlan& plan) {
    std::vector<ButterflyEntry> row;
    std::fill(tmp_.begin(), tmp_.end(), 0);
    for (int64_t b = 0; b < N_; ++b) {
      butterfly_row(b, plan, row);
      uint64_t* dst = tmp_.data() + b * words_;
      for (const auto& e : row) {
        const uint64_t* src = bits_.data() + static_cast<int64_t>(e.block) * words_;
        for (int64_t w = 0; w < words_; ++w) dst[w] |= src[w];
      }
    }
    bits_.swap(tmp_);
  }
  // First block b whose reach is not exactly {0..b}, or -1.
  int64_t first_incomplete() const {
    for (int64_t b = 0; b < N_; ++b) {
      const uint64_t* r = bits_.data() + b * words_;
      for (int64_t w = 0; w < words_; ++w) {
        const int64_t lo = w * 64;
        uint64_t want = 0;
        if (b >= lo + 63) want = ~uint64_t{0};
        else if (b >= lo) want = (uint64_t{1} << (b - lo + 1)) - 1;
        if (r[w] != want) return b;
      }
    }
    return -1;
  }

 private:
  int64_t N_, words_;
  std::vector<uint64_t> bits_, tmp_;
};

int64_t ceil_log2(int64_t n) {
  int64_t k = 0;
  while ((int64_t{1} << k) < n) ++k;
  return k;
}

// Reach after `layers` consecutive layers starting at `start`; returns first_incomplete().
int64_t reach_after(int64_t N, int64_t start, int64_t layers, int64_t local) {
  BlockReach reach(N);
  for (int64_t l = start; l < start + layers; ++l) {
    ButterflyOptions o;
    o.num_blocks = N;
    o.layer = l;
    o.rule = PartnerRule::kCausalShift;
    o.partner_count = 1;
    o.local_blocks = local;
    o.sink_count = 0;
    auto plan = butterfly_plan(o);
    BNA_ASSERT(plan.has_value());
    reach.apply(*plan);
  }
  return reach.first_incomplete();
}

TEST(CausalShiftTheorem, WholePrefixWithinCeilLog2NLayers) {
  for (int64_t local : {1, 0}) {
    for (int64_t N = 1; N <= 300; ++N) {
      const int64_t L = ceil_log2(N);
      const int64_t stages = butterfly_stage_count(N, PartnerRule::kCausalShift);
      ASSERT_EQ(stages, std::max<int64_t>(1, L)) << "N=" << N;
      // Every starting layer: one full period of starting stages plus one more period of layers.
      for (int64_t start = 0; start < 2 * stages; ++start) {
        const int64_t bad = reach_after(N, start, L, local);
        ASSERT_EQ(bad, -1) << "local_blocks=" << local << " N=" << N << " start_layer=" << start << " layers=" << L
                           << ": block " << bad << " does not reach its whole causal prefix";
      }
    }
  }
}

TEST(CausalShiftTheorem, TightWithoutLocalBlocks) {
  for (int64_t N = 2; N <= 300; ++N) {
    const int64_t L = ceil_log2(N);
    for (int64_t start = 0; start < L; ++start)
      ASSERT_NE(reach_after(N, start, L - 1, 0), -1)
          << "N=" << N << " start_layer=" << start << ": " << L - 1 << " layers already reach every prefix";
  }
}

// The other bit-flip rules do not have the property: xor over a full period reaches exactly the
// sub-masks of b (so block 2 never reaches block 1 without local blocks). Guards against a
// reachability check that passes trivially.
TEST(CausalShiftTheorem, XorReachesOnlySubmasks) {
  const int64_t N = 16, L = 4;
  BlockReach reach(N);
  for (int64_t l = 0; l < L; ++l) {
    ButterflyOptions o;
    o.num_blocks = N;
    o.layer = l;
    o.rule = PartnerRule::kXor;
    o.partner_count = 1;
    o.local_blocks = 0;
    o.sink_count = 0;
    auto plan = butterfly_plan(o);
    ASSERT_TRUE(plan);
    reach.apply(*plan);
  }
  EXPECT_EQ(reach.first_incomplete(), 2);
}

}  // namespace
}  // namespace bna::topo
