#include "bucket_reducer.h"

#include <ATen/ATen.h>

#include "hearth/compress/exchange.h"

namespace hearth {
namespace {

class DenseReducer final : public BucketReducer {
 public:
  DenseReducer(Collectives& collectives, Millis timeout, double momentum, bool nesterov)
      : collectives_(collectives), timeout_(timeout), momentum_(momentum), nesterov_(nesterov) {}

  BucketTraffic reduce(at::Tensor& buffer, const compress::StepInfo& /*info*/) override {
    const int world = collectives_.worldSize();
    collectives_.allreduceSum(buffer.data_ptr<float>(), static_cast<std::size_t>(buffer.numel()),
                              timeout_);
    if (world > 1) buffer.mul_(1.0 / world);
    if (momentum_ > 0) {
      if (!velocity_.defined()) {
        velocity_ = buffer.clone();  // torch's SGD: the first buffer is the gradient
      } else {
        velocity_.mul_(momentum_).add_(buffer);
      }
      if (nesterov_) {
        buffer.add_(velocity_, momentum_);
      } else {
        buffer.copy_(velocity_);
      }
    }
    BucketTraffic traffic;
    traffic.payloadBytes = static_cast<std::uint64_t>(buffer.numel()) * sizeof(float);
    traffic.wireBytes = world > 1 ? 2 * traffic.payloadBytes * (world - 1) / world : 0;
    traffic.collectiveCalls = 1;
    return traffic;
  }

 private:
  Collectives& collectives_;
  Millis timeout_;
  double momentum_;
  bool nesterov_;
  at::Tensor velocity_;
};

class CompressedReducer final : public BucketReducer {
 public:
  CompressedReducer(Collectives& collectives, Millis timeout,
                    std::unique_ptr<compress::Compressor> compressor)
      : collectives_(collectives), timeout_(timeout), compressor_(std::move(compressor)) {}

  BucketTraffic reduce(at::Tensor& buffer, const compress::StepInfo& info) override {
    compress::GradientView gradient{buffer.data_ptr<float>(),
                                    static_cast<std::size_t>(buffer.numel()),
                                    compress::DType::kFloat32};
    // begin() consumes the gradient before finish() overwrites the buffer.
    const auto step = compress::runCompressedStep(*compressor_, collectives_, gradient,
                                                  buffer.data_ptr<float>(), info, timeout_);
    BucketTraffic traffic;
    traffic.payloadBytes = step.payloadBytes;
    traffic.wireBytes = step.wireBytes;
    traffic.collectiveCalls = static_cast<std::uint64_t>(step.rounds);
    return traffic;
  }
  bool ownsMomentum() const override { return compressor_->ownsMomentum(); }

 private:
  Collectives& collectives_;
  Millis timeout_;
  std::unique_ptr<compress::Compressor> compressor_;
};

}  // namespace

std::unique_ptr<BucketReducer> makeDenseReducer(Collectives& collectives, Millis timeout,
                                                double momentum, bool nesterov) {
  return std::make_unique<DenseReducer>(collectives, timeout, momentum, nesterov);
}

std::unique_ptr<BucketReducer> makeCompressedReducer(
    Collectives& collectives, Millis timeout, std::unique_ptr<compress::Compressor> compressor) {
  return std::make_unique<CompressedReducer>(collectives, timeout, std::move(compressor));
}

}  // namespace hearth
