// Tests of the "dgc" codec end to end: parameters (defaults, rejection naming
// the parameter), a full exchange between simulated ranks against the mean of
// what each rank selected, value types and wire sizes.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <optional>
#include <random>

#include "dgc.h"
#include "dgc_test_util.h"
#include "factories.h"
#include "hearth/compress/registry.h"

namespace hearth::compress {
namespace {

std::vector<float> gradient(std::size_t n, std::uint32_t seed) {
  return testing::normalValues(n, seed);
}

TEST(DgcCodec, DefaultsAndRegistry) {
  auto c = makeCompressor("dgc", nlohmann::json::object(), 1u << 16);
  EXPECT_EQ(c->name(), "dgc");
  EXPECT_TRUE(c->ownsMomentum());
  const auto o = parseDgcOptions(nlohmann::json::object());
  EXPECT_EQ(o.density, 0.001);
  EXPECT_EQ(o.momentum, 0.9);
  EXPECT_FALSE(o.nesterov);
  EXPECT_EQ(o.clipNorm, 0.0);
  EXPECT_EQ(o.sampleRatio, 0.01);
  EXPECT_EQ(o.threshold.lowerBound, 0.8);
  EXPECT_EQ(o.threshold.upperBound, 1.3);
  EXPECT_EQ(o.threshold.maxAdaptationIters, 10);
  EXPECT_FALSE(o.exact);
  EXPECT_EQ(o.warmupUnit, WarmupUnit::kSteps);
  EXPECT_EQ(o.warmupPeriods, 4);
  EXPECT_EQ(o.warmupPeriod, 100.0);
  EXPECT_TRUE(o.warmupDensities.empty());
  EXPECT_EQ(o.minNumel, 4096u);
  EXPECT_EQ(o.valueType, ValueType::kF32);
  EXPECT_FALSE(o.zstd);
  EXPECT_FALSE(makeDgcCompressor({{"momentum", 0.0}}, 100)->ownsMomentum());
}

TEST(DgcCodec, ParsesEveryParameter) {
  const auto o = parseDgcOptions({{"density", 0.01},
                                  {"momentum", 0.5},
                                  {"nesterov", true},
                                  {"clip_norm", 2.5},
                                  {"sample_ratio", 0.001},
                                  {"lower_bound", 0.7},
                                  {"upper_bound", 1.5},
                                  {"max_adaptation_iters", 3},
                                  {"exact", true},
                                  {"warmup_unit", "steps"},
                                  {"warmup_periods", 2},
                                  {"warmup_period", 500},
                                  {"warmup_densities", {0.5, 0.1}},
                                  {"min_numel", 0},
                                  {"value_type", "bf16"},
                                  {"zstd", true},
                                  {"seed", 42}});
  EXPECT_EQ(o.density, 0.01);
  EXPECT_EQ(o.momentum, 0.5);
  EXPECT_TRUE(o.nesterov);
  EXPECT_EQ(o.clipNorm, 2.5);
  EXPECT_EQ(o.sampleRatio, 0.001);
  EXPECT_EQ(o.threshold.lowerBound, 0.7);
  EXPECT_EQ(o.threshold.upperBound, 1.5);
  EXPECT_EQ(o.threshold.maxAdaptationIters, 3);
  EXPECT_TRUE(o.exact);
  EXPECT_EQ(o.warmupUnit, WarmupUnit::kSteps);
  EXPECT_EQ(o.warmupPeriods, 2);
  EXPECT_EQ(o.warmupPeriod, 500.0);
  EXPECT_EQ(o.warmupDensities, (std::vector<double>{0.5, 0.1}));
  EXPECT_EQ(o.minNumel, 0u);
  EXPECT_EQ(o.valueType, ValueType::kBF16);
  EXPECT_TRUE(o.zstd);
  EXPECT_EQ(o.seed, 42u);
}

TEST(DgcCodec, BadParametersAreRejectedByName) {
  const std::vector<std::pair<nlohmann::json, std::string>> cases = {
      {{{"densty", 0.01}}, "densty"},
      {{{"density", 0}}, "density"},
      {{{"density", 1.5}}, "density"},
      {{{"density", -0.1}}, "density"},
      {{{"density", "0.1"}}, "density"},
      {{{"momentum", 1.0}}, "momentum"},
      {{{"momentum", 0.0}, {"nesterov", true}}, "nesterov"},
      {{{"clip_norm", -1}}, "clip_norm"},
      {{{"sample_ratio", 0}}, "sample_ratio"},
      {{{"sample_ratio", 2}}, "sample_ratio"},
      {{{"lower_bound", 0}}, "lower_bound"},
      {{{"lower_bound", 1.2}}, "lower_bound"},
      {{{"upper_bound", 0.9}}, "upper_bound"},
      {{{"max_adaptation_iters", -1}}, "max_adaptation_iters"},
      {{{"max_adaptation_iters", 1.5}}, "max_adaptation_iters"},
      {{{"warmup_unit", "days"}}, "warmup_unit"},
      {{{"warmup_periods", -1}}, "warmup_periods"},
      {{{"warmup_period", 0}}, "warmup_period"},
      {{{"warmup_densities", {0.5, 0.0}}}, "warmup_densities"},
      {{{"warmup_densities", {0.5, 2.0}}}, "warmup_densities"},
      {{{"warmup_densities", nlohmann::json::array()}}, "warmup_densities"},
      {{{"min_numel", -5}}, "min_numel"},
      {{{"value_type", "int8"}}, "value_type"},
      {{{"zstd", 1}}, "zstd"},
      {{{"exact", "yes"}}, "exact"},
      {{{"seed", -1}}, "seed"},
  };
  for (const auto& [params, key] : cases) {
    try {
      makeDgcCompressor(params, 1000);
      ADD_FAILURE() << "accepted " << params.dump();
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("'" + key + "'"), std::string::npos)
          << params.dump() << " -> " << e.what();
    }
  }
  EXPECT_THROW(makeDgcCompressor(nlohmann::json::array(), 1000), std::invalid_argument);
}

// Runs one exchange step over simulated ranks; returns each rank's output.
std::vector<std::vector<float>> exchange(std::vector<std::unique_ptr<DgcCompressor>>& ranks,
                                         const std::vector<std::vector<float>>& grads,
                                         std::int64_t step) {
  const int world = static_cast<int>(ranks.size());
  ExchangeResult gathered;
  for (int r = 0; r < world; ++r) {
    StepInfo info;
    info.step = step;
    info.rank = r;
    info.worldSize = world;
    ExchangeRequest request = ranks[r]->begin(testing::view(grads[r]), info);
    EXPECT_EQ(request.op, ExchangeOp::kAllgatherBytes);
    EXPECT_EQ(ranks[r]->bytesSent(), request.bytes.size());
    gathered.gathered.push_back(std::move(request.bytes));
  }
  std::vector<std::vector<float>> out(world);
  for (int r = 0; r < world; ++r) {
    ExchangeResult copy = gathered;
    EXPECT_FALSE(ranks[r]->advance(std::move(copy)).has_value());
    out[r].resize(grads[r].size());
    ranks[r]->finish(out[r].data());
  }
  return out;
}

TEST(DgcCodec, ExchangeAveragesWhatEachRankSelected) {
  for (int world : {2, 3, 4}) {
    for (const char* valueType : {"fp32", "fp16", "bf16"}) {
      for (std::size_t n : {std::size_t{1000}, std::size_t{100003}}) {  // dense and sparse
        const nlohmann::json params = {{"density", 0.002},
                                       {"warmup_unit", "steps"},
                                       {"warmup_period", 2},
                                       {"value_type", valueType},
                                       {"zstd", world == 3}};
        std::vector<std::unique_ptr<DgcCompressor>> ranks;
        for (int r = 0; r < world; ++r) {
          ranks.push_back(std::make_unique<DgcCompressor>(parseDgcOptions(params), n));
        }
        for (int step = 0; step < 12; ++step) {
          std::vector<std::vector<float>> grads;
          for (int r = 0; r < world; ++r) grads.push_back(gradient(n, 1000 * step + r));
          const auto out = exchange(ranks, grads, step);
          std::vector<float> expected(n, 0.0f);
          const float scale = 1.0f / static_cast<float>(world);
          for (int r = 0; r < world; ++r) {
            const auto& sel = ranks[r]->sparsifier().selection();
            EXPECT_EQ(sel.dense, n < 4096);
            for (std::size_t j = 0; j < sel.size(); ++j) {
              expected[sel.indices[j]] += scale * sel.values[j];
            }
          }
          for (int r = 0; r < world; ++r) {
            for (std::size_t i = 0; i < n; ++i) {
              ASSERT_FLOAT_EQ(out[r][i], expected[i])
                  << "world " << world << " " << valueType << " n " << n << " step " << step;
            }
          }
        }
      }
    }
  }
}

TEST(DgcCodec, WireSizeAtTargetDensity) {
  const std::size_t n = 1u << 20;
  const auto g = gradient(n, 3);
  const double dense = 4.0 * n;
  for (const char* valueType : {"fp32", "fp16"}) {
    auto c = makeDgcCompressor({{"warmup_periods", 0}, {"value_type", valueType}}, n);
    StepInfo info;
    auto request = c->begin(testing::view(g), info);
    const double ratio = dense / static_cast<double>(request.bytes.size());
    // fp32 + u32 indices is 500x at 0.1%; varint indices and fp16 do better.
    EXPECT_GT(ratio, std::string(valueType) == "fp32" ? 400.0 : 600.0) << valueType;
  }
}

}  // namespace
}  // namespace hearth::compress
