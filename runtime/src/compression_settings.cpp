#include "compression_settings.h"

namespace hearth {

CompressionSettings resolveCompression(const Config& config) {
  CompressionSettings s;
  s.codec = config.getString("compression.codec");
  s.params = config.getObject("compression.params");
  s.denseBelowNumel = static_cast<std::size_t>(config.getInt("compression.dense_below_numel"));
  s.denseOneDimensional = config.getBool("compression.dense_1d");
  if (s.codec != "dgc") return s;

  const std::string optimizer = config.getString("optimizer.type");
  if (optimizer == "sgd") {
    if (!s.params.contains("momentum")) {
      s.params["momentum"] = config.getFloat("optimizer.params.momentum");
    }
    if (!s.params.contains("nesterov")) {
      s.params["nesterov"] = config.getBool("optimizer.params.nesterov");
    }
    if (!s.params["momentum"].is_number() || !s.params["nesterov"].is_boolean()) {
      throw ConfigError(
          "config: compression.params.momentum must be a number and nesterov a boolean");
    }
    const double clipping = config.getFloat("gradient_clipping");
    if (clipping > 0 && !s.params.contains("clip_norm")) s.params["clip_norm"] = clipping;
    s.clippingMoved = clipping > 0;
    s.optimizerMomentumMoved = true;
    s.localMomentum = s.params["momentum"].get<double>();
    s.localNesterov = s.params["nesterov"].get<bool>();
    s.localWeightDecay = config.getFloat("optimizer.params.weight_decay");
    return s;
  }
  if (s.params.contains("momentum") &&
      !(s.params["momentum"].is_number() && s.params["momentum"].get<double>() == 0.0)) {
    throw ConfigError(
        "config: compression.params.momentum: DGC's momentum correction needs "
        "optimizer.type sgd; with " +
        optimizer + " DGC runs without momentum (see docs/dgc.md)");
  }
  s.params["momentum"] = 0.0;
  return s;
}

}  // namespace hearth
