// powersgd: PowerSGD (Vogels et al. 2019, Algorithms 1 and 2) on the flat
// buffer viewed as a rows x cols matrix, with error feedback and warm start.
//
//   M = g + e                       (error feedback; e = 0 when disabled)
//   round 1: P = allreduce-sum(M Q) (Q: warm start, identical on all ranks)
//            P = orthonormalize(P)  (same bits on every rank: same input)
//   round 2: Q = allreduce-sum(M^T P) / worldSize
//   output  = P Q^T                 (= P P^T mean(M): the mean, projected)
//   e       = M - P Q^T             (local M minus the shared approximation,
//                                    as in the authors' code; the mean of e
//                                    over ranks is exactly what the output
//                                    missed of the mean of M)
//   Q is kept for the next step (warm start), orthonormalized first: the
//   span, and so the method, is the paper's, but P = M Q is then no worse
//   conditioned than M (the raw Q would square the condition number in
//   float). A column that came out zero (an all-zero step) is redrawn from
//   the shared generator, so the warm start never dies.
#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "codec_common.h"
#include "codec_params.h"
#include "codec_rng.h"
#include "error_feedback.h"
#include "factories.h"
#include "linalg.h"

namespace hearth::compress {
namespace {

class PowerSgdCompressor final : public Compressor, public ResidualHolder {
 public:
  PowerSgdCompressor(std::size_t numel, MatrixShape shape, std::size_t rank, bool errorFeedback,
                     std::uint64_t seed)
      : numel_(numel),
        shape_(shape),
        rank_(rank),
        feedback_("powersgd", numel, errorFeedback),
        rng_(seed),  // the same on every rank: the seed does not involve the rank
        q_(shape.cols * rank),
        output_(numel) {
    for (float& x : q_) x = static_cast<float>(rng_.normal());
  }

  std::string name() const override { return "powersgd"; }
  std::size_t numel() const override { return numel_; }
  std::size_t bytesSent() const override {
    return sizeof(float) * (shape_.rows + shape_.cols) * rank_;
  }
  const float* residual() const override { return feedback_.residual(); }

  ExchangeRequest begin(const GradientView& gradient, const StepInfo& info) override {
    checkGradient("powersgd", gradient, numel_);
    checkWorldSize("powersgd", info);
    worldSize_ = info.worldSize;
    stage_ = Stage::kWaitP;
    m_ = feedback_.accumulate(gradient);
    ExchangeRequest request;
    request.op = ExchangeOp::kAllreduceSum;
    request.floats.resize(shape_.rows * rank_);
    multiplyMQ(m_, numel_, shape_, q_.data(), rank_, request.floats.data());
    return request;
  }

  std::optional<ExchangeRequest> advance(ExchangeResult&& result) override {
    if (stage_ == Stage::kWaitP) {
      checkSum(result.summed, shape_.rows * rank_, "P");
      p_ = std::move(result.summed);
      orthonormalizeColumns(p_.data(), shape_.rows, rank_);
      stage_ = Stage::kWaitQ;
      ExchangeRequest request;
      request.op = ExchangeOp::kAllreduceSum;
      request.floats.resize(shape_.cols * rank_);
      multiplyMtP(m_, numel_, shape_, p_.data(), rank_, request.floats.data());
      return request;
    }
    if (stage_ != Stage::kWaitQ) {
      throw std::logic_error("codec 'powersgd': advance() outside an exchange");
    }
    checkSum(result.summed, shape_.cols * rank_, "Q");
    std::vector<float> q = std::move(result.summed);
    const auto world = static_cast<float>(worldSize_);
    for (float& x : q) x /= world;
    multiplyPQt(p_.data(), q.data(), numel_, shape_, rank_, output_.data());
    for (std::size_t i = 0; i < numel_; ++i) feedback_.sent(i, output_[i]);
    keepWarmStart(q);
    stage_ = Stage::kDone;
    return std::nullopt;
  }

  void finish(float* averaged) override {
    if (stage_ != Stage::kDone) {
      throw std::logic_error("codec 'powersgd': finish() before the exchange ended");
    }
    std::copy(output_.begin(), output_.end(), averaged);
    stage_ = Stage::kIdle;
  }

 private:
  enum class Stage { kIdle, kWaitP, kWaitQ, kDone };

  void checkSum(const std::vector<float>& summed, std::size_t expected, const char* factor) {
    checkSummedSize("powersgd", summed, expected);
    for (std::size_t i = 0; i < summed.size(); ++i) {
      if (!std::isfinite(summed[i])) {
        stage_ = Stage::kIdle;
        throw PayloadError(PayloadErrorKind::kNonFinite, std::string("codec 'powersgd': summed ") +
                                                             factor + "[" + std::to_string(i) +
                                                             "] is not finite");
      }
    }
  }

  // Every rank sees the same q, so every rank draws the same replacements.
  void keepWarmStart(const std::vector<float>& q) {
    q_ = q;
    orthonormalizeColumns(q_.data(), shape_.cols, rank_);
    for (std::size_t j = 0; j < rank_; ++j) {
      bool zero = true;
      for (std::size_t c = 0; c < shape_.cols && zero; ++c) zero = q_[c * rank_ + j] == 0.0f;
      if (!zero) continue;
      for (std::size_t c = 0; c < shape_.cols; ++c) {
        q_[c * rank_ + j] = static_cast<float>(rng_.normal());
      }
    }
  }

  std::size_t numel_;
  MatrixShape shape_;
  std::size_t rank_;
  ErrorFeedback feedback_;
  CodecRng rng_;          // draws Q, identically on every rank
  std::vector<float> q_;  // cols x rank, the warm start
  std::vector<float> p_;  // rows x rank, orthonormal after round 1
  std::vector<float> output_;
  const float* m_ = nullptr;  // M = g + e, owned by feedback_
  int worldSize_ = 1;
  Stage stage_ = Stage::kIdle;
};

}  // namespace

std::unique_ptr<Compressor> makePowerSgdCompressor(const nlohmann::json& params,
                                                   std::size_t numel) {
  CodecParams p("powersgd", params);
  const auto rank = static_cast<std::size_t>(p.integer("rank", 2, 1, 1024));
  const auto maxRows = static_cast<std::int64_t>(std::max<std::size_t>(numel, 1));
  const auto rows = static_cast<std::size_t>(p.integer("rows", 0, 0, maxRows));  // 0: near sqrt
  const bool errorFeedback = p.boolean("error_feedback", true);
  const auto seed = static_cast<std::uint64_t>(p.integer("seed", 0, 0, INT64_MAX));
  p.finish();
  const MatrixShape shape = chooseShape(numel, rows);
  const std::size_t r = std::min({rank, shape.rows, shape.cols});
  return std::make_unique<PowerSgdCompressor>(numel, shape, r, errorFeedback, seed);
}

}  // namespace hearth::compress
