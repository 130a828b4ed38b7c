// Tests of the local DGC step against scalar references computed here:
// conservation (nothing dropped), momentum correction and masking, Nesterov,
// clipping with the N^-1/2 scaling, the dense path and value rounding.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "dgc_sparsifier.h"
#include "dgc_test_util.h"

namespace hearth::compress {
namespace {

using testing::bitsOf;
using testing::view;

std::vector<float> gradient(std::size_t n, std::uint32_t seed, float scale = 1.0f) {
  return testing::normalValues(n, seed, scale);
}

StepInfo at(std::int64_t step, int rank = 0, int world = 1) {
  StepInfo info;
  info.step = step;
  info.rank = rank;
  info.worldSize = world;
  return info;
}

TEST(DgcSparsifier, ConservationWithoutMomentumIsBitwise) {
  const std::size_t n = 10007;
  DgcSparsifier dgc(testing::plainOptions(0.01), n);
  EXPECT_TRUE(dgc.momentum().empty());
  std::vector<float> refV(n, 0.0f);
  std::vector<double> inputSum(n, 0.0), sentSum(n, 0.0), absSum(n, 0.0);
  for (int step = 0; step < 60; ++step) {
    const auto g = gradient(n, step, step % 3 == 0 ? 10.0f : 0.01f);
    for (std::size_t i = 0; i < n; ++i) {
      refV[i] = refV[i] + g[i];
      inputSum[i] += g[i];
      absSum[i] += std::fabs(g[i]);
    }
    const auto& sel = dgc.step(view(g), at(step));
    for (std::size_t j = 0; j < sel.size(); ++j) {
      const auto i = sel.indices[j];
      ASSERT_EQ(bitsOf(sel.values[j]), bitsOf(refV[i])) << "step " << step << " index " << i;
      sentSum[i] += sel.values[j];
      refV[i] = 0.0f;
    }
    for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(bitsOf(dgc.velocity()[i]), bitsOf(refV[i]));
  }
  for (std::size_t i = 0; i < n; ++i) {
    // Only fp32 rounding of the running sum in v separates the two sides.
    EXPECT_NEAR(sentSum[i] + dgc.velocity()[i], inputSum[i], 1e-5 * absSum[i]) << i;
  }
}

// Runs steps with momentum (and optionally Nesterov), checking every step
// against the scalar update, masking included.
void checkMomentumSteps(bool nesterov) {
  const std::size_t n = 20011;
  const float m = 0.9f;
  auto options = testing::plainOptions(0.005, m);
  options.nesterov = nesterov;
  DgcSparsifier dgc(options, n);
  std::vector<float> u(n, 0.0f), v(n, 0.0f);
  for (int step = 0; step < 30; ++step) {
    const auto g = gradient(n, 1000 + step);
    std::vector<float> uNew(n), vNew(n);
    for (std::size_t i = 0; i < n; ++i) {
      uNew[i] = m * u[i] + g[i];
      vNew[i] = nesterov ? v[i] + (g[i] + m * uNew[i]) : v[i] + uNew[i];
    }
    const auto& sel = dgc.step(view(g), at(step));
    std::vector<char> sent(n, 0);
    for (std::size_t j = 0; j < sel.size(); ++j) {
      const auto i = sel.indices[j];
      sent[i] = 1;
      // v_before + correction == sent + v_after, with v_after == 0 here.
      ASSERT_EQ(bitsOf(sel.values[j]), bitsOf(vNew[i])) << "step " << step;
    }
    for (std::size_t i = 0; i < n; ++i) {
      if (sent[i]) {
        ASSERT_EQ(dgc.velocity()[i], 0.0f);
        ASSERT_EQ(dgc.momentum()[i], 0.0f);  // momentum factor masking
        u[i] = v[i] = 0.0f;
      } else {
        ASSERT_EQ(bitsOf(dgc.velocity()[i]), bitsOf(vNew[i])) << "step " << step << " i " << i;
        ASSERT_EQ(bitsOf(dgc.momentum()[i]), bitsOf(uNew[i]));
        u[i] = uNew[i];
        v[i] = vNew[i];
      }
    }
  }
}

TEST(DgcSparsifier, MomentumCorrectionAndMaskingMatchReference) {
  checkMomentumSteps(false);
}
TEST(DgcSparsifier, NesterovMatchesReference) {
  checkMomentumSteps(true);
}

TEST(DgcSparsifier, ClippingScalesTheThresholdByInverseSqrtWorldSize) {
  const std::size_t n = 5000;
  auto options = testing::plainOptions(1.0);
  options.clipNorm = 1.0;
  const auto g = gradient(n, 5);
  double norm = 0.0;
  for (float e : g) norm += double(e) * e;
  norm = std::sqrt(norm);
  for (int world : {1, 4, 9}) {
    DgcSparsifier dgc(options, n);
    const auto& sel = dgc.step(view(g), at(0, 0, world));
    const float expected = static_cast<float>(1.0 / std::sqrt(double(world)) / norm);
    EXPECT_FLOAT_EQ(dgc.lastClipScale(), expected) << world;
    ASSERT_EQ(sel.size(), n);
    for (std::size_t i = 0; i < n; ++i) {
      ASSERT_EQ(bitsOf(sel.values[i]), bitsOf(dgc.lastClipScale() * g[i]));
    }
    double sentNorm = 0.0;
    for (float e : sel.values) sentNorm += double(e) * e;
    EXPECT_NEAR(std::sqrt(sentNorm), 1.0 / std::sqrt(double(world)), 1e-5);
  }
  options.clipNorm = 1e6;  // above the norm: untouched
  DgcSparsifier loose(options, n);
  loose.step(view(g), at(0, 0, 4));
  EXPECT_EQ(loose.lastClipScale(), 1.0f);
}

TEST(DgcSparsifier, DenseBufferIsMomentumSgd) {
  const std::size_t n = 100;
  DgcOptions options;  // defaults: momentum 0.9, min_numel 4096
  options.warmupPeriods = 0;
  DgcSparsifier dgc(options, n);
  ASSERT_TRUE(dgc.denseBuffer());
  std::vector<float> buf(n, 0.0f);
  for (int step = 0; step < 10; ++step) {
    const auto g = gradient(n, step);
    for (std::size_t i = 0; i < n; ++i) buf[i] = 0.9f * buf[i] + g[i];
    const auto& sel = dgc.step(view(g), at(step));
    ASSERT_TRUE(sel.dense);
    ASSERT_EQ(sel.size(), n);
    for (std::size_t i = 0; i < n; ++i) {
      ASSERT_EQ(sel.indices[i], i);
      ASSERT_EQ(bitsOf(sel.values[i]), bitsOf(buf[i]));
      ASSERT_EQ(bitsOf(dgc.momentum()[i]), bitsOf(buf[i]));  // not masked
      ASSERT_EQ(dgc.velocity()[i], 0.0f);
    }
  }
}

void checkRoundedValues(ValueType type) {
  const std::size_t n = 10000;
  auto options = testing::plainOptions(0.01);
  options.valueType = type;
  DgcSparsifier dgc(options, n);
  std::vector<float> v(n, 0.0f);
  for (int step = 0; step < 20; ++step) {
    auto g = gradient(n, 50 + step, 1e-3f);
    g[step * 7] = 1e5f;  // above the fp16 range
    std::vector<float> expected(n);
    for (std::size_t i = 0; i < n; ++i) expected[i] = v[i] + g[i];
    const auto& sel = dgc.step(view(g), at(step));
    for (std::size_t j = 0; j < sel.size(); ++j) {
      const auto i = sel.indices[j];
      const float q = sel.values[j];
      const float roundTrip = type == ValueType::kF16 ? halfToFloat(floatToHalf(q))
                                                      : bfloat16ToFloat(floatToBFloat16(q));
      ASSERT_EQ(bitsOf(q), bitsOf(roundTrip)) << "representable";
      ASSERT_TRUE(std::isfinite(q));
      // Nothing dropped: the rounding error stays in v, exactly.
      ASSERT_EQ(double(q) + double(dgc.velocity()[i]), double(expected[i])) << i;
    }
    v = dgc.velocity();
  }
}

TEST(DgcSparsifier, Fp16ValuesKeepTheRoundingErrorInV) {
  checkRoundedValues(ValueType::kF16);
}
TEST(DgcSparsifier, Bf16ValuesKeepTheRoundingErrorInV) {
  checkRoundedValues(ValueType::kBF16);
}

TEST(DgcSparsifier, HalfAndBfloatGradientsAreConverted) {
  const std::size_t n = 5001;
  const auto g = gradient(n, 9);
  std::vector<std::uint16_t> half(n), bf(n);
  for (std::size_t i = 0; i < n; ++i) {
    half[i] = floatToHalf(g[i]);
    bf[i] = floatToBFloat16(g[i]);
  }
  DgcSparsifier a(testing::plainOptions(0.001), n), b(testing::plainOptions(0.001), n);
  const auto& selA = a.step({half.data(), n, DType::kFloat16}, at(0));
  const auto& selB = b.step({bf.data(), n, DType::kBFloat16}, at(0));
  for (std::size_t j = 0; j < selA.size(); ++j) {
    EXPECT_EQ(selA.values[j], halfToFloat(half[selA.indices[j]]));
  }
  for (std::size_t j = 0; j < selB.size(); ++j) {
    EXPECT_EQ(selB.values[j], bfloat16ToFloat(bf[selB.indices[j]]));
  }
  for (std::size_t i = 0; i < n; ++i) {
    if (a.velocity()[i] != 0.0f) {
      EXPECT_EQ(a.velocity()[i], halfToFloat(half[i]));
    }
    if (b.velocity()[i] != 0.0f) {
      EXPECT_EQ(b.velocity()[i], bfloat16ToFloat(bf[i]));
    }
  }
}

TEST(DgcSparsifier, ZerosAreNeverSentAndSmallBuffersWork) {
  for (std::size_t n : {1u, 2u, 3u, 5000u}) {
    DgcSparsifier dgc(testing::plainOptions(0.001, 0.9), n);
    std::vector<float> zero(n, 0.0f);
    EXPECT_EQ(dgc.step(view(zero), at(0)).size(), 0u);
    std::vector<float> one(n, 0.0f);
    one[n - 1] = -2.0f;
    const auto& sel = dgc.step(view(one), at(1));
    ASSERT_EQ(sel.size(), 1u);
    EXPECT_EQ(sel.indices[0], n - 1);
    EXPECT_EQ(sel.values[0], -2.0f);
  }
}

TEST(DgcSparsifier, SamplingIsReproducibleFromSeedAndRank) {
  const std::size_t n = 1u << 18;
  auto options = testing::plainOptions(0.001, 0.9);
  DgcSparsifier a(options, n), b(options, n);
  for (int step = 0; step < 5; ++step) {
    const auto g = gradient(n, 77 + step);
    const auto selA = a.step(view(g), at(step, 3, 4)).indices;
    const auto& selB = b.step(view(g), at(step, 3, 4)).indices;
    EXPECT_EQ(selA, selB);
  }
}

TEST(DgcSparsifier, RejectsMismatchedGradients) {
  DgcSparsifier dgc(testing::plainOptions(0.01), 10);
  std::vector<float> g(11, 1.0f);
  EXPECT_THROW(dgc.step(view(g), at(0)), std::invalid_argument);
  EXPECT_THROW(dgc.step({nullptr, 10, DType::kFloat32}, at(0)), std::invalid_argument);
}

}  // namespace
}  // namespace hearth::compress
