// compression_settings.h (internal) — how the compression.* keys combine with
// the optimizer.* keys. One place decides, for EngineOptions::fromConfig()
// and makeOptimizer():
// - dgc with optimizer.type sgd: DGC owns the momentum (compression.params
//   momentum/nesterov default to optimizer.params momentum/nesterov); the
//   torch optimizer becomes plain SGD (momentum 0, weight decay 0); the Engine
//   applies momentum to the dense buckets and the weight-decay term locally
//   (as DGC's reference implementation does: weight decay is not compressed).
//   gradient_clipping moves into DGC too (compression.params.clip_norm, unless
//   set): DGC clips each rank's local gradient before accumulation, the
//   paper's local clipping; the Engine's global clipping of the exchanged
//   update is turned off, because it would cut entries DGC already removed
//   from its residual (lost for good; docs/dgc.md).
// - dgc with adam/adamw: DGC runs without momentum (error-feedback top-k);
//   Adam consumes the averaged sparse gradient. A momentum in
//   compression.params is rejected.
// - other codecs leave the optimizer alone.
// Throws ConfigError naming the key. Pure; thread-safe.
#pragma once

#include <cstddef>
#include <string>

#include <nlohmann/json.hpp>

#include "hearth/runtime/config.h"

namespace hearth {

struct CompressionSettings {
  std::string codec = "none";
  nlohmann::json params = nlohmann::json::object();
  std::size_t denseBelowNumel = 1024;
  bool denseOneDimensional = true;
  bool optimizerMomentumMoved = false;  // build the SGD optimizer without momentum/decay
  double localMomentum = 0.0;
  bool localNesterov = false;
  double localWeightDecay = 0.0;
  bool clippingMoved = false;  // gradient_clipping became DGC's clip_norm
};

CompressionSettings resolveCompression(const Config& config);

}  // namespace hearth
