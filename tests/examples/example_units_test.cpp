// In-process tests of the examples' building blocks: the generated text and
// digits, the corpus split and unigram baseline, the IDX reader and the
// per-rank sharding.
#include <gtest/gtest.h>

#include <ATen/ops/cat.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>

#include "charlm/corpus.h"
#include "charlm/lr_schedule.h"
#include "charlm/settings.h"
#include "charlm/text_grammar.h"
#include "common/command_line.h"
#include "mnist/idx.h"
#include "mnist/settings.h"
#include "mnist/sharding.h"
#include "mnist/synthetic_digits.h"
#include "process_runner.h"

namespace hearth::examples_test {
namespace {

TEST(DefaultText, IsDeterministicSizedAndEnglishLike) {
  const auto a = charlm::generateDefaultText(7, 50000);
  EXPECT_EQ(a, charlm::generateDefaultText(7, 50000));
  EXPECT_NE(a, charlm::generateDefaultText(8, 50000));
  EXPECT_GE(a.size(), 50000u);
  EXPECT_LT(a.size(), 51000u);
  EXPECT_NE(a.find(":\n"), std::string::npos);  // speaker lines
  EXPECT_NE(a.find(". "), std::string::npos);
  for (char c : a) EXPECT_TRUE(c == '\n' || (c >= 32 && c < 127)) << int(c);
}

TEST(Corpus, SplitsAndComputesTheUnigramBaseline) {
  const std::string dir = makeTempDir();
  { std::ofstream(dir + "/ab.txt") << std::string(900, 'a') + std::string(100, 'b'); }
  charlm::CorpusOptions options;
  options.path = dir + "/ab.txt";
  options.valFraction = 0.1;
  options.blockSize = 8;
  const auto corpus = charlm::Corpus::load(options);
  EXPECT_EQ(corpus.vocab().size(), 2);
  EXPECT_EQ(corpus.trainChars(), 900);
  EXPECT_EQ(corpus.heldOutChars(), 100);
  // Training split is all 'a' (900 + 1 smoothing) vs 'b' (0 + 1): held-out is all 'b'.
  EXPECT_NEAR(corpus.unigramLoss(), -std::log(1.0 / 902.0), 1e-9);
  const auto batch = corpus.sampleTrainBatch(4, 8);
  EXPECT_EQ(batch.inputs.sizes(), (std::vector<std::int64_t>{4, 8}));
  EXPECT_TRUE(batch.inputs.slice(1, 1, 8).equal(batch.targets.slice(1, 0, 7)));
  const auto heldOut = corpus.heldOutBatches(10, 4, 8);
  ASSERT_EQ(heldOut.size(), 3u);
  EXPECT_EQ(heldOut[2].inputs.size(0), 2);
  EXPECT_THROW(
      [&] {
        auto tooLong = options;
        tooLong.blockSize = 200;
        charlm::Corpus::load(tooLong);
      }(),
      charlm::CorpusError);
  std::filesystem::remove_all(dir);
}

TEST(LrSchedule, WarmsUpThenDecaysToTheFloor) {
  const charlm::LrSchedule s{1.0, 10, 110, 0.1};
  EXPECT_DOUBLE_EQ(charlm::scheduledLearningRate(s, 1), 0.1);
  EXPECT_DOUBLE_EQ(charlm::scheduledLearningRate(s, 10), 1.0);
  EXPECT_NEAR(charlm::scheduledLearningRate(s, 60), 0.55, 1e-12);
  EXPECT_NEAR(charlm::scheduledLearningRate(s, 110), 0.1, 1e-12);
}

TEST(SyntheticDigits, AreDeterministicAndBalanced) {
  const auto a = mnist::generateDigits(100, 3);
  EXPECT_EQ(a.pixels, mnist::generateDigits(100, 3).pixels);
  EXPECT_EQ(a.pixels.size(), 100u * 28 * 28);
  std::vector<int> counts(10, 0);
  for (auto label : a.labels) ++counts.at(label);
  for (int c : counts) EXPECT_EQ(c, 10);
}

TEST(Idx, ReadsWhatWasWrittenAndRejectsTruncation) {
  const std::string dir = makeTempDir();
  auto write32 = [](std::ofstream& out, std::uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) out.put(static_cast<char>((v >> shift) & 0xFF));
  };
  const auto digits = mnist::generateDigits(3, 5);
  {
    std::ofstream images(dir + "/i", std::ios::binary), labels(dir + "/l", std::ios::binary);
    write32(images, mnist::kIdxImagesMagic);
    write32(images, 3);
    write32(images, 28);
    write32(images, 28);
    images.write(reinterpret_cast<const char*>(digits.pixels.data()), 3 * 784);
    write32(labels, mnist::kIdxLabelsMagic);
    write32(labels, 3);
    labels.write(reinterpret_cast<const char*>(digits.labels.data()), 3);
    std::ofstream truncated(dir + "/t", std::ios::binary);
    write32(truncated, mnist::kIdxImagesMagic);
    write32(truncated, 3);
    write32(truncated, 28);
    write32(truncated, 28);
    truncated.write(reinterpret_cast<const char*>(digits.pixels.data()), 784);
  }
  std::vector<std::uint8_t> pixels, labels;
  mnist::readIdxPair(dir + "/i", dir + "/l", pixels, labels);
  EXPECT_EQ(pixels, digits.pixels);
  EXPECT_EQ(labels, digits.labels);
  EXPECT_THROW(mnist::readIdxPair(dir + "/t", dir + "/l", pixels, labels), mnist::IdxError);
  EXPECT_THROW(mnist::readIdxPair(dir + "/l", dir + "/l", pixels, labels), mnist::IdxError);
  std::filesystem::remove_all(dir);
}

TEST(ShardedSampler, RanksTakeDisjointShardsOfEachGlobalBatch) {
  constexpr int kWorld = 3;
  std::vector<mnist::ShardedSampler> samplers;
  for (int r = 0; r < kWorld; ++r) samplers.emplace_back(100, 4, r, kWorld, 9);
  EXPECT_EQ(samplers[0].stepsPerEpoch(), 8);  // 100 / 12, tail dropped
  for (int epoch = 0; epoch < 2; ++epoch) {
    std::set<std::int64_t> seen;
    for (int step = 0; step < 8; ++step) {
      for (auto& sampler : samplers) {
        const auto shard = sampler.shard(epoch, step);
        for (std::int64_t i = 0; i < shard.numel(); ++i) {
          EXPECT_TRUE(seen.insert(shard[i].item<std::int64_t>()).second);
        }
      }
    }
    EXPECT_EQ(seen.size(), 96u);
  }
  EXPECT_FALSE(samplers[0].shard(0, 0).equal(samplers[0].shard(1, 0)));  // reshuffled per epoch
}

// argv for parseCommandLine from string literals.
examples::CommandLine parse(std::vector<std::string> args) {
  const examples::ProgramSpec spec{
      "hearth_test", "A test program.",
      examples::withEngineShorthands({{"--data", "data.path", "Data (data.path)"},
                                      {"--steps", "train.steps", "Steps (train.steps)"}})};
  args.insert(args.begin(), "hearth_test");
  std::vector<char*> argv;
  for (auto& arg : args) argv.push_back(arg.data());
  return examples::parseCommandLine(static_cast<int>(argv.size()), argv.data(),
                                    charlm::charlmSchema(), spec);
}

TEST(CommandLine, ShorthandsBecomeTypedOverridesThatWin) {
  const auto commandLine = parse({"--set", "train.steps=5", "--data", "123", "--steps", "7", "--lr",
                                  "0.5", "--seed", "9", "--metrics", "m.jsonl"});
  ASSERT_TRUE(commandLine.config.has_value());
  const auto& config = *commandLine.config;
  EXPECT_EQ(config.getString("data.path"), "123");  // a string, though it looks like a number
  EXPECT_EQ(config.getInt("train.steps"), 7);
  EXPECT_DOUBLE_EQ(config.getFloat("optimizer.params.lr"), 0.5);
  EXPECT_EQ(config.getInt("seed"), 9);
  EXPECT_EQ(config.getString("logging.metrics_file"), "m.jsonl");
}

TEST(CommandLine, UsageErrorsExitWithTwoAndBadValuesThrow) {
  for (const auto& args : std::vector<std::vector<std::string>>{{"--steps", "x"}, {"--bogus"}}) {
    const auto commandLine = parse(args);
    EXPECT_FALSE(commandLine.config.has_value());
    EXPECT_EQ(commandLine.exitCode, 2);
  }
  EXPECT_THROW(parse({"--steps", "0"}), ConfigError);  // train.steps must be >= 1
}

TEST(ExamplesDoc, DocumentsEveryExampleKey) {
  std::ifstream in(HEARTH_DOCS_DIR "/examples.md");
  ASSERT_TRUE(in) << "docs/examples.md is missing";
  const std::string doc((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (const auto& schema : {charlm::charlmSchema(), mnist::mnistSchema()}) {
    for (const auto& key : schema.keys()) {
      const auto section = key.path.substr(0, key.path.find('.'));
      if (section != "model" && section != "data" && section != "train") continue;
      const std::string row = "| `" + key.path + "` | ";
      const std::string value = key.defaultValue.dump();
      EXPECT_TRUE(doc.find(row + value + " |") != std::string::npos ||
                  doc.find(row + "`" + value + "` |") != std::string::npos)
          << key.path << " (default " << key.defaultValue.dump() << ") is not in the key tables";
    }
  }
}

}  // namespace
}  // namespace hearth::examples_test
