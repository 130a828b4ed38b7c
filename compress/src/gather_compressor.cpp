#include "gather_compressor.h"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace hearth::compress {

void checkGradient(const char* codec, const GradientView& gradient, std::size_t numel) {
  if (gradient.numel != numel) {
    throw std::invalid_argument(std::string("codec '") + codec + "': gradient has " +
                                std::to_string(gradient.numel) +
                                " elements, the compressor was "
                                "built for " +
                                std::to_string(numel));
  }
  if (gradient.data == nullptr && numel > 0) {
    throw std::invalid_argument(std::string("codec '") + codec + "': gradient data is null");
  }
}

ExchangeRequest GatherCompressor::begin(const GradientView& gradient, const StepInfo& info) {
  checkGradient(name().c_str(), gradient, numel_);
  ready_ = false;
  ExchangeRequest request;
  request.op = ExchangeOp::kAllgatherBytes;
  request.bytes = encode(gradient, info);
  bytesSent_ = request.bytes.size();
  return request;
}

std::optional<ExchangeRequest> GatherCompressor::advance(ExchangeResult&& result) {
  if (result.gathered.empty()) {
    throw std::invalid_argument("codec '" + name() + "': allgather returned no payloads");
  }
  // Decode into a scratch sum first, so a hostile payload leaves no trace.
  sum_.assign(numel_, 0.0f);
  const float scale = 1.0f / static_cast<float>(result.gathered.size());
  for (std::size_t r = 0; r < result.gathered.size(); ++r) {
    const auto& payload = result.gathered[r];
    try {
      decodeAccumulate(payload.data(), payload.size(), sum_.data(), numel_, scale);
    } catch (const PayloadError& e) {
      throw PayloadError(e.kind(), "payload from rank " + std::to_string(r) + ": " + e.what());
    }
  }
  ready_ = true;
  return std::nullopt;
}

void GatherCompressor::finish(float* averaged) {
  if (!ready_) throw std::logic_error("codec '" + name() + "': finish() before the exchange ended");
  std::copy(sum_.begin(), sum_.end(), averaged);
  ready_ = false;
}

}  // namespace hearth::compress
