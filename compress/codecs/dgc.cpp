#include "dgc.h"

#include <limits>
#include <stdexcept>

#include "codec_params.h"
#include "factories.h"

namespace hearth::compress {

DgcOptions parseDgcOptions(const nlohmann::json& params) {
  CodecParams p("dgc", params);
  DgcOptions o;
  o.density = p.number("density", o.density, 0.0, 1.0);
  if (o.density == 0.0) {
    throw std::invalid_argument("codec 'dgc': parameter 'density' must be > 0, got 0");
  }
  o.momentum = p.number("momentum", o.momentum, 0.0, 0.9999);
  o.nesterov = p.boolean("nesterov", o.nesterov);
  if (o.nesterov && o.momentum == 0.0) {
    throw std::invalid_argument("codec 'dgc': parameter 'nesterov' requires momentum > 0");
  }
  o.clipNorm = p.number("clip_norm", o.clipNorm, 0.0, std::numeric_limits<double>::max());
  o.sampleRatio = p.number("sample_ratio", o.sampleRatio, 1e-6, 1.0);
  o.threshold.lowerBound = p.number("lower_bound", o.threshold.lowerBound, 0.01, 1.0);
  o.threshold.upperBound = p.number("upper_bound", o.threshold.upperBound, 1.0, 100.0);
  o.threshold.maxAdaptationIters =
      static_cast<int>(p.integer("max_adaptation_iters", o.threshold.maxAdaptationIters, 0, 1000));
  o.exact = p.boolean("exact", o.exact);
  o.warmupUnit = p.text("warmup_unit", "steps", {"steps", "epochs"}) == "steps"
                     ? WarmupUnit::kSteps
                     : WarmupUnit::kEpochs;
  o.warmupPeriods = static_cast<int>(p.integer("warmup_periods", o.warmupPeriods, 0, 1000));
  o.warmupPeriod = p.number("warmup_period", o.warmupPeriod, 1e-9, 1e12);
  o.warmupDensities = p.numbers("warmup_densities", {}, 0.0, 1.0);
  for (double d : o.warmupDensities) {
    if (d == 0.0) {
      throw std::invalid_argument(
          "codec 'dgc': parameter 'warmup_densities' must contain numbers in (0, 1], got 0");
    }
  }
  o.minNumel = static_cast<std::size_t>(
      p.integer("min_numel", static_cast<std::int64_t>(o.minNumel), 0, kMaxPayloadNumel));
  const std::string valueType = p.text("value_type", "fp32", {"fp32", "fp16", "bf16"});
  o.valueType = valueType == "fp16"   ? ValueType::kF16
                : valueType == "bf16" ? ValueType::kBF16
                                      : ValueType::kF32;
  o.zstd = p.boolean("zstd", o.zstd);
  o.seed =
      static_cast<std::uint64_t>(p.integer("seed", 0, 0, std::numeric_limits<std::int64_t>::max()));
  p.finish();
  return o;
}

std::vector<std::uint8_t> encodeDgcSelection(const SparseSelection& sel, std::size_t numel,
                                             const DgcOptions& options) {
  PayloadContent content;
  content.codec = CodecId::kDgc;
  content.numel = numel;
  content.count = sel.size();
  content.dense = sel.dense;
  content.indices = sel.dense ? nullptr : sel.indices.data();
  content.valueType = options.valueType;
  content.values = sel.values.data();
  EncodeOptions encodeOptions;
  encodeOptions.zstd = options.zstd;
  return encodePayload(content, encodeOptions);
}

std::vector<std::uint8_t> DgcCompressor::encode(const GradientView& gradient,
                                                const StepInfo& info) {
  const SparseSelection& sel = sparsifier_.step(gradient, info);
  return encodeDgcSelection(sel, numel(), sparsifier_.options());
}

std::unique_ptr<Compressor> makeDgcCompressor(const nlohmann::json& params, std::size_t numel) {
  return std::make_unique<DgcCompressor>(parseDgcOptions(params), numel);
}

}  // namespace hearth::compress
