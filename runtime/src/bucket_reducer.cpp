#include "bucket_reducer.h"

#include <ATen/ATen.h>

#include <cstdio>
#include <fstream>

#include "hearth/runtime/logging.h"

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
                    std::unique_ptr<compress::Compressor> compressor, PayloadCapture capture)
      : collectives_(collectives),
        timeout_(timeout),
        compressor_(std::move(compressor)),
        capture_(std::move(capture)) {}

  BucketTraffic reduce(at::Tensor& buffer, const compress::StepInfo& info) override {
    compress::GradientView gradient{buffer.data_ptr<float>(),
                                    static_cast<std::size_t>(buffer.numel()),
                                    compress::DType::kFloat32};
    // begin() consumes the gradient before finish() overwrites the buffer.
    compress::SendObserver observer;
    if (!capture_.directory.empty() && info.step % capture_.interval == 0) {
      observer = [&](const compress::ExchangeRequest& request) { save(request, info); };
    }
    const auto step = compress::runCompressedStep(
        *compressor_, collectives_, gradient, buffer.data_ptr<float>(), info, timeout_, observer);
    BucketTraffic traffic;
    traffic.payloadBytes = step.payloadBytes;
    traffic.wireBytes = step.wireBytes;
    traffic.collectiveCalls = static_cast<std::uint64_t>(step.rounds);
    return traffic;
  }
  bool ownsMomentum() const override { return compressor_->ownsMomentum(); }

 private:
  // Best effort: a capture that cannot be written is reported once, training
  // goes on.
  void save(const compress::ExchangeRequest& request, const compress::StepInfo& info) {
    if (request.op != compress::ExchangeOp::kAllgatherBytes || captureFailed_) return;
    char name[96];
    std::snprintf(name, sizeof name, "/step%06lld_bucket%zu_rank%d.hgrd",
                  static_cast<long long>(info.step), capture_.bucket, info.rank);
    const std::string path = capture_.directory + name;
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(request.bytes.data()),
              static_cast<std::streamsize>(request.bytes.size()));
    if (!out) {
      captureFailed_ = true;
      logWarning("payload capture: cannot write '" + path + "'; capturing stops");
    }
  }

  Collectives& collectives_;
  Millis timeout_;
  std::unique_ptr<compress::Compressor> compressor_;
  PayloadCapture capture_;
  bool captureFailed_ = false;
};

}  // namespace

std::unique_ptr<BucketReducer> makeDenseReducer(Collectives& collectives, Millis timeout,
                                                double momentum, bool nesterov) {
  return std::make_unique<DenseReducer>(collectives, timeout, momentum, nesterov);
}

std::unique_ptr<BucketReducer> makeCompressedReducer(
    Collectives& collectives, Millis timeout, std::unique_ptr<compress::Compressor> compressor,
    PayloadCapture capture) {
  return std::make_unique<CompressedReducer>(collectives, timeout, std::move(compressor),
                                             std::move(capture));
}

}  // namespace hearth
