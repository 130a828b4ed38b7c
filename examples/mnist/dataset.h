// mnist/dataset.h — the images the MNIST example trains and tests on.
//
// loadData() reads the four standard IDX files from `dir`
// (train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte,
// t10k-labels-idx1-ubyte). With an empty dir, or when any of those files is
// missing, it generates digits instead (synthetic_digits.h; the missing case
// also sets `warning`, for the caller to print). Present but malformed files
// throw IdxError. Images come back as float [N, 1, 28, 28], scaled to [0, 1]
// and normalised with MNIST's mean and std; labels as int64 [N].
// Pure function of its inputs; thread-safe.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>

namespace mnist {

struct ImageSet {
  at::Tensor images;  // float [N, 1, 28, 28]
  at::Tensor labels;  // int64 [N]
  std::int64_t size() const { return labels.defined() ? labels.size(0) : 0; }
};

struct DataOptions {
  std::string dir;  // empty: generated digits
  std::size_t syntheticTrain = 20000;
  std::size_t syntheticTest = 4000;
  std::uint64_t seed = 1234;
};

struct MnistData {
  ImageSet train;
  ImageSet test;
  std::string description;  // "IDX files in DIR" or "generated digits (seed S)"
  std::string warning;      // non-empty when IDX files were asked for but missing
};

MnistData loadData(const DataOptions& options);

}  // namespace mnist
