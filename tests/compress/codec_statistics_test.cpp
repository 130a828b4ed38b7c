// Statistical and numerical properties: QSGD is unbiased, int8 errs by at
// most half a step, signSGD's scale is the mean magnitude, randomk draws
// uniformly, and the top-k / random-k selection helpers are exact.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "codec_harness.h"
#include "hearth/compress/payload.h"
#include "sparsify.h"

namespace hearth::compress {
namespace {

using namespace testing;  // NOLINT: the codec test helpers

DecodedPayload decode(const std::vector<std::uint8_t>& bytes, std::size_t n) {
  return decodePayload(bytes.data(), bytes.size(), n);
}

TEST(CodecStatistics, QsgdIsUnbiased) {
  const std::size_t n = 64;
  const int levels = 2;  // coarse: large variance, so bias would show
  const int trials = 20000;
  const auto g = randomVector(n, 3);
  auto codec = makeBaseline("qsgd", {{"levels", levels}, {"seed", 11}}, n);
  std::vector<double> sum(n, 0.0);
  float scale = 0.0f;
  for (int t = 0; t < trials; ++t) {
    const auto d = decode(encodeAlone(*codec, g, t), n);
    scale = d.scalars[0];
    for (std::size_t i = 0; i < n; ++i) sum[i] += d.values[i];
  }
  // Each draw is one of two adjacent levels: variance <= scale^2 / 4.
  const double tolerance = 5.0 * (scale / 2.0) / std::sqrt(double(trials));
  for (std::size_t i = 0; i < n; ++i) EXPECT_NEAR(sum[i] / trials, g[i], tolerance) << i;
}

TEST(CodecStatistics, QsgdRanksAndSeedsDrawDifferently) {
  const auto g = randomVector(1000, 4);
  auto a = makeBaseline("qsgd", {{"seed", 1}}, 1000);
  auto b = makeBaseline("qsgd", {{"seed", 1}}, 1000);
  auto c = makeBaseline("qsgd", {{"seed", 2}}, 1000);
  EXPECT_EQ(encodeAlone(*a, g), encodeAlone(*b, g)) << "same seed, same rank: same draws";
  EXPECT_NE(encodeAlone(*a, g), encodeAlone(*c, g));
  StepInfo rank1;
  rank1.rank = 1;
  rank1.worldSize = 2;
  auto d = makeBaseline("qsgd", {{"seed", 1}}, 1000);
  auto e = makeBaseline("qsgd", {{"seed", 1}}, 1000);
  EXPECT_NE(d->begin(testing::viewOf(g), rank1).bytes, encodeAlone(*e, g));
}

TEST(CodecStatistics, Int8ErrorIsAtMostHalfAStep) {
  for (std::size_t n : {std::size_t{1}, std::size_t{1001}, std::size_t{1} << 16}) {
    auto g = randomVector(n, n, 1e-3f);
    auto codec = makeBaseline("int8", nlohmann::json::object(), n);
    const auto d = decode(encodeAlone(*codec, g), n);
    const float scale = d.scalars[0];
    for (std::size_t i = 0; i < n; ++i) {
      ASSERT_LE(std::fabs(d.values[i] - g[i]), scale / 2 * (1 + 1e-6f)) << i;
    }
  }
}

TEST(CodecStatistics, SignSgdScaleIsTheMeanMagnitudeOfGradientPlusResidual) {
  const std::size_t n = 333;
  auto codec = makeBaseline("signsgd", nlohmann::json::object(), n);
  for (int step = 0; step < 5; ++step) {
    const auto g = randomVector(n, step);
    const auto e = residualOf(*codec);
    double l1 = 0.0;
    for (std::size_t i = 0; i < n; ++i) l1 += std::fabs(double(e[i] + g[i]));
    const auto d = decode(encodeAlone(*codec, g, step), n);
    EXPECT_EQ(d.scalars[0], static_cast<float>(l1 / n)) << step;
  }
}

TEST(CodecStatistics, RandomKIsUniformAndDiffersAcrossRanksAndSteps) {
  const std::size_t n = 100, k = 10;
  const int steps = 5000;
  auto codec = makeBaseline("randomk", {{"k", int(k)}, {"error_feedback", false}}, n);
  std::vector<int> hits(n, 0);
  const std::vector<float> g(n, 1.0f);
  std::vector<std::uint32_t> previous;
  int repeats = 0;
  for (int t = 0; t < steps; ++t) {
    const auto d = decode(encodeAlone(*codec, g, t), n);
    ASSERT_EQ(d.indices.size(), k);
    for (auto i : d.indices) ++hits[i];
    repeats += d.indices == previous;
    previous = d.indices;
  }
  EXPECT_LT(repeats, 2);
  const double expected = double(steps) * k / n;  // 500, sd ~21
  for (std::size_t i = 0; i < n; ++i) EXPECT_NEAR(hits[i], expected, 6 * std::sqrt(expected)) << i;

  StepInfo rank1;
  rank1.rank = 1;
  rank1.worldSize = 2;
  auto a = makeBaseline("randomk", {{"k", int(k)}}, n);
  auto b = makeBaseline("randomk", {{"k", int(k)}}, n);
  EXPECT_NE(decode(a->begin(testing::viewOf(g), rank1).bytes, n).indices,
            decode(encodeAlone(*b, g), n).indices);
}

TEST(CodecStatistics, SelectTopKMatchesAFullSortIncludingTiesAndNaN) {
  std::vector<std::uint32_t> indices;
  const std::vector<float> p = {3, -3, 0, 3, NAN, -1, 3};
  selectTopK(p.data(), p.size(), 3, indices);
  EXPECT_EQ(indices, (std::vector<std::uint32_t>{0, 1, 4}));  // NaN ranks first
  selectTopK(p.data(), p.size(), 0, indices);
  EXPECT_TRUE(indices.empty());
  selectTopK(p.data(), p.size(), 7, indices);
  EXPECT_EQ(indices.size(), 7u);
  const std::vector<float> equal(1000, -0.5f);  // one bucket, all ties
  selectTopK(equal.data(), equal.size(), 10, indices);
  EXPECT_EQ(indices, (std::vector<std::uint32_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  const std::vector<float> signedZeros = {0.0f, -0.0f, 1e-45f, -0.0f};
  selectTopK(signedZeros.data(), signedZeros.size(), 2, indices);
  EXPECT_EQ(indices, (std::vector<std::uint32_t>{0, 2}));  // denormal, then the first zero
}

TEST(CodecStatistics, SampleRandomKGivesKDistinctSortedIndices) {
  CodecRng rng(5);
  std::vector<std::uint32_t> indices;
  std::vector<std::uint64_t> bitmap;
  for (std::size_t n : {1, 63, 64, 65, 1000}) {
    for (std::size_t k : {std::size_t{0}, std::size_t{1}, n / 2, n}) {
      sampleRandomK(rng, n, k, indices, bitmap);
      ASSERT_EQ(indices.size(), k);
      for (std::size_t j = 0; j < k; ++j) {
        ASSERT_LT(indices[j], n);
        if (j > 0) {
          ASSERT_LT(indices[j - 1], indices[j]);
        }
      }
    }
  }
}

TEST(CodecStatistics, RngIsReproducibleAndNormalHasUnitVariance) {
  CodecRng a(42, 1), b(42, 1), c(42, 2);
  EXPECT_EQ(a.next(), b.next());
  EXPECT_NE(a.next(), c.next());
  double sum = 0.0, sumSquares = 0.0;
  const int n = 100000;
  for (int i = 0; i < n; ++i) {
    const double x = a.normal();
    sum += x;
    sumSquares += x * x;
  }
  EXPECT_NEAR(sum / n, 0.0, 0.02);
  EXPECT_NEAR(sumSquares / n, 1.0, 0.02);
}

}  // namespace
}  // namespace hearth::compress
