// hearth/compress/exchange.h — runs one compressed step of a Compressor over
// a hearth::Collectives group (the loop described in compressor.h).
//
// runCompressedStep() blocks until every round finished on this rank; each
// collective has `timeout` (CollectiveTimeout/CollectiveError propagate).
// A hostile or corrupt payload from a peer throws PayloadError and leaves
// `averaged` unwritten. Returns the bytes this rank contributed (the sum over
// rounds of its payload or allreduce buffer sizes). Thread-safety: as the
// Compressor and Collectives it is given (one thread at a time).
#pragma once

#include <cstddef>
#include <functional>

#include "hearth/compress/compressor.h"
#include "hearth/transport/collectives.h"

namespace hearth::compress {

struct StepTraffic {
  std::size_t payloadBytes = 0;  // what this rank contributed, summed over rounds
  std::size_t wireBytes = 0;     // estimate of bytes this rank sent on the wire
  int rounds = 0;
};

// Called with each request this rank is about to send (e.g. to capture
// payloads for `hearth inspect`); must not throw.
using SendObserver = std::function<void(const ExchangeRequest&)>;

StepTraffic runCompressedStep(Compressor& compressor, Collectives& collectives,
                              const GradientView& gradient, float* averaged, const StepInfo& info,
                              Millis timeout, const SendObserver& onSend = {});

}  // namespace hearth::compress
