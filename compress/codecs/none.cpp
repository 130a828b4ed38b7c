// none: dense fp32 averaged by one allreduce-sum (the uncompressed baseline).
// Values pass through as they are (NaN and infinity included), like DDP.
#include <stdexcept>

#include "codec_common.h"
#include "codec_params.h"
#include "factories.h"
#include "gather_compressor.h"

namespace hearth::compress {
namespace {

class NoneCompressor final : public Compressor {
 public:
  explicit NoneCompressor(std::size_t numel) : numel_(numel) {}

  std::string name() const override { return "none"; }
  std::size_t numel() const override { return numel_; }
  std::size_t bytesSent() const override { return numel_ * sizeof(float); }

  ExchangeRequest begin(const GradientView& gradient, const StepInfo& info) override {
    checkGradient("none", gradient, numel_);
    checkWorldSize("none", info);
    worldSize_ = info.worldSize;
    ready_ = false;
    ExchangeRequest request;
    request.op = ExchangeOp::kAllreduceSum;
    request.floats.resize(numel_);
    loadGradient(gradient, request.floats.data());
    return request;
  }

  std::optional<ExchangeRequest> advance(ExchangeResult&& result) override {
    checkSummedSize("none", result.summed, numel_);
    summed_ = std::move(result.summed);
    ready_ = true;
    return std::nullopt;
  }

  void finish(float* averaged) override {
    if (!ready_) throw std::logic_error("codec 'none': finish() before the exchange ended");
    const auto world = static_cast<float>(worldSize_);
    for (std::size_t i = 0; i < numel_; ++i) averaged[i] = summed_[i] / world;
    ready_ = false;
  }

 private:
  std::size_t numel_;
  int worldSize_ = 1;
  std::vector<float> summed_;
  bool ready_ = false;
};

}  // namespace

std::unique_ptr<Compressor> makeNoneCompressor(const nlohmann::json& params, std::size_t numel) {
  CodecParams("none", params).finish();
  return std::make_unique<NoneCompressor>(numel);
}

}  // namespace hearth::compress
