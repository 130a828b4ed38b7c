// mnist/idx.h — reader for the IDX files MNIST ships in
// (train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-...).
//
// An IDX file is a big-endian header (magic number, one 32-bit size per
// dimension) followed by unsigned bytes: images have magic 2051 and dims
// (count, rows, cols); labels have magic 2049 and dims (count). Any count is
// accepted (LibTorch's torch::data::datasets::MNIST insists on exactly 60000
// and 10000, so it cannot read subsets; this reader can). Errors (missing
// file, wrong magic, images not 28x28, truncated data, label out of 0..9,
// image and label counts that differ) throw IdxError (a
// hearth::examples::DataError) with one line naming the file. Pure functions of the files;
// thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/data_error.h"

namespace mnist {

class IdxError : public hearth::examples::DataError {
 public:
  using DataError::DataError;
};

constexpr std::uint32_t kIdxImagesMagic = 2051;
constexpr std::uint32_t kIdxLabelsMagic = 2049;

// Reads images (count x 28 x 28 bytes) and their labels.
void readIdxPair(const std::string& imagesPath, const std::string& labelsPath,
                 std::vector<std::uint8_t>& pixels, std::vector<std::uint8_t>& labels);

}  // namespace mnist
