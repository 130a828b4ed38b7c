// Tests of the SIMD counting-scan kernels: every level the CPU runs gives
// exactly the scalar kernel's indices and count, for every length (the block
// tails), base offset, threshold and a cap smaller than the hit count.
#include <gtest/gtest.h>

#include <cstdlib>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "dgc_selection.h"
#include "dgc_test_util.h"
#include "magnitude_scan.h"

namespace hearth::compress {
namespace {

struct ScanResult {
  std::vector<std::uint32_t> indices;
  std::size_t count = 0;
};

ScanResult scanWith(SimdLevel level, const std::vector<float>& x, std::size_t from, std::size_t len,
                    std::size_t base, std::uint32_t threshold, std::size_t cap) {
  ScanResult r;
  r.indices.assign(cap + 8, 0xFFFFFFFFu);  // guard entries past cap must stay untouched
  r.count = 3;                             // the kernels add to an existing count
  collectAtLeastWith(level, x.data() + from, len, base, threshold, r.indices.data(), cap, r.count);
  return r;
}

std::vector<float> hostileValues(std::size_t n, std::uint32_t seed) {
  return testing::normalValues(n, seed, 1.0f,
                               {0.0f, -0.0f, 1e-45f, -1e-40f,
                                std::numeric_limits<float>::infinity(), -3e38f, 1.0f, -1.0f, 2.5f},
                               4);
}

TEST(MagnitudeScan, EveryLevelMatchesScalarExactly) {
  const auto levels = supportedSimdLevels();
  ASSERT_EQ(levels.front(), SimdLevel::kScalar);
  const std::vector<float> x = hostileValues(4096 + 200, 7);
  const std::uint32_t thresholds[] = {
      1u,         magnitudeKey(1e-40f), magnitudeKey(1.0f), magnitudeKey(2.5f), magnitudeKey(3e38f),
      0x7F800000u};
  for (SimdLevel level : levels) {
    for (std::size_t len : {0, 1, 15, 16, 17, 31, 33, 63, 64, 65, 127, 129, 1000, 4096}) {
      for (std::size_t from : {0, 1, 5}) {
        for (std::uint32_t threshold : thresholds) {
          for (std::size_t cap : {std::size_t{0}, std::size_t{7}, std::size_t{5000}}) {
            const ScanResult want = scanWith(SimdLevel::kScalar, x, from, len, 100, threshold, cap);
            const ScanResult got = scanWith(level, x, from, len, 100, threshold, cap);
            ASSERT_EQ(got.count, want.count)
                << simdLevelName(level) << " len " << len << " from " << from;
            ASSERT_EQ(got.indices, want.indices)
                << simdLevelName(level) << " len " << len << " from " << from;
          }
        }
      }
    }
  }
}

TEST(MagnitudeScan, ScalarFindsEveryEntryAtOrAboveTheThreshold) {
  const std::vector<float> x = hostileValues(777, 3);
  const std::uint32_t threshold = magnitudeKey(1.0f);
  std::vector<std::uint32_t> expected;
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (magnitudeKey(x[i]) >= threshold) expected.push_back(static_cast<std::uint32_t>(10 + i));
  }
  const ScanResult got = scanWith(SimdLevel::kScalar, x, 0, x.size(), 10, threshold, x.size());
  EXPECT_EQ(got.count, 3 + expected.size());
  // The kernel writes at out[count..), so its first hit lands at index 3.
  EXPECT_EQ(
      std::vector<std::uint32_t>(got.indices.begin() + 3,
                                 got.indices.begin() + 3 + static_cast<long>(expected.size())),
      expected);
}

TEST(MagnitudeScan, HearthSimdCapsTheLevelAndRejectsUnknownNames) {
  std::string problem = "stale";
  EXPECT_EQ(cappedSimdLevel(nullptr, SimdLevel::kAvx2, &problem), SimdLevel::kAvx2);
  EXPECT_TRUE(problem.empty());
  EXPECT_EQ(cappedSimdLevel("", SimdLevel::kAvx2, &problem), SimdLevel::kAvx2);
  EXPECT_EQ(cappedSimdLevel("sse2", SimdLevel::kAvx2, &problem), SimdLevel::kSse2);
  EXPECT_EQ(cappedSimdLevel("scalar", SimdLevel::kAvx512, &problem), SimdLevel::kScalar);
  EXPECT_TRUE(problem.empty());
  // A level the CPU lacks is never used.
  EXPECT_EQ(cappedSimdLevel("avx512", SimdLevel::kSse2, &problem), SimdLevel::kSse2);
  EXPECT_TRUE(problem.empty());
  EXPECT_EQ(cappedSimdLevel("AVX9", SimdLevel::kAvx2, &problem), SimdLevel::kAvx2);
  EXPECT_NE(problem.find("ignoring HEARTH_SIMD=AVX9"), std::string::npos) << problem;
}

TEST(MagnitudeScan, ActiveLevelIsSupportedAndNamed) {
  const auto levels = supportedSimdLevels();
  EXPECT_NE(std::find(levels.begin(), levels.end(), activeSimdLevel()), levels.end());
  EXPECT_STRNE(simdLevelName(activeSimdLevel()), "?");
}

}  // namespace
}  // namespace hearth::compress
