#include "codec_common.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

namespace hearth::compress {

void loadGradient(const GradientView& gradient, float* out) {
  if (gradient.numel == 0) return;
  if (gradient.dtype == DType::kFloat32) {
    std::memcpy(out, gradient.data, gradient.numel * sizeof(float));
    return;
  }
  for (std::size_t i = 0; i < gradient.numel; ++i) {
    out[i] = loadAsFloat(gradient.data, i, gradient.dtype);
  }
}

ValueType readValueType(CodecParams& params, const std::string& fallback) {
  const std::string name = params.text("value_type", fallback, {"fp32", "fp16", "bf16"});
  if (name == "fp16") return ValueType::kF16;
  if (name == "bf16") return ValueType::kBF16;
  return ValueType::kF32;
}

std::size_t sparseCount(std::size_t numel, double density, std::int64_t k) {
  if (k >= 0) return std::min(numel, static_cast<std::size_t>(k));
  const double wanted = std::ceil(density * static_cast<double>(numel));
  return std::min(numel, static_cast<std::size_t>(wanted));
}

void checkSummedSize(const std::string& codec, const std::vector<float>& summed,
                     std::size_t expected) {
  if (summed.size() != expected) {
    throw std::invalid_argument("codec '" + codec + "': allreduce returned " +
                                std::to_string(summed.size()) + " floats, expected " +
                                std::to_string(expected));
  }
}

void checkWorldSize(const std::string& codec, const StepInfo& info) {
  if (info.worldSize < 1 || info.rank < 0 || info.rank >= info.worldSize) {
    throw std::invalid_argument("codec '" + codec + "': bad rank " + std::to_string(info.rank) +
                                " of world size " + std::to_string(info.worldSize));
  }
}

}  // namespace hearth::compress
