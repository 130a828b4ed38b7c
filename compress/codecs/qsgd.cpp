// qsgd: QSGD (Alistarh et al. 2017) with s levels and one L2 norm per buffer:
// level = floor(|p| s / ||p||) rounded up with probability equal to the
// remainder, so E[sign(p) level ||p|| / s] = p. Optional error feedback.
#include <algorithm>
#include <cmath>
#include <optional>
#include <stdexcept>

#include "codec_params.h"
#include "codec_rng.h"
#include "error_feedback.h"
#include "factories.h"

namespace hearth::compress {
namespace {

class QsgdCompressor final : public FeedbackCompressor {
 public:
  QsgdCompressor(std::size_t numel, int levels, bool errorFeedback, std::uint64_t seed)
      : FeedbackCompressor("qsgd", numel, errorFeedback), levels_(levels), seed_(seed) {}

 private:
  std::vector<std::uint8_t> encode(const GradientView& gradient, const StepInfo& info) override {
    if (!rng_) rng_.emplace(seed_, static_cast<std::uint64_t>(info.rank));
    const float* p = feedback().accumulate(gradient);
    double sumSquares = 0.0;
    for (std::size_t i = 0; i < numel(); ++i) sumSquares += double(p[i]) * double(p[i]);
    const double norm = std::sqrt(sumSquares);
    const float scale = static_cast<float>(norm / levels_);
    if (!std::isfinite(static_cast<float>(norm))) {
      throw std::invalid_argument("codec 'qsgd': the gradient's L2 norm exceeds the fp32 range");
    }
    // scalars: the scale the decoder applies, then the norm and s for tools.
    const std::vector<float> scalars = {scale, static_cast<float>(norm), float(levels_)};
    if (scale == 0.0f)
      return sendInt8(CodecId::kQsgd, p, scalars, [](std::size_t, float) { return 0; });
    const double perUnit = levels_ / norm;
    const double maxLevel = levels_;
    CodecRng& rng = *rng_;
    return sendInt8(CodecId::kQsgd, p, scalars, [&](std::size_t, float x) {
      const double r = std::min(std::fabs(double(x)) * perUnit, maxLevel);
      int level = static_cast<int>(r);  // floor: r >= 0
      if (rng.uniformDouble() < r - level) ++level;
      return x < 0.0f ? -level : level;
    });
  }

  int levels_;
  std::uint64_t seed_;
  std::optional<CodecRng> rng_;
};

}  // namespace

std::unique_ptr<Compressor> makeQsgdCompressor(const nlohmann::json& params, std::size_t numel) {
  CodecParams p("qsgd", params);
  const auto levels = static_cast<int>(p.integer("levels", 16, 1, 127));
  const bool errorFeedback = p.boolean("error_feedback", false);
  const auto seed = static_cast<std::uint64_t>(p.integer("seed", 0, 0, INT64_MAX));
  p.finish();
  return std::make_unique<QsgdCompressor>(numel, levels, errorFeedback, seed);
}

}  // namespace hearth::compress
