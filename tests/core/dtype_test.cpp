// DType conversions: exact round-to-nearest-even at the bit level, specials, bulk converters.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "bna/dtype.hpp"

namespace bna {
namespace {

TEST(DType, Bf16RoundsToNearestEven) {
  // 1 + 2^-8 is exactly halfway between bf16 1.0 and 1 + 2^-7: ties to even -> 1.0.
  EXPECT_EQ(float_to_bf16(1.0f + std::ldexp(1.0f, -8)), 0x3f80);
  // 1 + 3*2^-8 is halfway between 1+2^-7 (odd) and 1+2^-6 (even) -> rounds up.
  EXPECT_EQ(float_to_bf16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3f82);
  EXPECT_EQ(float_to_bf16(-2.0f), 0xc000);
  EXPECT_TRUE(std::isnan(bf16_to_float(float_to_bf16(std::numeric_limits<float>::quiet_NaN()))));
  EXPECT_TRUE(std::isinf(bf16_to_float(float_to_bf16(std::numeric_limits<float>::infinity()))));
}

TEST(DType, F16MatchesExhaustiveRoundTrip) {
  // Every finite f16 value converts to float and back to the same bits.
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const uint16_t b = static_cast<uint16_t>(h);
    const float f = f16_to_float(b);
    if (std::isnan(f)) { EXPECT_TRUE(std::isnan(f16_to_float(float_to_f16(f)))); continue; }
    ASSERT_EQ(float_to_f16(f), b) << "bits 0x" << std::hex << h;
  }
}

TEST(DType, F16RoundsHalfwayToEven) {
  // Midpoints between consecutive f16 values round to the even neighbour; just above rounds up.
  for (uint16_t b : {0x0001, 0x0002, 0x03ff, 0x3c00, 0x3c01, 0x7bfe}) {
    const double lo = f16_to_float(b), hi = f16_to_float(static_cast<uint16_t>(b + 1));
    const float mid = static_cast<float>((lo + hi) / 2);
    const uint16_t even = (b & 1) ? static_cast<uint16_t>(b + 1) : b;
    EXPECT_EQ(float_to_f16(mid), even) << "b=" << b;
    EXPECT_EQ(float_to_f16(std::nextafter(mid, 1e30f)), static_cast<uint16_t>(b + 1)) << "b=" << b;
  }
  EXPECT_EQ(float_to_f16(65520.0f), 0x7c00);      // halfway to the next binade: Inf
  EXPECT_EQ(float_to_f16(65519.0f), 0x7bff);
  EXPECT_EQ(float_to_f16(std::ldexp(1.0f, -25)), 0x0000);  // tie between 0 and min subnormal
  EXPECT_EQ(float_to_f16(std::ldexp(1.5f, -25)), 0x0001);
}

TEST(DType, ParseNamesTheValue) {
  EXPECT_EQ(*parse_dtype("bf16"), DType::kBF16);
  auto bad = parse_dtype("f8");
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.status().message().find("'f8'"), std::string::npos);
}

}  // namespace
}  // namespace bna
