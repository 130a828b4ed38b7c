// codec_common.h (internal) — small pieces the baseline codecs share: reading
// a gradient as fp32, the `value_type` parameter and rounding to it, the
// number of coordinates a sparse codec sends, and checking an allreduce sum.
// Pure functions; thread-safe.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "codec_params.h"
#include "hearth/compress/compressor.h"
#include "hearth/compress/dtype.h"
#include "hearth/compress/payload.h"

namespace hearth::compress {

// Writes gradient.numel floats: the gradient converted to fp32.
void loadGradient(const GradientView& gradient, float* out);

// Reads the `value_type` parameter ("fp32", "fp16" or "bf16").
ValueType readValueType(CodecParams& params, const std::string& fallback);

// The float a payload of type `type` (kF32, kF16 or kBF16) decodes `x` to.
// Finite inputs saturate at the type's largest finite value instead of
// overflowing to infinity (payloads must be finite). Inline: per element.
inline float roundToValueType(float x, ValueType type) {
  constexpr float kMaxHalf = 65504.0f;
  constexpr float kMaxBFloat16 = 3.38953139e38f;  // 0x7F7F
  switch (type) {
    case ValueType::kF16:
      return halfToFloat(floatToHalf(std::clamp(x, -kMaxHalf, kMaxHalf)));
    case ValueType::kBF16: {
      const float r = bfloat16ToFloat(floatToBFloat16(x));
      if (std::isinf(r) && std::isfinite(x)) return std::copysign(kMaxBFloat16, x);
      return r;
    }
    default:
      return x;
  }
}

// Rounds to the nearest integer, ties to even, for |x| < 2^22, without a
// libm call (adding and removing 1.5 * 2^23 leaves no fraction bits).
inline float roundSmall(float x) {
  constexpr float kMagic = 12582912.0f;
  return (x + kMagic) - kMagic;
}

// Coordinates a sparse codec sends from `numel`: `k` when given (>= 0),
// else ceil(density * numel); at most numel.
std::size_t sparseCount(std::size_t numel, double density, std::int64_t k);

// Throws std::invalid_argument naming the codec unless the allreduce result
// holds `expected` floats.
void checkSummedSize(const std::string& codec, const std::vector<float>& summed,
                     std::size_t expected);

// Throws std::invalid_argument naming the codec unless worldSize >= 1.
void checkWorldSize(const std::string& codec, const StepInfo& info);

}  // namespace hearth::compress
