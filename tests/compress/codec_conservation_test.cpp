// Error feedback conserves: what a codec sends plus its new residual equals
// its old residual plus the gradient, step after step.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "codec_harness.h"
#include "hearth/compress/payload.h"

namespace hearth::compress {
namespace {

using namespace testing;  // NOLINT: the codec test helpers

struct EfCase {
  std::string codec;
  nlohmann::json params;
  bool bitwise;  // sent == p exactly, so the residual update has no rounding
};

// The dense vector a payload decodes to.
std::vector<float> decodeDense(const std::vector<std::uint8_t>& bytes, std::size_t n) {
  std::vector<float> dense(n, 0.0f);
  const DecodedPayload d = decodePayload(bytes.data(), bytes.size(), n);
  for (std::size_t j = 0; j < d.values.size(); ++j) {
    dense[d.indices.empty() ? j : d.indices[j]] = d.values[j];
  }
  return dense;
}

class CodecConservation : public ::testing::TestWithParam<EfCase> {};

TEST_P(CodecConservation, SentPlusResidualIsOldResidualPlusGradient) {
  const EfCase& c = GetParam();
  for (std::size_t n : {std::size_t{1}, std::size_t{2}, std::size_t{1001}, std::size_t{4096}}) {
    auto codec = makeBaseline(c.codec, c.params, n);
    for (int step = 0; step < 25; ++step) {
      // Vary magnitudes over steps so residuals and fresh gradients mix.
      const auto g = randomVector(n, 100 * n + step, step % 3 == 0 ? 10.0f : 0.1f);
      const auto before = residualOf(*codec);
      const auto bytes = encodeAlone(*codec, g, step);
      const auto sent = decodeDense(bytes, n);
      const auto after = residualOf(*codec);
      for (std::size_t i = 0; i < n; ++i) {
        const float p = before[i] + g[i];
        const float total = sent[i] + after[i];
        if (c.bitwise) {
          ASSERT_EQ(total, p) << c.codec << " n=" << n << " step " << step << " i=" << i;
        } else {
          const float bound = 2.5e-7f * std::max(std::fabs(p), std::fabs(sent[i])) + 1e-30f;
          ASSERT_NEAR(total, p, bound) << c.codec << " n=" << n << " step " << step << " i=" << i;
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Codecs, CodecConservation,
    ::testing::Values(EfCase{"topk", {{"density", 0.1}}, true}, EfCase{"topk", {{"k", 3}}, true},
                      EfCase{"topk", {{"density", 0.3}, {"value_type", "fp16"}}, false},
                      EfCase{"topk", {{"density", 0.3}, {"value_type", "bf16"}}, false},
                      EfCase{"randomk", {{"density", 0.1}, {"seed", 7}}, true},
                      EfCase{"randomk", {{"density", 0.5}, {"value_type", "bf16"}}, false},
                      EfCase{"signsgd", nlohmann::json::object(), false},
                      EfCase{"qsgd", {{"error_feedback", true}, {"levels", 4}}, false},
                      EfCase{"int8", {{"error_feedback", true}}, false},
                      EfCase{"fp16", {{"error_feedback", true}}, false}),
    [](const auto& info) { return info.param.codec + std::to_string(info.index); });

TEST(CodecConservationResidual, FeedbackOffKeepsNoResidual) {
  for (const char* name : {"fp16", "qsgd", "int8"}) {
    auto codec = makeBaseline(name, nlohmann::json::object(), 100);
    encodeAlone(*codec, randomVector(100, 1));
    const auto* holder = dynamic_cast<const ResidualHolder*>(codec.get());
    ASSERT_NE(holder, nullptr) << name;
    EXPECT_EQ(holder->residual(), nullptr) << name;
  }
}

TEST(CodecConservationResidual, TopKResidualKeepsExactlyWhatWasNotSent) {
  auto codec = makeBaseline("topk", {{"k", 2}}, 5);
  const std::vector<float> g = {1.0f, -5.0f, 0.5f, 4.0f, -0.25f};
  const auto bytes = encodeAlone(*codec, g);
  const DecodedPayload d = decodePayload(bytes.data(), bytes.size(), 5);
  EXPECT_EQ(d.indices, (std::vector<std::uint32_t>{1, 3}));
  EXPECT_EQ(d.values, (std::vector<float>{-5.0f, 4.0f}));
  EXPECT_EQ(residualOf(*codec), (std::vector<float>{1.0f, 0.0f, 0.5f, 0.0f, -0.25f}));
  // Next step: the residual competes with the new gradient.
  const auto bytes2 = encodeAlone(*codec, {0.0f, 0.0f, 0.6f, 0.0f, 0.0f});
  const DecodedPayload d2 = decodePayload(bytes2.data(), bytes2.size(), 5);
  EXPECT_EQ(d2.indices, (std::vector<std::uint32_t>{0, 2}));
  EXPECT_EQ(d2.values, (std::vector<float>{1.0f, 0.5f + 0.6f}));
}

}  // namespace
}  // namespace hearth::compress
