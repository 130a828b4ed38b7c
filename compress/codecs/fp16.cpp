// fp16: every value as IEEE half (saturating at +-65504), optionally with
// error feedback of the rounding error.
#include "codec_common.h"
#include "error_feedback.h"
#include "factories.h"

namespace hearth::compress {
namespace {

class Fp16Compressor final : public FeedbackCompressor {
 public:
  Fp16Compressor(std::size_t numel, bool errorFeedback)
      : FeedbackCompressor("fp16", numel, errorFeedback), values_(numel) {}

 private:
  std::vector<std::uint8_t> encode(const GradientView& gradient, const StepInfo& info) override {
    const float* p = feedback().accumulate(gradient);
    for (std::size_t i = 0; i < numel(); ++i) {
      values_[i] = roundToValueType(p[i], ValueType::kF16);
      feedback().sent(i, values_[i]);
    }
    PayloadContent content;
    content.codec = CodecId::kFp16;
    content.numel = content.count = numel();
    content.dense = true;
    content.valueType = ValueType::kF16;
    content.values = values_.data();
    return encodePayload(content);
  }

  std::vector<float> values_;
};

}  // namespace

std::unique_ptr<Compressor> makeFp16Compressor(const nlohmann::json& params, std::size_t numel) {
  return makeFeedbackCodec<Fp16Compressor>("fp16", params, numel, false);
}

}  // namespace hearth::compress
