#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include "hearth/runtime/config.h"
#include "hearth/runtime/engine.h"
#include "hearth/runtime/engine_schema.h"

namespace hearth {
namespace {

std::string errorOf(const nlohmann::json& doc, const std::vector<std::string>& overrides = {}) {
  try {
    Config::fromJson(engineConfigSchema(), doc, overrides);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(Config, DefaultsFillEveryKey) {
  const auto config = Config::fromJson(engineConfigSchema(), nlohmann::json::object());
  EXPECT_EQ(config.getInt("gradient_accumulation_steps"), 1);
  EXPECT_EQ(config.getString("optimizer.type"), "adamw");
  EXPECT_DOUBLE_EQ(config.getFloat("communication.bucket_cap_mb"), 25.0);
  EXPECT_EQ(config.getFloatList("optimizer.params.betas").size(), 2u);
}

TEST(Config, NestedValuesAndOverrides) {
  nlohmann::json doc = {{"optimizer", {{"type", "sgd"}, {"params", {{"lr", 0.5}}}}},
                        {"gradient_accumulation_steps", 4}};
  const auto config = Config::fromJson(engineConfigSchema(), doc,
                                       {"optimizer.params.lr=0.25", "optimizer.type=adam"});
  EXPECT_DOUBLE_EQ(config.getFloat("optimizer.params.lr"), 0.25);
  EXPECT_EQ(config.getString("optimizer.type"), "adam");
  EXPECT_EQ(config.getInt("gradient_accumulation_steps"), 4);
  EXPECT_EQ(config.effective()["optimizer"]["params"]["lr"], 0.25);
}

TEST(Config, UnknownKeyIsNamedWithSuggestion) {
  const auto message = errorOf({{"optimizer", {{"parms", {{"lr", 1}}}}}});
  EXPECT_NE(message.find("unknown key 'optimizer.parms'"), std::string::npos) << message;
  EXPECT_NE(message.find("did you mean"), std::string::npos) << message;
  const auto misplaced = errorOf({{"lr", 0.1}});
  EXPECT_NE(misplaced.find("'optimizer.params.lr'"), std::string::npos) << misplaced;
}

TEST(Config, WrongTypesAndRangesAreNamed) {
  auto message = errorOf({{"train_micro_batch_size_per_gpu", "8"}});
  EXPECT_NE(message.find("'train_micro_batch_size_per_gpu' must be an integer"), std::string::npos)
      << message;
  message = errorOf({{"gradient_accumulation_steps", 0}});
  EXPECT_NE(message.find("must be >= 1"), std::string::npos) << message;
  message = errorOf({{"optimizer", {{"type", "lamb"}}}});
  EXPECT_NE(message.find("must be one of {sgd, adam, adamw}"), std::string::npos) << message;
  message = errorOf({{"optimizer", 3}});
  EXPECT_NE(message.find("is a section"), std::string::npos) << message;
  message = errorOf({{"optimizer", {{"params", {{"betas", {0.9}}}}}}});
  EXPECT_NE(message.find("must have 2 elements"), std::string::npos) << message;
  message = errorOf(nlohmann::json::object(), {"seed"});
  EXPECT_NE(message.find("key=value"), std::string::npos) << message;
  message = errorOf(nlohmann::json::object(), {"bogus=1"});
  EXPECT_NE(message.find("unknown key 'bogus'"), std::string::npos) << message;
}

TEST(Config, ErrorsAreOneLine) {
  for (const auto& message : {errorOf({{"x", 1}}), errorOf({{"seed", 1.5}}),
                              errorOf({{"communication", {{"timeout_s", -1}}}})}) {
    ASSERT_FALSE(message.empty());
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  }
}

TEST(Config, FileErrors) {
  EXPECT_THROW(Config::load(engineConfigSchema(), "/nonexistent/hearth.json"), ConfigError);
  const std::string path = ::testing::TempDir() + "/bad.json";
  std::ofstream(path) << "{ \"seed\": ";
  try {
    Config::load(engineConfigSchema(), path);
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("not valid JSON"), std::string::npos) << e.what();
  }
  std::remove(path.c_str());
}

TEST(Config, WorldChecks) {
  auto config = Config::fromJson(engineConfigSchema(), {{"world_size", 4}});
  EXPECT_NO_THROW(checkConfigAgainstWorld(config, 4));
  try {
    checkConfigAgainstWorld(config, 2);
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("world_size is 4"), std::string::npos) << e.what();
  }
  config = Config::fromJson(engineConfigSchema(),
                            {{"train_batch_size", 64}, {"train_micro_batch_size_per_gpu", 8}});
  EXPECT_NO_THROW(checkConfigAgainstWorld(config, 8));
  EXPECT_THROW(checkConfigAgainstWorld(config, 2), ConfigError);
}

TEST(Config, SetDefaultReplacesTheDefault) {
  auto schema = engineConfigSchema();
  schema.setDefault("train_micro_batch_size_per_gpu", 32).setDefault("optimizer.params.lr", 2e-3);
  EXPECT_EQ(schema.find("train_micro_batch_size_per_gpu")->defaultValue, 32);
  const auto config = Config::fromJson(schema, nlohmann::json::object());
  EXPECT_EQ(config.getInt("train_micro_batch_size_per_gpu"), 32);
  EXPECT_DOUBLE_EQ(config.getFloat("optimizer.params.lr"), 2e-3);
  // A float key takes an integer default as a number, like a configured value.
  schema.setDefault("gradient_clipping", 1);
  EXPECT_DOUBLE_EQ(Config::fromJson(schema, nlohmann::json::object()).getFloat("gradient_clipping"),
                   1.0);
}

TEST(Config, SetDefaultValidatesAndNamesTheKey) {
  auto schema = engineConfigSchema();
  auto errorOfSetDefault = [&](const std::string& path, const nlohmann::json& value) {
    try {
      schema.setDefault(path, value);
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  auto message = errorOfSetDefault("train_micro_batch_size_per_gpu", "8");
  EXPECT_NE(message.find("'train_micro_batch_size_per_gpu' must be an integer"), std::string::npos)
      << message;
  message = errorOfSetDefault("gradient_accumulation_steps", 0);
  EXPECT_NE(message.find("'gradient_accumulation_steps' must be >= 1"), std::string::npos)
      << message;
  message = errorOfSetDefault("optimizer.type", "lamb");
  EXPECT_NE(message.find("'optimizer.type' must be one of"), std::string::npos) << message;
  message = errorOfSetDefault("optimizer.parms.lr", 0.1);
  EXPECT_NE(message.find("unknown key 'optimizer.parms.lr'"), std::string::npos) << message;
  EXPECT_NE(message.find("did you mean 'optimizer.params.lr'"), std::string::npos) << message;
  // A rejected value leaves the old default in place.
  EXPECT_EQ(schema.find("gradient_accumulation_steps")->defaultValue, 1);
  EXPECT_EQ(schema.find("optimizer.type")->defaultValue, "adamw");
}

TEST(Config, MarkdownListsEveryKey) {
  const auto schema = engineConfigSchema();
  const auto markdown = schema.toMarkdown();
  for (const auto& key : schema.keys()) {
    EXPECT_NE(markdown.find("`" + key.path + "`"), std::string::npos) << key.path;
  }
}

TEST(Config, ObjectKeysTakeWholeObjectsAndNestedOverrides) {
  auto config = Config::fromJson(
      engineConfigSchema(), {{"compression", {{"codec", "dgc"}, {"params", {{"density", 0.01}}}}}},
      {"compression.params.momentum=0.9", "compression.params.value_type=fp16"});
  const auto params = config.getObject("compression.params");
  EXPECT_DOUBLE_EQ(params["density"].get<double>(), 0.01);
  EXPECT_DOUBLE_EQ(params["momentum"].get<double>(), 0.9);
  EXPECT_EQ(params["value_type"], "fp16");
  config = Config::fromJson(engineConfigSchema(), nlohmann::json::object(),
                            {R"(compression.params={"density":0.5})"});
  EXPECT_DOUBLE_EQ(config.getObject("compression.params")["density"].get<double>(), 0.5);
  EXPECT_NE(errorOf({{"compression", {{"params", 3}}}}).find("must be a JSON object"),
            std::string::npos);
  EXPECT_NE(errorOf({{"compression", {{"codec", "zip"}}}}).find("must be one of"),
            std::string::npos);
  EXPECT_NE(errorOf(nlohmann::json::object(), {"compression.nope.x=1"}).find("unknown key"),
            std::string::npos);
}

}  // namespace
}  // namespace hearth

namespace hearth {
namespace {

// With dgc and SGD, gradient_clipping becomes DGC's local clipping and the
// Engine's global clipping of the exchanged update is off (docs/dgc.md);
// other codecs and optimizers keep global clipping.
TEST(EngineOptionsFromConfig, DgcWithSgdMovesClippingIntoTheCodec) {
  auto configFor = [](const std::string& codec, const std::string& optimizer) {
    return Config::fromJson(engineConfigSchema(), {{"gradient_clipping", 0.5},
                                                   {"optimizer", {{"type", optimizer}}},
                                                   {"compression", {{"codec", codec}}}});
  };
  const EngineOptions dgcSgd = EngineOptions::fromConfig(configFor("dgc", "sgd"));
  EXPECT_EQ(dgcSgd.gradientClipping, 0.0);
  EXPECT_EQ(dgcSgd.codecParams.at("clip_norm").get<double>(), 0.5);
  const EngineOptions dgcAdam = EngineOptions::fromConfig(configFor("dgc", "adamw"));
  EXPECT_EQ(dgcAdam.gradientClipping, 0.5);
  EXPECT_FALSE(dgcAdam.codecParams.contains("clip_norm"));
  EXPECT_EQ(EngineOptions::fromConfig(configFor("none", "sgd")).gradientClipping, 0.5);
  // An explicit clip_norm wins.
  const EngineOptions explicitNorm = EngineOptions::fromConfig(
      Config::fromJson(engineConfigSchema(),
                       {{"gradient_clipping", 0.5},
                        {"optimizer", {{"type", "sgd"}}},
                        {"compression", {{"codec", "dgc"}, {"params", {{"clip_norm", 2.0}}}}}}));
  EXPECT_EQ(explicitNorm.codecParams.at("clip_norm").get<double>(), 2.0);
  EXPECT_EQ(explicitNorm.gradientClipping, 0.0);
}

}  // namespace
}  // namespace hearth
