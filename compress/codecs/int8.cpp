// int8: symmetric uniform 8-bit quantization, scale = max|p| / 127, round to
// nearest; optional error feedback of the rounding error.
#include <algorithm>
#include <cmath>

#include "codec_common.h"
#include "error_feedback.h"
#include "factories.h"

namespace hearth::compress {
namespace {

class Int8Compressor final : public FeedbackCompressor {
 public:
  Int8Compressor(std::size_t numel, bool errorFeedback)
      : FeedbackCompressor("int8", numel, errorFeedback) {}

 private:
  std::vector<std::uint8_t> encode(const GradientView& gradient, const StepInfo& info) override {
    const float* p = feedback().accumulate(gradient);
    float maxAbs = 0.0f;
    for (std::size_t i = 0; i < numel(); ++i) maxAbs = std::max(maxAbs, std::fabs(p[i]));
    const float scale = maxAbs / 127.0f;
    if (scale == 0.0f)
      return sendInt8(CodecId::kInt8, p, {scale}, [](std::size_t, float) { return 0; });
    return sendInt8(CodecId::kInt8, p, {scale}, [scale](std::size_t, float x) {
      return static_cast<int>(std::clamp(roundSmall(x / scale), -127.0f, 127.0f));
    });
  }
};

}  // namespace

std::unique_ptr<Compressor> makeInt8Compressor(const nlohmann::json& params, std::size_t numel) {
  return makeFeedbackCodec<Int8Compressor>("int8", params, numel, false);
}

}  // namespace hearth::compress
