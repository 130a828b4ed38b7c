// IDX parsing with validation of every header field.
#include "mnist/idx.h"

#include <fstream>

#include "mnist/synthetic_digits.h"

namespace mnist {
namespace {

std::uint32_t readBigEndian32(std::ifstream& in, const std::string& path, const char* field) {
  unsigned char bytes[4];
  if (!in.read(reinterpret_cast<char*>(bytes), 4)) {
    throw IdxError("data.path: " + path + ": file ends inside the header (" + field + ")");
  }
  return (std::uint32_t{bytes[0]} << 24) | (std::uint32_t{bytes[1]} << 16) |
         (std::uint32_t{bytes[2]} << 8) | std::uint32_t{bytes[3]};
}

std::ifstream openIdx(const std::string& path, std::uint32_t magic) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IdxError("data.path: cannot open " + path);
  const auto found = readBigEndian32(in, path, "magic number");
  if (found != magic) {
    throw IdxError("data.path: " + path + " has magic number " + std::to_string(found) +
                   ", expected " + std::to_string(magic) + " (not an IDX " +
                   (magic == kIdxImagesMagic ? "image" : "label") + " file)");
  }
  return in;
}

void readPayload(std::ifstream& in, const std::string& path, std::vector<std::uint8_t>& out) {
  if (!out.empty() &&
      !in.read(reinterpret_cast<char*>(out.data()), static_cast<std::streamsize>(out.size()))) {
    throw IdxError("data.path: " + path + " is truncated (expected " + std::to_string(out.size()) +
                   " data bytes)");
  }
}

}  // namespace

void readIdxPair(const std::string& imagesPath, const std::string& labelsPath,
                 std::vector<std::uint8_t>& pixels, std::vector<std::uint8_t>& labels) {
  auto images = openIdx(imagesPath, kIdxImagesMagic);
  const auto count = readBigEndian32(images, imagesPath, "image count");
  const auto rows = readBigEndian32(images, imagesPath, "rows");
  const auto cols = readBigEndian32(images, imagesPath, "columns");
  if (rows != kImageSide || cols != kImageSide) {
    throw IdxError("data.path: " + imagesPath + " holds " + std::to_string(rows) + "x" +
                   std::to_string(cols) + " images; this example needs 28x28");
  }
  pixels.assign(std::size_t{count} * kImageSide * kImageSide, 0);
  readPayload(images, imagesPath, pixels);

  auto labelFile = openIdx(labelsPath, kIdxLabelsMagic);
  const auto labelCount = readBigEndian32(labelFile, labelsPath, "label count");
  if (labelCount != count) {
    throw IdxError("data.path: " + labelsPath + " has " + std::to_string(labelCount) +
                   " labels but " + imagesPath + " has " + std::to_string(count) + " images");
  }
  labels.assign(count, 0);
  readPayload(labelFile, labelsPath, labels);
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] >= kNumClasses) {
      throw IdxError("data.path: " + labelsPath + ": label " + std::to_string(labels[i]) +
                     " at index " + std::to_string(i) + " is not a digit 0..9");
    }
  }
}

}  // namespace mnist
