// IDX files or generated digits, as normalised tensors.
#include "mnist/dataset.h"

#include <ATen/ops/from_blob.h>

#include <filesystem>
#include <vector>

#include "mnist/idx.h"
#include "mnist/synthetic_digits.h"

namespace mnist {
namespace {

constexpr double kMean = 0.1307;  // MNIST's pixel mean and std (of values in [0, 1])
constexpr double kStd = 0.3081;

ImageSet toImageSet(std::vector<std::uint8_t>& pixels, std::vector<std::uint8_t>& labels) {
  const auto n = static_cast<std::int64_t>(labels.size());
  ImageSet set;
  set.images = at::from_blob(pixels.data(), {n, 1, kImageSide, kImageSide}, at::kByte)
                   .to(at::kFloat)
                   .div_(255.0)
                   .sub_(kMean)
                   .div_(kStd);
  set.labels = at::from_blob(labels.data(), {n}, at::kByte).to(at::kLong);
  return set;
}

ImageSet generated(std::size_t count, std::uint64_t seed) {
  auto digits = generateDigits(count, seed);
  return toImageSet(digits.pixels, digits.labels);
}

ImageSet fromIdx(const std::filesystem::path& images, const std::filesystem::path& labels) {
  std::vector<std::uint8_t> pixels, targets;
  readIdxPair(images.string(), labels.string(), pixels, targets);
  return toImageSet(pixels, targets);
}

}  // namespace

MnistData loadData(const DataOptions& options) {
  namespace fs = std::filesystem;
  MnistData data;
  if (!options.dir.empty()) {
    const fs::path dir(options.dir);
    const char* names[] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                           "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};
    std::string missing;
    for (const char* name : names) {
      std::error_code ec;
      if (!fs::is_regular_file(dir / name, ec))
        missing += std::string(missing.empty() ? "" : ", ") + name;
    }
    if (missing.empty()) {
      data.train = fromIdx(dir / names[0], dir / names[1]);
      data.test = fromIdx(dir / names[2], dir / names[3]);
      data.description = "IDX files in " + options.dir;
      return data;
    }
    data.warning = "data.path: no MNIST IDX files in '" + options.dir + "' (missing " + missing +
                   "); training on generated digits instead";
  }
  data.train = generated(options.syntheticTrain, options.seed);
  data.test = generated(options.syntheticTest, options.seed ^ 0x5DEECE66DULL);
  data.description = "generated digits (seed " + std::to_string(options.seed) + ")";
  return data;
}

}  // namespace mnist
