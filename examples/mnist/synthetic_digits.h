// mnist/synthetic_digits.h — generated stand-in for MNIST, so the example
// runs without a download.
//
// generateDigits(count, seed) draws `count` 28x28 greyscale images of the ten
// digits. Each digit is a fixed set of strokes (lines and elliptic arcs in a
// unit box) that every image renders with its own random size, position
// (+-3 px), shear, rotation (+-15 deg), point jitter, stroke thickness and pixel
// noise, sometimes a stray stroke or a rubbed-out patch, so the
// classes overlap enough that a model has to learn shapes, not pixels.
// Labels cycle through the classes in a random order (balanced to within one).
//
// Deterministic: same (count, seed) -> same bytes on every platform (the
// SplitMix64 generator of common/rng.h). Pixels are 0 (background) .. 255
// (ink), row-major, like the MNIST IDX files. Pure function; thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace mnist {

constexpr int kImageSide = 28;
constexpr int kNumClasses = 10;

struct DigitImages {
  std::vector<std::uint8_t> pixels;  // count x 28 x 28
  std::vector<std::uint8_t> labels;  // count, each in 0..9
};

DigitImages generateDigits(std::size_t count, std::uint64_t seed);

}  // namespace mnist
