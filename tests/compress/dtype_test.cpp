#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "hearth/compress/dtype.h"

namespace hearth::compress {
namespace {

TEST(DType, EveryHalfRoundTripsExactly) {
  for (std::uint32_t h = 0; h < 0x10000u; ++h) {
    const float f = halfToFloat(static_cast<std::uint16_t>(h));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(halfToFloat(floatToHalf(f)))) << h;
      continue;
    }
    EXPECT_EQ(floatToHalf(f), h) << "half 0x" << std::hex << h;
  }
}

TEST(DType, HalfRoundsToNearestEvenAndSaturates) {
  EXPECT_EQ(halfToFloat(floatToHalf(1.0f + 2.0f / 4096)), 1.0f);                // tie -> even
  EXPECT_EQ(halfToFloat(floatToHalf(1.0f + 6.0f / 4096)), 1.0f + 1.0f / 512);   // tie -> even (up)
  EXPECT_EQ(halfToFloat(floatToHalf(1.0f + 3.0f / 4096)), 1.0f + 1.0f / 1024);  // nearest
  EXPECT_TRUE(std::isinf(halfToFloat(floatToHalf(70000.0f))));
  EXPECT_EQ(halfToFloat(floatToHalf(65504.0f)), 65504.0f);
  EXPECT_EQ(halfToFloat(floatToHalf(1e-8f)), 0.0f);
  EXPECT_EQ(halfToFloat(floatToHalf(5.96046448e-8f)), 5.96046448e-8f);  // smallest subnormal
}

TEST(DType, BFloat16RoundTripAndRounding) {
  for (std::uint32_t b = 0; b < 0x10000u; ++b) {
    const float f = bfloat16ToFloat(static_cast<std::uint16_t>(b));
    if (std::isnan(f)) continue;
    EXPECT_EQ(floatToBFloat16(f), b);
  }
  EXPECT_EQ(bfloat16ToFloat(floatToBFloat16(1.0f + 1.0f / 256)), 1.0f);  // tie -> even
  EXPECT_TRUE(
      std::isnan(bfloat16ToFloat(floatToBFloat16(std::numeric_limits<float>::quiet_NaN()))));
}

}  // namespace
}  // namespace hearth::compress
