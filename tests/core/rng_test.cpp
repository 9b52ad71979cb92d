// Rng: a fixed, documented stream (golden values), unbiased bounded draws, deterministic shuffles.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>

#include "bna/rng.hpp"
#include "bna/status.hpp"
#include "bna/tensor.hpp"

namespace bna {
namespace {

TEST(Rng, SplitMix64GoldenValues) {
  // Reference outputs of SplitMix64 seeded with 1234567 (Vigna's splitmix64.c).
  uint64_t st = 1234567;
  EXPECT_EQ(splitmix64(st), 6457827717110365317ull);
  EXPECT_EQ(splitmix64(st), 3203168211198807973ull);
  EXPECT_EQ(splitmix64(st), 9817491932198370423ull);
}

TEST(Rng, SameSeedSameStreamDifferentSeedDifferentStream) {
  Rng a(42), b(42), c(43);
  for (int i = 0; i < 100; ++i) {
    const uint64_t x = a.next_u64();
    EXPECT_EQ(x, b.next_u64());
    EXPECT_NE(x, c.next_u64());
  }
}

TEST(Rng, UniformBelowCoversRangeEvenly) {
  Rng r(7);
  std::vector<int> hist(10, 0);
  for (int i = 0; i < 100000; ++i) ++hist[r.uniform_below(10)];
  for (int c : hist) { EXPECT_GT(c, 9500); EXPECT_LT(c, 10500); }
  EXPECT_EQ(r.uniform_below(1), 0u);
}

TEST(Rng, ShuffleIsAPermutation) {
  Rng r(3);
  std::vector<int> v(1000);
  std::iota(v.begin(), v.end(), 0);
  auto w = v;
  r.shuffle(w);
  EXPECT_NE(v, w);
  std::sort(w.begin(), w.end());
  EXPECT_EQ(v, w);
}

TEST(Rng, NormalHasUnitMoments) {
  Rng r(11);
  double s = 0, s2 = 0;
  const int n = 200000;
  for (int i = 0; i < n; ++i) { const double x = r.normal(); s += x; s2 += x * x; }
  EXPECT_NEAR(s / n, 0.0, 0.01);
  EXPECT_NEAR(s2 / n, 1.0, 0.02);
}

TEST(Tensor, ZerosAndErrors) {
  auto t = Tensor::zeros({2, 3, 4}, DType::kBF16);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->numel(), 24);
  EXPECT_EQ(t->nbytes(), 48u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t->data()) % 64, 0u);
  EXPECT_TRUE(t->view().is_contiguous());
  auto bad = Tensor::zeros({2, -1});
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.status().message().find("-1"), std::string::npos);
}

TEST(Status, ExpectedCarriesErrors) {
  Expected<int> e = invalid_argument("graph: T=0, expected T >= 1");
  EXPECT_FALSE(e.has_value());
  EXPECT_EQ(e.status().to_string(), "invalid_argument: graph: T=0, expected T >= 1");
  Expected<int> v = 5;
  EXPECT_TRUE(v.status().is_ok());
  EXPECT_EQ(*v, 5);
}

}  // namespace
}  // namespace bna
