// Baseline codecs validate their JSON parameters and their input: every
// error is std::invalid_argument naming the codec and the parameter.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "codec_harness.h"
#include "hearth/compress/registry.h"

namespace hearth::compress {
namespace {

using namespace testing;  // NOLINT: the codec test helpers

const char* const kBaselines[] = {"none", "fp16",    "topk", "randomk",
                                  "qsgd", "signsgd", "int8", "powersgd"};

void expectRejected(const std::string& codec, const nlohmann::json& params,
                    const std::string& parameter) {
  try {
    makeBaseline(codec, params, 100);
    ADD_FAILURE() << codec << " accepted " << params.dump();
  } catch (const std::invalid_argument& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("'" + codec + "'"), std::string::npos) << what;
    EXPECT_NE(what.find("'" + parameter + "'"), std::string::npos) << what;
  }
}

TEST(CodecParams, EveryBaselineRejectsUnknownParameters) {
  for (const char* name : kBaselines) expectRejected(name, {{"bogus", 1}}, "bogus");
}

TEST(CodecParams, OutOfRangeAndMistypedValuesAreRejected) {
  expectRejected("topk", {{"density", 1.5}}, "density");
  expectRejected("topk", {{"density", -0.1}}, "density");
  expectRejected("topk", {{"density", "0.1"}}, "density");
  expectRejected("topk", {{"k", -1}}, "k");
  expectRejected("topk", {{"k", 1.5}}, "k");
  expectRejected("topk", {{"k", 5}, {"density", 0.1}}, "density");
  expectRejected("topk", {{"value_type", "int4"}}, "value_type");
  expectRejected("topk", {{"error_feedback", 1}}, "error_feedback");
  expectRejected("randomk", {{"seed", -1}}, "seed");
  expectRejected("randomk", {{"density", 2}}, "density");
  expectRejected("fp16", {{"error_feedback", "yes"}}, "error_feedback");
  expectRejected("qsgd", {{"levels", 0}}, "levels");
  expectRejected("qsgd", {{"levels", 128}}, "levels");
  expectRejected("int8", {{"error_feedback", nullptr}}, "error_feedback");
  expectRejected("signsgd", {{"error_feedback", 0}}, "error_feedback");
  expectRejected("powersgd", {{"rank", 0}}, "rank");
  expectRejected("powersgd", {{"rows", 101}}, "rows");
  expectRejected("powersgd", {{"seed", -3}}, "seed");
}

TEST(CodecParams, DefaultsAndTheRegistryBuildEveryBaseline) {
  for (const char* name : kBaselines) {
    for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{1001}}) {
      auto c = makeCompressor(name, nlohmann::json::object(), n);
      EXPECT_EQ(c->name(), name);
      EXPECT_EQ(c->numel(), n);
      EXPECT_NO_THROW(makeCompressor(name, nullptr, n)) << name;
    }
  }
}

TEST(CodecParams, WrongGradientSizeOrWorldIsRejectedNamingTheCodec) {
  for (const char* name : kBaselines) {
    auto c = makeBaseline(name, nlohmann::json::object(), 10);
    const std::vector<float> g(11, 1.0f);
    try {
      c->begin({g.data(), g.size(), DType::kFloat32}, StepInfo{});
      ADD_FAILURE() << name << " accepted 11 elements";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
    }
  }
  for (const char* name : {"none", "powersgd"}) {
    auto c = makeBaseline(name, nlohmann::json::object(), 10);
    const std::vector<float> g(10, 1.0f);
    StepInfo bad;
    bad.worldSize = 0;
    EXPECT_THROW(c->begin(testing::viewOf(g), bad), std::invalid_argument) << name;
  }
}

TEST(CodecParams, NonFiniteGradientsAreRejectedByFeedbackCodecs) {
  for (const char* name : {"fp16", "topk", "randomk", "qsgd", "signsgd", "int8", "powersgd"}) {
    auto c = makeBaseline(name, nlohmann::json::object(), 10);
    std::vector<float> g(10, 1.0f);
    g[3] = std::numeric_limits<float>::infinity();
    EXPECT_THROW(c->begin(testing::viewOf(g), StepInfo{}), std::invalid_argument) << name;
  }
}

}  // namespace
}  // namespace hearth::compress
