// End-to-end tests of hearth_mnist: generated digits with two workers, the
// IDX reader on tiny generated IDX files, and the fallback and error paths.
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "mnist/synthetic_digits.h"
#include "process_runner.h"

namespace hearth::examples_test {
namespace {

using std::chrono::seconds;

const std::string kMnist = HEARTH_MNIST_PATH;

nlohmann::json finalRecord(const std::string& path) {
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    auto record = nlohmann::json::parse(line);
    if (record.value("event", "") == "final") return record;
  }
  return {};
}

void writeBigEndian32(std::ofstream& out, std::uint32_t value) {
  const unsigned char bytes[4] = {
      static_cast<unsigned char>(value >> 24), static_cast<unsigned char>(value >> 16),
      static_cast<unsigned char>(value >> 8), static_cast<unsigned char>(value)};
  out.write(reinterpret_cast<const char*>(bytes), 4);
}

// Writes an image file (magic 2051, dims n x 28 x 28) and a label file
// (magic 2049, dim n) in the MNIST layout.
void writeIdx(const std::string& imagesPath, const std::string& labelsPath,
              const mnist::DigitImages& digits, std::uint32_t imageMagic = 2051) {
  const auto n = static_cast<std::uint32_t>(digits.labels.size());
  std::ofstream images(imagesPath, std::ios::binary);
  writeBigEndian32(images, imageMagic);
  writeBigEndian32(images, n);
  writeBigEndian32(images, 28);
  writeBigEndian32(images, 28);
  images.write(reinterpret_cast<const char*>(digits.pixels.data()),
               static_cast<std::streamsize>(digits.pixels.size()));
  std::ofstream labels(labelsPath, std::ios::binary);
  writeBigEndian32(labels, 2049);
  writeBigEndian32(labels, n);
  labels.write(reinterpret_cast<const char*>(digits.labels.data()),
               static_cast<std::streamsize>(digits.labels.size()));
}

void writeTinyMnist(const std::string& dir, std::uint32_t trainImageMagic = 2051) {
  writeIdx(dir + "/train-images-idx3-ubyte", dir + "/train-labels-idx1-ubyte",
           mnist::generateDigits(800, 11), trainImageMagic);
  writeIdx(dir + "/t10k-images-idx3-ubyte", dir + "/t10k-labels-idx1-ubyte",
           mnist::generateDigits(200, 12));
}

TEST(MnistExample, TwoWorkersBeatChanceOnGeneratedDigits) {
  const std::string dir = makeTempDir();
  const std::string metrics = dir + "/m.jsonl";
  const auto results =
      runTogether(workerSpecs({kMnist, "--epochs", "1", "--set", "data.synthetic_train=4000",
                               "--set", "data.synthetic_test=1000", "--metrics", metrics},
                              2),
                  seconds(120));
  ASSERT_EQ(results[0].exitCode, 0) << results[0].err;
  ASSERT_EQ(results[1].exitCode, 0) << results[1].err;
  const auto final = finalRecord(metrics);
  ASSERT_FALSE(final.is_null());
  EXPECT_GT(final.at("test_accuracy").get<double>(), 0.6);  // chance is 0.1
  EXPECT_EQ(final.at("world_size").get<int>(), 2);
  EXPECT_EQ(final.at("step").get<int>(), 4000 / 64);
  EXPECT_NE(results[0].err.find("held-out accuracy"), std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST(MnistExample, TrainsOnTinyIdxFiles) {
  const std::string dir = makeTempDir();
  writeTinyMnist(dir);
  const std::string metrics = dir + "/m.jsonl";
  const auto r =
      runProcess({{kMnist, "--data", dir, "--epochs", "6", "--metrics", metrics}}, seconds(120));
  ASSERT_EQ(r.exitCode, 0) << r.err;
  EXPECT_EQ(r.err.find("warning"), std::string::npos) << r.err;
  const auto final = finalRecord(metrics);
  ASSERT_FALSE(final.is_null());
  EXPECT_EQ(final.at("data").get<std::string>(), "IDX files in " + dir);
  EXPECT_EQ(final.at("step").get<int>(), 6 * (800 / 32));
  EXPECT_GT(final.at("test_accuracy").get<double>(), 0.3);  // chance is 0.1
  std::filesystem::remove_all(dir);
}

TEST(MnistExample, MissingIdxFilesFallBackToGeneratedDigitsWithAWarning) {
  const std::string dir = makeTempDir();
  const auto r = runProcess({{kMnist, "--data", dir, "--epochs", "1", "--set",
                              "data.synthetic_train=640", "--set", "data.synthetic_test=100"}},
                            seconds(60));
  EXPECT_EQ(r.exitCode, 0) << r.err;
  EXPECT_NE(r.err.find("warning"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("train-images-idx3-ubyte"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("generated digits"), std::string::npos) << r.err;
  std::filesystem::remove_all(dir);
}

TEST(MnistExample, MalformedIdxFileIsRejected) {
  const std::string dir = makeTempDir();
  writeTinyMnist(dir, /*trainImageMagic=*/2049);
  const auto r = runProcess({{kMnist, "--data", dir}}, seconds(60));
  EXPECT_EQ(r.exitCode, 2) << r.err;
  EXPECT_NE(r.err.find("hearth_mnist: error: data.path: " + dir + "/train-images-idx3-ubyte"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("magic number 2049"), std::string::npos) << r.err;
  std::filesystem::remove_all(dir);
}

TEST(MnistExample, BadConfigIsRejected) {
  const auto r = runProcess({{kMnist, "--set", "train.epochs=0"}}, seconds(60));
  EXPECT_EQ(r.exitCode, 2) << r.err;
  EXPECT_NE(r.err.find("train.epochs"), std::string::npos) << r.err;
  const auto shipped =
      runProcess({{kMnist, "--config", HEARTH_EXAMPLES_CONFIG_DIR "/mnist.json", "--print-config"}},
                 seconds(60));
  EXPECT_EQ(shipped.exitCode, 0) << shipped.err;
}

}  // namespace
}  // namespace hearth::examples_test
