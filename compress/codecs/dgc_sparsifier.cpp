#include "dgc_sparsifier.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "dgc_update_kernels.h"
#include "hearth/compress/dtype.h"

namespace hearth::compress {
namespace {

constexpr std::size_t kBlock = 2048;  // elements per fused block (24 KiB of g, u, v)

[[noreturn]] void badOption(const char* key, const std::string& why) {
  throw std::invalid_argument(std::string("codec 'dgc': parameter '") + key + "' " + why);
}

void validate(const DgcOptions& o, std::size_t numel) {
  if (!(o.density > 0.0 && o.density <= 1.0)) badOption("density", "must be in (0, 1]");
  if (!(o.momentum >= 0.0 && o.momentum < 1.0)) badOption("momentum", "must be in [0, 1)");
  if (o.nesterov && o.momentum == 0.0) badOption("nesterov", "requires momentum > 0");
  if (!(o.clipNorm >= 0.0) || !std::isfinite(o.clipNorm)) badOption("clip_norm", "must be >= 0");
  if (!(o.sampleRatio > 0.0 && o.sampleRatio <= 1.0)) {
    badOption("sample_ratio", "must be in (0, 1]");
  }
  if (!(o.threshold.lowerBound > 0.0 && o.threshold.lowerBound <= 1.0)) {
    badOption("lower_bound", "must be in (0, 1]");
  }
  if (!(o.threshold.upperBound >= 1.0) || !std::isfinite(o.threshold.upperBound)) {
    badOption("upper_bound", "must be >= 1");
  }
  if (o.threshold.maxAdaptationIters < 0) badOption("max_adaptation_iters", "must be >= 0");
  if (o.warmupPeriods < 0) badOption("warmup_periods", "must be >= 0");
  if (o.valueType != ValueType::kF32 && o.valueType != ValueType::kF16 &&
      o.valueType != ValueType::kBF16) {
    badOption("value_type", "must be fp32, fp16 or bf16");
  }
  if (numel > kMaxPayloadNumel) {
    throw std::invalid_argument("codec 'dgc': buffer of " + std::to_string(numel) +
                                " elements exceeds the wire format's u32 indices");
  }
}

DensitySchedule makeSchedule(const DgcOptions& o) {
  std::vector<double> warmup = o.warmupDensities.empty()
                                   ? DensitySchedule::exponentialWarmup(o.density, o.warmupPeriods)
                                   : o.warmupDensities;
  return DensitySchedule(o.density, o.warmupUnit, o.warmupPeriod, std::move(warmup));
}

void toFloatBlock(const GradientView& gradient, std::size_t begin, std::size_t len, float* out) {
  if (gradient.dtype == DType::kFloat16) {
    const auto* h = static_cast<const std::uint16_t*>(gradient.data) + begin;
    for (std::size_t i = 0; i < len; ++i) out[i] = halfToFloat(h[i]);
  } else {
    const auto* b = static_cast<const std::uint16_t*>(gradient.data) + begin;
    for (std::size_t i = 0; i < len; ++i) out[i] = bfloat16ToFloat(b[i]);
  }
}

}  // namespace

DgcSparsifier::DgcSparsifier(const DgcOptions& options, std::size_t numel)
    : options_((validate(options, numel), options)),
      numel_(numel),
      schedule_(makeSchedule(options)),
      selector_(options.threshold) {
  if (options_.momentum > 0.0) u_.assign(numel_, 0.0f);
  v_.assign(numel_, 0.0f);
  // Room for the selection at the target density (warm-up may grow it once).
  const std::size_t k = selectionCount(options_.density, numel_);
  const std::size_t reserve = denseBuffer() ? numel_ : std::min(numel_, 3 * k + 1024);
  selection_.indices.reserve(reserve);
  selection_.values.reserve(reserve);
}

float DgcSparsifier::clipScale(const GradientView& gradient, int worldSize) const {
  if (options_.clipNorm <= 0.0) return 1.0f;
  double sum = 0.0;
  if (gradient.dtype == DType::kFloat32) {
    const auto* g = static_cast<const float*>(gradient.data);
    double partial[4] = {0, 0, 0, 0};
    std::size_t i = 0;
    for (; i + 4 <= numel_; i += 4) {
      for (int j = 0; j < 4; ++j) partial[j] += double(g[i + j]) * double(g[i + j]);
    }
    for (; i < numel_; ++i) partial[0] += double(g[i]) * double(g[i]);
    sum = (partial[0] + partial[1]) + (partial[2] + partial[3]);
  } else {
    for (std::size_t i = 0; i < numel_; ++i) {
      const double x = loadAsFloat(gradient.data, i, gradient.dtype);
      sum += x * x;
    }
  }
  const double norm = std::sqrt(sum);
  const double limit = options_.clipNorm / std::sqrt(static_cast<double>(std::max(worldSize, 1)));
  return norm > limit ? static_cast<float>(limit / norm) : 1.0f;
}

float DgcSparsifier::quantize(float x) const {
  switch (options_.valueType) {
    case ValueType::kF16: {
      const float clamped = std::clamp(x, -65504.0f, 65504.0f);
      return halfToFloat(floatToHalf(clamped));
    }
    case ValueType::kBF16: {
      constexpr float kMax = 3.38953139e38f;  // largest finite bf16
      return bfloat16ToFloat(floatToBFloat16(std::clamp(x, -kMax, kMax)));
    }
    default:
      return x;
  }
}

void DgcSparsifier::accumulate(const GradientView& gradient, float s, const SamplePlan& samplePlan,
                               std::size_t sampleOffsetInPlan, std::size_t sampleCount,
                               Prefilter* prefilter, std::size_t prefilterCap) {
  const float m = static_cast<float>(options_.momentum);
  const DgcUpdate mode = options_.momentum == 0.0
                             ? DgcUpdate::kPlain
                             : (options_.nesterov ? DgcUpdate::kNesterov : DgcUpdate::kMomentum);
  float* u = u_.empty() ? nullptr : u_.data();
  float* v = v_.data();
  alignas(64) float converted[kBlock];
  // Candidates for the predicted threshold, collected per block while it is
  // still in L1 (count also counts past the cap).
  std::size_t candidates = 0;
  SampleCursor samples(samplePlan, sampleOffsetInPlan);
  std::size_t taken = 0;
  for (std::size_t b0 = 0; b0 < numel_; b0 += kBlock) {
    const std::size_t len = std::min(kBlock, numel_ - b0);
    const float* g;
    if (gradient.dtype == DType::kFloat32) {
      g = static_cast<const float*>(gradient.data) + b0;
    } else {
      toFloatBlock(gradient, b0, len, converted);
      g = converted;
    }
    dgcUpdate(mode, g, u == nullptr ? nullptr : u + b0, v + b0, len, m, s);
    if (prefilter != nullptr) {
      collectAtLeast(v + b0, len, b0, prefilter->key, prefilter_.data(), prefilterCap, candidates);
    }
    // Samples of this block, read while it is still in cache.
    samples.takeBelow(v, b0 + len, samples_.data(), sampleCount, taken);
  }
  samples_.resize(taken);
  if (prefilter != nullptr) prefilter->count = candidates;
}

const SparseSelection& DgcSparsifier::step(const GradientView& gradient, const StepInfo& info) {
  if (gradient.numel != numel_) {
    throw std::invalid_argument("codec 'dgc': gradient has " + std::to_string(gradient.numel) +
                                " elements, the compressor was built for " +
                                std::to_string(numel_));
  }
  if (gradient.data == nullptr && numel_ > 0) {
    throw std::invalid_argument("codec 'dgc': gradient data is null");
  }
  if (gradient.dtype != DType::kFloat32 && gradient.dtype != DType::kFloat16 &&
      gradient.dtype != DType::kBFloat16) {
    throw std::invalid_argument("codec 'dgc': gradient dtype must be fp32, fp16 or bf16");
  }
  lastDensity_ = schedule_.densityAt(info.step, info.epoch);
  lastK_ = selectionCount(lastDensity_, numel_);
  lastClipScale_ = clipScale(gradient, info.worldSize);
  if (info.rank != seededRank_) {
    rng_.seed(options_.seed + static_cast<std::uint64_t>(info.rank));
    seededRank_ = info.rank;
  }

  // k == numel means every nonzero entry: no threshold to estimate.
  const bool sampled = !denseBuffer() && !options_.exact && lastK_ < numel_;
  SamplePlan plan;
  std::size_t offset = 0;
  if (sampled) {
    plan = planSamples(numel_, lastDensity_, options_.sampleRatio);
    offset = sampleOffset(plan, rng_());
    samples_.resize(plan.count);  // capacity is kept across steps
  } else {
    samples_.clear();
  }
  Prefilter prefilter;
  const bool predicted = sampled && cutKey_ != 0 && cutForK_ == lastK_;
  std::size_t prefilterCap = 0;
  if (predicted) {
    prefilter.key =
        std::max<std::uint32_t>(1u, magnitudeKey(keyToMagnitude(cutKey_) * prefilterFactor_));
    prefilterCap = std::min(numel_, 16 * lastK_ + 4096);
    if (prefilter_.size() < prefilterCap) prefilter_.resize(prefilterCap);
  }
  accumulate(gradient, lastClipScale_, plan, offset, sampled ? plan.count : 0,
             predicted ? &prefilter : nullptr, prefilterCap);
  if (predicted) {
    prefilter.complete = prefilter.count <= prefilterCap;
    prefilter.indices = prefilter_.data();
  }

  auto& indices = selection_.indices;
  auto& values = selection_.values;
  selection_.dense = denseBuffer();
  if (selection_.dense) {
    indices.resize(numel_);
    values.resize(numel_);
    for (std::size_t i = 0; i < numel_; ++i) {
      indices[i] = static_cast<std::uint32_t>(i);
      const float q = quantize(v_[i]);
      values[i] = q;
      v_[i] = v_[i] - q;  // u is kept: the dense path is momentum SGD
    }
    return selection_;
  }
  if (numel_ == 0) {
    indices.clear();
    values.clear();
    return selection_;
  }
  if (sampled) {
    selector_.select(v_.data(), numel_, lastK_, samples_.data(), samples_.size(), indices,
                     predicted ? &prefilter : nullptr);
    if (predicted && selector_.stats().scans > 0) {
      // The prediction did not serve: too many candidates (predict higher)
      // or a threshold below it (predict lower).
      prefilterFactor_ = prefilter.complete ? std::max(0.25f, prefilterFactor_ * 0.8f)
                                            : 1.0f - (1.0f - prefilterFactor_) * 0.5f;
    }
  } else {
    selectTopKByMagnitude(v_.data(), numel_, lastK_, indices, /*skipZeros=*/true);
  }
  // Gather, keep the rounding residual, and mask the momentum.
  values.resize(indices.size());
  float* u = u_.empty() ? nullptr : u_.data();
  std::uint32_t cut = indices.empty() ? 0u : 0x7FFFFFFFu;
  for (const std::uint32_t i : indices) cut = std::min(cut, magnitudeKey(v_[i]));
  cutKey_ = cut;
  cutForK_ = lastK_;
  if (options_.valueType == ValueType::kF32) {
    for (std::size_t j = 0; j < indices.size(); ++j) {
      const std::uint32_t i = indices[j];
      values[j] = v_[i];
      v_[i] = 0.0f;
      if (u != nullptr) u[i] = 0.0f;
    }
  } else {
    for (std::size_t j = 0; j < indices.size(); ++j) {
      const std::uint32_t i = indices[j];
      const float q = quantize(v_[i]);
      values[j] = q;
      v_[i] = v_[i] - q;
      if (u != nullptr) u[i] = 0.0f;
    }
  }
  return selection_;
}

}  // namespace hearth::compress
