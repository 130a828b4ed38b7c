// Every allgather codec's payload decodes (through the generic wire-format
// decoder) to exactly the values the codec means to send.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <tuple>
#include <vector>

#include "codec_common.h"
#include "codec_harness.h"
#include "hearth/compress/payload.h"

namespace hearth::compress {
namespace {

using namespace testing;  // NOLINT: the codec test helpers

const std::size_t kSizes[] = {0, 1, 2, 7, 1001, std::size_t{1} << 20};

DecodedPayload encodeAndDecode(const std::string& codec, const nlohmann::json& params,
                               const std::vector<float>& g) {
  auto c = makeBaseline(codec, params, g.size());
  const auto bytes = encodeAlone(*c, g);
  EXPECT_EQ(c->bytesSent(), bytes.size());
  return decodePayload(bytes.data(), bytes.size(), g.size());
}

// Reference top-k: sort by magnitude (ties: lower index first), keep k, sort by index.
std::vector<std::uint32_t> referenceTopK(const std::vector<float>& g, std::size_t k) {
  std::vector<std::uint32_t> order(g.size());
  std::iota(order.begin(), order.end(), 0u);
  std::stable_sort(order.begin(), order.end(),
                   [&](auto a, auto b) { return std::fabs(g[a]) > std::fabs(g[b]); });
  order.resize(k);
  std::sort(order.begin(), order.end());
  return order;
}

TEST(CodecRoundTrip, TopKSendsTheLargestMagnitudes) {
  for (std::size_t n : kSizes) {
    const auto g = randomVector(n, n + 1);
    for (double density : {0.0, 0.001, 0.01, 0.5, 0.999, 1.0}) {
      const std::size_t k = sparseCount(n, density, -1);
      const auto expected = referenceTopK(g, k);
      for (const char* type : {"fp32", "fp16", "bf16"}) {
        const auto d = encodeAndDecode("topk", {{"density", density}, {"value_type", type}}, g);
        EXPECT_EQ(d.header.count, k) << n << " " << density;
        EXPECT_EQ(d.header.codec, CodecId::kTopK);
        if (k == n) {
          EXPECT_EQ(d.header.indexEncoding, IndexEncoding::kDense) << "everything sent: dense";
          EXPECT_TRUE(d.indices.empty());
        } else {
          ASSERT_EQ(d.indices, expected) << n << " " << density;
        }
        const ValueType vt = std::string(type) == "fp16"   ? ValueType::kF16
                             : std::string(type) == "bf16" ? ValueType::kBF16
                                                           : ValueType::kF32;
        for (std::size_t j = 0; j < d.values.size(); ++j) {
          const std::size_t i = d.indices.empty() ? j : d.indices[j];
          ASSERT_EQ(d.values[j], roundToValueType(g[i], vt)) << n << " " << type << " " << j;
        }
      }
    }
  }
}

TEST(CodecRoundTrip, TopKTiesGoToTheLowestIndexAndKIsExact) {
  const std::vector<float> g = {1, -2, 2, 0, -2, 2, 1};
  const auto d = encodeAndDecode("topk", {{"k", 3}}, g);
  EXPECT_EQ(d.indices, (std::vector<std::uint32_t>{1, 2, 4}));
  EXPECT_EQ(d.values, (std::vector<float>{-2, 2, -2}));
  const auto all = encodeAndDecode("topk", {{"k", 100}}, g);  // k >= numel: everything
  EXPECT_EQ(all.values, g);
}

TEST(CodecRoundTrip, RandomKSendsKDistinctCoordinatesVerbatim) {
  for (std::size_t n : kSizes) {
    const auto g = randomVector(n, n + 2);
    for (double density : {0.0, 0.001, 0.1, 0.7, 1.0}) {
      const auto d = encodeAndDecode("randomk", {{"density", density}}, g);
      const std::size_t k = sparseCount(n, density, -1);
      ASSERT_EQ(d.header.count, k);
      for (std::size_t j = 0; j < d.values.size(); ++j) {
        const std::size_t i = d.indices.empty() ? j : d.indices[j];
        ASSERT_EQ(d.values[j], g[i]);  // the decoder already checked order and range
      }
    }
  }
}

TEST(CodecRoundTrip, Fp16SendsEveryValueAsHalf) {
  for (std::size_t n : kSizes) {
    auto g = randomVector(n, n + 3);
    if (n > 2) g[1] = 1e6f, g[2] = -1e6f;  // saturates instead of overflowing
    const auto d = encodeAndDecode("fp16", nlohmann::json::object(), g);
    ASSERT_EQ(d.header.valueType, ValueType::kF16);
    ASSERT_EQ(d.values.size(), n);
    for (std::size_t i = 0; i < n; ++i) {
      ASSERT_EQ(d.values[i], halfToFloat(floatToHalf(std::clamp(g[i], -65504.0f, 65504.0f))));
    }
  }
}

TEST(CodecRoundTrip, Int8SendsRoundedLevelsTimesMaxOver127) {
  for (std::size_t n : kSizes) {
    const auto g = randomVector(n, n + 4);
    const auto d = encodeAndDecode("int8", nlohmann::json::object(), g);
    ASSERT_EQ(d.header.valueType, ValueType::kI8);
    float maxAbs = 0.0f;
    for (float x : g) maxAbs = std::max(maxAbs, std::fabs(x));
    const float scale = maxAbs / 127.0f;
    ASSERT_EQ(d.scalars.at(0), scale);
    for (std::size_t i = 0; i < n; ++i) {
      ASSERT_EQ(d.values[i], std::nearbyint(g[i] / scale) * scale) << i;
    }
  }
}

TEST(CodecRoundTrip, QsgdSendsLevelsInRangeAroundTheValue) {
  for (int levels : {1, 4, 16, 127}) {
    for (std::size_t n : kSizes) {
      const auto g = randomVector(n, n + 5);
      const auto d = encodeAndDecode("qsgd", {{"levels", levels}}, g);
      ASSERT_EQ(d.header.valueType, ValueType::kI8);
      double sumSquares = 0.0;
      for (float x : g) sumSquares += double(x) * x;
      const double norm = std::sqrt(sumSquares);
      const float scale = static_cast<float>(norm / levels);
      ASSERT_EQ(d.scalars, (std::vector<float>{scale, float(norm), float(levels)}));
      for (std::size_t i = 0; i < n; ++i) {
        const float level = d.values[i] / scale;
        ASSERT_NEAR(level, std::nearbyint(level), 1e-4);
        ASSERT_LE(std::fabs(level), levels);
        const double exact = std::fabs(double(g[i])) * levels / norm;
        ASSERT_LT(std::fabs(std::fabs(level) - exact), 1.0 + 1e-6) << i;
        if (level != 0.0f) {
          ASSERT_EQ(std::signbit(level), std::signbit(g[i]));
        }
      }
    }
  }
}

TEST(CodecRoundTrip, SignSgdSendsSignsTimesMeanMagnitude) {
  for (std::size_t n : kSizes) {
    auto g = randomVector(n, n + 6);
    if (n > 1) g[0] = 0.0f;  // zero counts as positive
    const auto d = encodeAndDecode("signsgd", nlohmann::json::object(), g);
    ASSERT_EQ(d.header.valueType, ValueType::kSignBits);
    double l1 = 0.0;
    for (float x : g) l1 += std::fabs(double(x));
    const float scale = n == 0 ? 0.0f : static_cast<float>(l1 / n);
    ASSERT_EQ(d.scalars.at(0), scale);
    for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(d.values[i], g[i] >= 0 ? scale : -scale) << i;
  }
}

TEST(CodecRoundTrip, AllZeroGradientsGiveZerosWithoutNaN) {
  for (const char* name : {"fp16", "topk", "randomk", "qsgd", "signsgd", "int8"}) {
    for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{1001}}) {
      const std::vector<float> g(n, 0.0f);
      const auto d = encodeAndDecode(name, nlohmann::json::object(), g);
      for (float v : d.values) ASSERT_EQ(v, 0.0f) << name;
      for (float s : d.scalars) ASSERT_TRUE(std::isfinite(s)) << name;
    }
  }
}

TEST(CodecRoundTrip, HalfAndBFloat16GradientsEncodeLikeTheirFp32Values) {
  const std::size_t n = 1001;
  const auto g32 = randomVector(n, 77);
  std::vector<std::uint16_t> h(n), b(n);
  std::vector<float> hAsFloat(n), bAsFloat(n);
  for (std::size_t i = 0; i < n; ++i) {
    h[i] = floatToHalf(g32[i]);
    b[i] = floatToBFloat16(g32[i]);
    hAsFloat[i] = halfToFloat(h[i]);
    bAsFloat[i] = bfloat16ToFloat(b[i]);
  }
  for (const char* name : {"fp16", "topk", "randomk", "qsgd", "signsgd", "int8"}) {
    for (auto [raw, dtype, asFloat] : {std::tuple{h.data(), DType::kFloat16, &hAsFloat},
                                       {b.data(), DType::kBFloat16, &bAsFloat}}) {
      auto viaHalf = makeBaseline(name, nlohmann::json::object(), n);
      auto viaFloat = makeBaseline(name, nlohmann::json::object(), n);
      const auto fromRaw = viaHalf->begin({raw, n, dtype}, StepInfo{}).bytes;
      EXPECT_EQ(fromRaw, encodeAlone(*viaFloat, *asFloat)) << name << " " << dtypeName(dtype);
    }
  }
}

}  // namespace
}  // namespace hearth::compress
