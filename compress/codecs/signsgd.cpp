// signsgd: EF-signSGD (Karimireddy et al. 2019): p = g + e; send
// sign(p) * ||p||_1 / numel as one bit per element plus the scale; keep
// e = p - sent. Zero counts as positive.
#include <algorithm>
#include <cmath>

#include "error_feedback.h"
#include "factories.h"

namespace hearth::compress {
namespace {

class SignSgdCompressor final : public FeedbackCompressor {
 public:
  SignSgdCompressor(std::size_t numel, bool errorFeedback)
      : FeedbackCompressor("signsgd", numel, errorFeedback), bits_((numel + 7) / 8) {}

 private:
  std::vector<std::uint8_t> encode(const GradientView& gradient, const StepInfo& info) override {
    const std::size_t n = numel();
    const float* p = feedback().accumulate(gradient);
    double l1 = 0.0;
    for (std::size_t i = 0; i < n; ++i) l1 += std::fabs(double(p[i]));
    const float scale = n == 0 ? 0.0f : static_cast<float>(l1 / static_cast<double>(n));
    std::fill(bits_.begin(), bits_.end(), 0);
    for (std::size_t i = 0; i < n; ++i) {
      const bool positive = p[i] >= 0.0f;
      bits_[i / 8] |= static_cast<std::uint8_t>(positive) << (i % 8);
      feedback().sent(i, positive ? scale : -scale);
    }
    PayloadContent content;
    content.codec = CodecId::kSignSgd;
    content.numel = content.count = n;
    content.dense = true;
    content.valueType = ValueType::kSignBits;
    content.signBits = bits_.data();
    content.scalars = {scale};
    return encodePayload(content);
  }

  std::vector<std::uint8_t> bits_;
};

}  // namespace

std::unique_ptr<Compressor> makeSignSgdCompressor(const nlohmann::json& params, std::size_t numel) {
  return makeFeedbackCodec<SignSgdCompressor>("signsgd", params, numel, true);
}

}  // namespace hearth::compress
