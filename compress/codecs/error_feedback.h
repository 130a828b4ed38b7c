// error_feedback.h (internal) — the error-feedback residual shared by the
// codecs (Seide et al. 2014; Karimireddy et al. 2019): each step the codec
// compresses p = gradient + residual and keeps residual = p - sent, so that
// nothing is dropped, only delayed. With feedback disabled the same object
// just converts the gradient to fp32 and remembers nothing.
//
//   float* p = ef_.accumulate(gradient);   // p = g + e (in place in e)
//   ... choose what to send from p ...
//   ef_.sent(i, value);                    // e[i] = p[i] - value
//
// Conservation: sent + e_new == e_old + g with at most one rounding, in the
// subtraction p - sent (none when sent == p, as for fp32 top-k values).
//
// FeedbackCompressor is the base of the one-allgather codecs that keep such
// a residual (optionally): it owns the ErrorFeedback and the name, exposes
// the residual through ResidualHolder, and builds the int8 payload that QSGD
// and int8 share. makeFeedbackCodec is the factory of the codecs whose only
// parameter is `error_feedback`. Not thread-safe.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "codec_params.h"
#include "gather_compressor.h"
#include "hearth/compress/compressor.h"
#include "hearth/compress/payload.h"

namespace hearth::compress {

class ErrorFeedback {
 public:
  ErrorFeedback(std::string codec, std::size_t numel, bool enabled);

  bool enabled() const { return enabled_; }

  // Returns p (numel floats owned by this object, valid until the next call):
  // gradient + residual when enabled, else the gradient as fp32. Throws
  // std::invalid_argument naming the codec if p holds NaN or infinity (the
  // compressor is then failed: the residual holds the bad value).
  // REQUIRES: gradient.numel == numel.
  float* accumulate(const GradientView& gradient);

  // The codec sends `value` for p[i]: the residual keeps p[i] - value.
  void sent(std::size_t i, float value) {
    if (enabled_) buffer_[i] -= value;
  }

  // The residual (numel floats), or nullptr when feedback is disabled.
  const float* residual() const { return enabled_ ? buffer_.data() : nullptr; }

 private:
  std::string codec_;
  bool enabled_;
  std::vector<float> buffer_;  // the residual, turned into p by accumulate()
};

// Implemented by codecs that keep an error-feedback residual, so tests and
// diagnostics can read it: dynamic_cast<const ResidualHolder*>(compressor).
class ResidualHolder {
 public:
  virtual ~ResidualHolder() = default;
  // numel floats, or nullptr when feedback is disabled.
  virtual const float* residual() const = 0;
};

class FeedbackCompressor : public GatherCompressor, public ResidualHolder {
 public:
  FeedbackCompressor(std::string name, std::size_t numel, bool errorFeedback);

  std::string name() const override { return name_; }
  const float* residual() const override { return feedback_.residual(); }

 protected:
  ErrorFeedback& feedback() { return feedback_; }

  // Sends level(i, p[i]) * scalars[0] for every i as a dense int8 payload
  // (value type kI8; scalars[0] is the scale, any further ones are
  // informational) and keeps the difference in the residual.
  // REQUIRES: level returns an integer in [-127, 127]; scalars finite.
  template <typename Level>
  std::vector<std::uint8_t> sendInt8(CodecId codec, const float* p, std::vector<float> scalars,
                                     Level level) {
    const float scale = scalars.at(0);
    quantized_.resize(numel());
    for (std::size_t i = 0; i < numel(); ++i) {
      quantized_[i] = static_cast<std::int8_t>(level(i, p[i]));
      feedback_.sent(i, static_cast<float>(quantized_[i]) * scale);
    }
    PayloadContent content;
    content.codec = codec;
    content.numel = content.count = numel();
    content.dense = true;
    content.valueType = ValueType::kI8;
    content.quantized = quantized_.data();
    content.scalars = std::move(scalars);
    return encodePayload(content);
  }

 private:
  std::string name_;
  ErrorFeedback feedback_;
  std::vector<std::int8_t> quantized_;
};

// The factory of a codec whose only parameter is `error_feedback`:
// Codec(numel, errorFeedback).
template <typename Codec>
std::unique_ptr<Compressor> makeFeedbackCodec(const char* name, const nlohmann::json& params,
                                              std::size_t numel, bool feedbackByDefault) {
  CodecParams p(name, params);
  const bool errorFeedback = p.boolean("error_feedback", feedbackByDefault);
  p.finish();
  return std::make_unique<Codec>(numel, errorFeedback);
}

}  // namespace hearth::compress
