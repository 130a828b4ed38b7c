// Tests of DGC's SIMD update kernels: every level the CPU runs gives results
// bitwise identical to the scalar formulas, for every mode and every length
// (vector tails included).
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "dgc_test_util.h"
#include "dgc_update_kernels.h"

namespace hearth::compress {
namespace {

std::vector<float> randomValues(std::size_t n, std::uint32_t seed) {
  return testing::normalValues(n, seed, 3.0f, {1e-41f}, 16);  // some denormals
}

bool bitwiseEqual(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

TEST(DgcUpdateKernels, EveryLevelMatchesTheScalarFormulasBitwise) {
  const float m = 0.9f;
  const float s = 0.37f;
  for (SimdLevel level : supportedSimdLevels()) {
    for (DgcUpdate mode : {DgcUpdate::kPlain, DgcUpdate::kMomentum, DgcUpdate::kNesterov}) {
      for (std::size_t len : {0, 1, 3, 4, 7, 8, 15, 16, 17, 33, 1000, 2048}) {
        const std::vector<float> g = randomValues(len, 1);
        std::vector<float> u = randomValues(len, 2);
        std::vector<float> v = randomValues(len, 3);
        std::vector<float> uWant = u;
        std::vector<float> vWant = v;
        for (std::size_t i = 0; i < len; ++i) {
          const float gs = s * g[i];
          if (mode == DgcUpdate::kPlain) {
            vWant[i] = vWant[i] + gs;
            continue;
          }
          const float un = m * uWant[i] + gs;
          uWant[i] = un;
          vWant[i] = mode == DgcUpdate::kMomentum ? vWant[i] + un : vWant[i] + (gs + m * un);
        }
        dgcUpdateWith(level, mode, g.data(), u.data(), v.data(), len, m, s);
        EXPECT_TRUE(bitwiseEqual(u, uWant))
            << simdLevelName(level) << " mode " << static_cast<int>(mode) << " len " << len;
        EXPECT_TRUE(bitwiseEqual(v, vWant))
            << simdLevelName(level) << " mode " << static_cast<int>(mode) << " len " << len;
      }
    }
  }
}

}  // namespace
}  // namespace hearth::compress
