#include "hearth/compress/exchange.h"

namespace hearth::compress {

StepTraffic runCompressedStep(Compressor& compressor, Collectives& collectives,
                              const GradientView& gradient, float* averaged, const StepInfo& info,
                              Millis timeout, const SendObserver& onSend) {
  StepTraffic traffic;
  const std::size_t world = static_cast<std::size_t>(collectives.worldSize());
  ExchangeRequest request = compressor.begin(gradient, info);
  for (;;) {
    ExchangeResult result;
    ++traffic.rounds;
    if (onSend) onSend(request);
    if (request.op == ExchangeOp::kAllgatherBytes) {
      traffic.payloadBytes += request.bytes.size();
      // Every other rank receives this rank's payload once.
      traffic.wireBytes += request.bytes.size() * (world - 1);
      result.gathered = collectives.allgatherBytes(request.bytes, timeout);
    } else {
      const std::size_t bytes = request.floats.size() * sizeof(float);
      traffic.payloadBytes += bytes;
      traffic.wireBytes += world > 1 ? 2 * bytes * (world - 1) / world : 0;  // ring allreduce
      collectives.allreduceSum(request.floats.data(), request.floats.size(), timeout);
      result.summed = std::move(request.floats);
    }
    auto next = compressor.advance(std::move(result));
    if (!next) break;
    request = std::move(*next);
  }
  compressor.finish(averaged);
  return traffic;
}

}  // namespace hearth::compress
