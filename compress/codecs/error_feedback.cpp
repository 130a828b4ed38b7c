#include "error_feedback.h"

#include <cmath>
#include <stdexcept>

#include "codec_common.h"

namespace hearth::compress {

ErrorFeedback::ErrorFeedback(std::string codec, std::size_t numel, bool enabled)
    : codec_(std::move(codec)), enabled_(enabled), buffer_(numel, 0.0f) {}

float* ErrorFeedback::accumulate(const GradientView& gradient) {
  float* p = buffer_.data();
  const std::size_t n = buffer_.size();
  bool finite = true;
  if (!enabled_) {
    loadGradient(gradient, p);
    for (std::size_t i = 0; i < n; ++i) finite &= std::isfinite(p[i]);
  } else if (gradient.dtype == DType::kFloat32) {
    const auto* g = static_cast<const float*>(gradient.data);
    for (std::size_t i = 0; i < n; ++i) {
      p[i] += g[i];
      finite &= std::isfinite(p[i]);
    }
  } else {
    for (std::size_t i = 0; i < n; ++i) {
      p[i] += loadAsFloat(gradient.data, i, gradient.dtype);
      finite &= std::isfinite(p[i]);
    }
  }
  if (!finite) {
    throw std::invalid_argument("codec '" + codec_ + "': gradient" +
                                (enabled_ ? " plus residual" : "") + " holds NaN or infinity");
  }
  return p;
}

FeedbackCompressor::FeedbackCompressor(std::string name, std::size_t numel, bool errorFeedback)
    : GatherCompressor(numel), name_(name), feedback_(std::move(name), numel, errorFeedback) {}

}  // namespace hearth::compress
