// Multi-rank exchanges simulated in one thread: every codec averages
// correctly over 1-4 ranks, every rank ends with the same bits, and error
// feedback makes the running sum of outputs track the running sum of inputs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <tuple>
#include <vector>

#include "codec_harness.h"
#include "hearth/compress/payload.h"
#include "linalg.h"

namespace hearth::compress {
namespace {

using namespace testing;  // NOLINT: the codec test helpers

std::vector<std::vector<float>> gradients(int world, std::size_t n, std::uint64_t seed) {
  std::vector<std::vector<float>> g;
  for (int r = 0; r < world; ++r) g.push_back(randomVector(n, seed * 10 + r));
  return g;
}

std::vector<double> meanOf(const std::vector<std::vector<float>>& v) {
  std::vector<double> m(v[0].size(), 0.0);
  for (const auto& x : v) {
    for (std::size_t i = 0; i < m.size(); ++i) m[i] += x[i];
  }
  for (double& x : m) x /= static_cast<double>(v.size());
  return m;
}

void expectSameOnEveryRank(const std::vector<std::vector<float>>& out, const std::string& what) {
  for (std::size_t r = 1; r < out.size(); ++r) {
    ASSERT_EQ(out[r], out[0]) << what << ": rank " << r << " differs";
  }
}

TEST(CodecExchange, NoneIsOneAllreduceAndExactlyTheMean) {
  for (int world = 1; world <= 4; ++world) {
    for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{1001}}) {
      auto ranks = makeRanks("none", nlohmann::json::object(), n, world);
      const auto g = gradients(world, n, n);
      StepInfo info;
      info.worldSize = world;
      EXPECT_EQ(ranks[0]->begin(testing::viewOf(g[0]), info).op, ExchangeOp::kAllreduceSum);
      const auto out = runStep(ranks, g);
      expectSameOnEveryRank(out, "none");
      for (std::size_t i = 0; i < n; ++i) {
        float sum = 0.0f;
        for (int r = 0; r < world; ++r) sum += g[r][i];
        ASSERT_EQ(out[0][i], sum / static_cast<float>(world));
      }
      EXPECT_EQ(ranks[0]->bytesSent(), 4 * n);
    }
  }
}

struct LossyCase {
  std::string codec;
  nlohmann::json params;
  // Bound on |output - mean| for element i, given each rank's input.
  double (*bound)(const std::vector<std::vector<float>>& g, std::size_t i);
};

double maxAbs(const std::vector<float>& v) {
  float m = 0.0f;
  for (float x : v) m = std::max(m, std::fabs(x));
  return m;
}
double l2(const std::vector<float>& v) {
  double s = 0.0;
  for (float x : v) s += double(x) * x;
  return std::sqrt(s);
}
double meanOfRanks(const std::vector<std::vector<float>>& g,
                   double (*f)(const std::vector<float>&)) {
  double s = 0.0;
  for (const auto& x : g) s += f(x);
  return s / static_cast<double>(g.size());
}

class CodecExchangeBound : public ::testing::TestWithParam<LossyCase> {};

TEST_P(CodecExchangeBound, FirstStepMeanIsWithinTheQuantizationError) {
  const LossyCase& c = GetParam();
  for (int world = 1; world <= 4; ++world) {
    for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{1001}}) {
      auto ranks = makeRanks(c.codec, c.params, n, world);
      const auto g = gradients(world, n, 3 * n + world);
      const auto out = runStep(ranks, g);
      expectSameOnEveryRank(out, c.codec);
      const auto mean = meanOf(g);
      for (std::size_t i = 0; i < n; ++i) {
        ASSERT_LE(std::fabs(out[0][i] - mean[i]), c.bound(g, i) + 1e-5)
            << c.codec << " world " << world << " n " << n << " i " << i;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Codecs, CodecExchangeBound,
    ::testing::Values(
        LossyCase{"fp16", nlohmann::json::object(),
                  [](const auto& g, std::size_t) { return 1e-3 * meanOfRanks(g, maxAbs); }},
        LossyCase{"topk",
                  {{"density", 1.0}},  // lossless
                  [](const auto& g, std::size_t) { return 0.0; }},
        LossyCase{"randomk",
                  {{"density", 1.0}, {"value_type", "bf16"}},
                  [](const auto& g, std::size_t) { return 4e-3 * meanOfRanks(g, maxAbs); }},
        LossyCase{"int8", nlohmann::json::object(),
                  [](const auto& g, std::size_t) { return meanOfRanks(g, maxAbs) / 127 / 2; }},
        LossyCase{"qsgd", nlohmann::json::object(),
                  [](const auto& g, std::size_t) { return meanOfRanks(g, l2) / 16; }},
        LossyCase{
            "qsgd", {{"levels", 1}}, [](const auto& g, std::size_t) { return meanOfRanks(g, l2); }},
        LossyCase{"signsgd", nlohmann::json::object(),
                  [](const auto& g, std::size_t i) {
                    double s = 0.0;  // |sign * mean|g| - g| <= mean|g| + |g|
                    for (const auto& x : g) {
                      double l1 = 0.0;
                      for (float v : x) l1 += std::fabs(v);
                      s += l1 / x.size() + std::fabs(x[i]);
                    }
                    return s / g.size();
                  }}),
    [](const auto& info) { return info.param.codec + std::to_string(info.index); });

struct TrackCase {
  std::string codec;
  nlohmann::json params;
};

class CodecExchangeTracking : public ::testing::TestWithParam<TrackCase> {};

// With error feedback, sum_t output_t + mean_r residual_r == sum_t mean_r g_r,t:
// nothing is lost, only delayed; and the residual stays bounded.
TEST_P(CodecExchangeTracking, RunningSumOfOutputsTracksRunningSumOfInputs) {
  const TrackCase& c = GetParam();
  const std::size_t n = 1001;
  for (int world = 1; world <= 4; world += 3) {
    auto ranks = makeRanks(c.codec, c.params, n, world);
    std::vector<double> inputs(n, 0.0), outputs(n, 0.0);
    double maxResidual = 0.0;
    const int steps = 60;
    for (int step = 0; step < steps; ++step) {
      const auto g = gradients(world, n, 1000 + step);
      const auto out = runStep(ranks, g, step);
      expectSameOnEveryRank(out, c.codec);
      const auto mean = meanOf(g);
      std::vector<std::vector<float>> residuals;
      for (auto& r : ranks) residuals.push_back(residualOf(*r));
      const auto meanResidual = meanOf(residuals);
      for (std::size_t i = 0; i < n; ++i) {
        inputs[i] += mean[i];
        outputs[i] += out[0][i];
        maxResidual = std::max(maxResidual, std::fabs(meanResidual[i]));
        ASSERT_NEAR(outputs[i] + meanResidual[i], inputs[i], 2e-4 * (step + 1))
            << c.codec << " world " << world << " step " << step << " i " << i;
      }
    }
    // The residual does not grow without bound (inputs are N(0, 1) / step).
    EXPECT_LT(maxResidual, 0.5 * steps) << c.codec;
  }
}

INSTANTIATE_TEST_SUITE_P(Codecs, CodecExchangeTracking,
                         ::testing::Values(TrackCase{"topk", {{"density", 0.05}}},
                                           TrackCase{"randomk", {{"density", 0.05}}},
                                           TrackCase{"signsgd", nlohmann::json::object()},
                                           TrackCase{"qsgd", {{"error_feedback", true}}},
                                           TrackCase{"int8", {{"error_feedback", true}}},
                                           TrackCase{"fp16", {{"error_feedback", true}}},
                                           TrackCase{"powersgd", nlohmann::json::object()},
                                           TrackCase{"powersgd", {{"rank", 1}, {"rows", 7}}}),
                         [](const auto& info) {
                           return info.param.codec + std::to_string(info.index);
                         });

// Rank-r inputs sharing a row space (as consecutive gradients of a layer
// roughly do): the mean of M = g + e is rank <= r, and after one warm-up step
// (Q then spans the row space) PowerSGD reconstructs it up to float rounding,
// leaving nothing in the mean residual. The first step, from a random Q, is only as good as
// M Q is conditioned; what it misses is sent at the next step.
TEST(CodecExchangePowerSgd, ReconstructsARankRMeanAfterWarmUp) {
  for (int world = 1; world <= 4; ++world) {
    // Sizes that fill the matrix: a partial last row would break the rank.
    for (auto [n, rank, rows] : {std::tuple{std::size_t{1024}, 2, 0},
                                 {std::size_t{1001}, 2, 7},
                                 {std::size_t{4096}, 3, 64},
                                 {std::size_t{1}, 2, 0},
                                 {std::size_t{30}, 1, 5}}) {
      const MatrixShape shape = chooseShape(n, rows);
      const auto v = randomVector(shape.cols * rank, 5);
      auto ranks = makeRanks("powersgd", {{"rank", rank}, {"rows", rows}}, n, world);
      for (int step = 0; step < 4; ++step) {
        std::vector<std::vector<float>> g;
        for (int r = 0; r < world; ++r) {
          const auto u = randomVector(shape.rows * rank, 100 * step + r);
          std::vector<float> m(n);
          multiplyPQt(u.data(), v.data(), n, shape, rank, m.data());
          g.push_back(m);
        }
        std::vector<std::vector<float>> m = g;  // M = g + e on every rank
        for (int r = 0; r < world; ++r) {
          const auto e = residualOf(*ranks[r]);
          for (std::size_t i = 0; i < n; ++i) m[r][i] += e[i];
        }
        const auto out = runStep(ranks, g, step);
        expectSameOnEveryRank(out, "powersgd");
        const auto mean = meanOf(m);
        double scale = 0.0;
        for (double x : mean) scale = std::max(scale, std::fabs(x));
        const double tolerance = (step == 0 ? 1e-2 : 1e-5) * scale + 1e-6;
        for (std::size_t i = 0; i < n; ++i) {
          ASSERT_NEAR(out[0][i], mean[i], tolerance)
              << "world " << world << " n " << n << " step " << step << " i " << i;
        }
        if (step > 0) {
          // Each rank's residual is its M minus the shared approximation, so
          // it also holds the rank's deviation from the mean; the mean of the
          // residuals is what the output missed: nothing, here.
          std::vector<std::vector<float>> residuals;
          for (auto& r : ranks) residuals.push_back(residualOf(*r));
          for (double e : meanOf(residuals)) ASSERT_NEAR(e, 0.0, tolerance);
        }
      }
      EXPECT_EQ(ranks[0]->bytesSent(),
                4 * (shape.rows + shape.cols) *
                    std::min<std::size_t>({std::size_t(rank), shape.rows, shape.cols}));
    }
  }
}

TEST(CodecExchangePowerSgd, TwoAllreduceRoundsOfFactorSize) {
  auto ranks = makeRanks("powersgd", {{"rank", 2}}, 1001, 2);  // 32 x 32 (cols = ceil(sqrt))
  StepInfo info;
  info.worldSize = 2;
  const auto g = randomVector(1001, 1);
  ExchangeRequest first = ranks[0]->begin(testing::viewOf(g), info);
  EXPECT_EQ(first.op, ExchangeOp::kAllreduceSum);
  EXPECT_EQ(first.floats.size(), 32u * 2);
  ExchangeResult r1;
  r1.summed = first.floats;
  auto second = ranks[0]->advance(std::move(r1));
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->floats.size(), 32u * 2);
  ExchangeResult r2;
  r2.summed = second->floats;
  EXPECT_FALSE(ranks[0]->advance(std::move(r2)).has_value());
  EXPECT_EQ(ranks[0]->bytesSent(), 4u * (32 + 32) * 2);
}

TEST(CodecExchangePowerSgd, ZeroGradientsGiveZerosAndKeepTheWarmStart) {
  auto ranks = makeRanks("powersgd", nlohmann::json::object(), 100, 2);
  const std::vector<std::vector<float>> zeros(2, std::vector<float>(100, 0.0f));
  for (int step = 0; step < 3; ++step) {
    const auto out = runStep(ranks, zeros, step);
    for (float x : out[0]) ASSERT_EQ(x, 0.0f);
  }
  // A rank-1 gradient after zero steps is still captured.
  const MatrixShape shape = chooseShape(100);
  const auto u = randomVector(shape.rows, 1), v = randomVector(shape.cols, 2);
  std::vector<float> m(100);
  multiplyPQt(u.data(), v.data(), 100, shape, 1, m.data());
  const auto out = runStep(ranks, {m, m}, 3);
  for (std::size_t i = 0; i < 100; ++i) ASSERT_NEAR(out[0][i], m[i], 1e-4);
}

TEST(CodecExchangePowerSgd, RejectsMalformedSums) {
  auto c = testing::makeBaseline("powersgd", nlohmann::json::object(), 100);
  const auto g = randomVector(100, 1);
  auto request = c->begin(testing::viewOf(g), StepInfo{});
  ExchangeResult shortSum;
  shortSum.summed.assign(request.floats.size() - 1, 0.0f);
  EXPECT_THROW(c->advance(std::move(shortSum)), std::invalid_argument);
  c->begin(testing::viewOf(g), StepInfo{});
  ExchangeResult nan;
  nan.summed.assign(request.floats.size(), std::nanf(""));
  EXPECT_THROW(c->advance(std::move(nan)), PayloadError);
}

TEST(CodecExchangePowerSgd, EmptyAndSingleElementBuffers) {
  auto empty = makeRanks("powersgd", nlohmann::json::object(), 0, 3);
  EXPECT_TRUE(runStep(empty, std::vector<std::vector<float>>(3))[0].empty());
  EXPECT_EQ(empty[0]->bytesSent(), 0u);
  auto one = makeRanks("powersgd", nlohmann::json::object(), 1, 2);
  const auto out = runStep(one, {{3.0f}, {-1.0f}});
  EXPECT_NEAR(out[0][0], 1.0f, 1e-6);  // a 1 x 1 matrix is rank 1: exact
}

TEST(CodecExchange, AllreduceCodecsTakeHalfAndBFloat16Gradients) {
  const auto g = randomVector(1001, 8);
  std::vector<std::uint16_t> h(g.size()), b(g.size());
  std::vector<float> hf(g.size()), bf(g.size());
  for (std::size_t i = 0; i < g.size(); ++i) {
    h[i] = floatToHalf(g[i]);
    b[i] = floatToBFloat16(g[i]);
    hf[i] = halfToFloat(h[i]);
    bf[i] = bfloat16ToFloat(b[i]);
  }
  for (const char* name : {"none", "powersgd"}) {
    for (auto [raw, dtype, asFloat] :
         {std::tuple{h.data(), DType::kFloat16, &hf}, {b.data(), DType::kBFloat16, &bf}}) {
      auto a = makeBaseline(name, nlohmann::json::object(), g.size());
      auto c = makeBaseline(name, nlohmann::json::object(), g.size());
      EXPECT_EQ(a->begin({raw, g.size(), dtype}, StepInfo{}).floats,
                c->begin(viewOf(*asFloat), StepInfo{}).floats)
          << name << " " << dtypeName(dtype);
    }
  }
}

TEST(CodecExchange, GatherCodecsRejectACorruptPeerPayload) {
  for (const char* name : {"fp16", "topk", "randomk", "qsgd", "signsgd", "int8"}) {
    auto ranks = makeRanks(name, nlohmann::json::object(), 64, 2);
    const auto g = gradients(2, 64, 9);
    StepInfo info;
    info.worldSize = 2;
    auto a = ranks[0]->begin(testing::viewOf(g[0]), info);
    info.rank = 1;
    auto b = ranks[1]->begin(testing::viewOf(g[1]), info);
    b.bytes[b.bytes.size() / 2] ^= 0x10;
    ExchangeResult result;
    result.gathered = {a.bytes, b.bytes};
    EXPECT_THROW(ranks[0]->advance(std::move(result)), PayloadError) << name;
  }
}

}  // namespace
}  // namespace hearth::compress
