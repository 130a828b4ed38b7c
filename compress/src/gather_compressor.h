// gather_compressor.h (internal) — base class for codecs whose step is one
// allgather of wire-format payloads (everything except dense fp32 and
// PowerSGD). Subclasses implement encode(); the base validates and
// accumulates every rank's payload with decodeAccumulate() (payload.h) and
// returns the mean in finish(). Not thread-safe.
#pragma once

#include <vector>

#include "hearth/compress/compressor.h"
#include "hearth/compress/payload.h"

namespace hearth::compress {

class GatherCompressor : public Compressor {
 public:
  explicit GatherCompressor(std::size_t numel) : numel_(numel) {}

  std::size_t numel() const override { return numel_; }
  ExchangeRequest begin(const GradientView& gradient, const StepInfo& info) final;
  std::optional<ExchangeRequest> advance(ExchangeResult&& result) final;
  void finish(float* averaged) final;
  std::size_t bytesSent() const override { return bytesSent_; }

 protected:
  // Returns this rank's payload for `gradient` and updates the codec's state.
  // REQUIRES: gradient.numel == numel().
  virtual std::vector<std::uint8_t> encode(const GradientView& gradient, const StepInfo& info) = 0;

 private:
  std::size_t numel_;
  std::size_t bytesSent_ = 0;
  std::vector<float> sum_;
  bool ready_ = false;
};

// Throws std::invalid_argument unless gradient.numel == numel (names the codec).
void checkGradient(const char* codec, const GradientView& gradient, std::size_t numel);

}  // namespace hearth::compress
