#include "sparsify.h"

#include <algorithm>
#include <functional>
#include <iterator>
#include <stdexcept>

#include "codec_common.h"
#include "dgc_selection.h"
#include "hearth/compress/dtype.h"

namespace hearth::compress {
void selectTopK(const float* p, std::size_t n, std::size_t k, std::vector<std::uint32_t>& indices) {
  // One exact top-k for every sparse codec: DGC's radix select.
  selectTopKByMagnitude(p, n, k, indices, /*skipZeros=*/false);
}

void sampleRandomK(CodecRng& rng, std::size_t n, std::size_t k, std::vector<std::uint32_t>& indices,
                   std::vector<std::uint64_t>& bitmap) {
  indices.clear();
  bitmap.assign((n + 63) / 64, 0);
  auto test = [&](std::size_t i) { return (bitmap[i / 64] >> (i % 64)) & 1u; };
  auto set = [&](std::size_t i) { bitmap[i / 64] |= std::uint64_t{1} << (i % 64); };
  // Floyd: for j in [n-k, n), take t uniform in [0, j]; if t is taken, take j.
  for (std::size_t j = n - k; j < n; ++j) {
    const std::size_t t = rng.below(j + 1);
    if (test(t)) {
      set(j);
    } else {
      set(t);
    }
  }
  indices.reserve(k);
  for (std::size_t w = 0; w < bitmap.size(); ++w) {
    for (std::uint64_t bits = bitmap[w]; bits != 0; bits &= bits - 1) {
      indices.push_back(static_cast<std::uint32_t>(w * 64 + __builtin_ctzll(bits)));
    }
  }
}

SparseSettings readSparseSettings(const std::string& codec, CodecParams& params, std::size_t numel,
                                  double defaultDensity) {
  SparseSettings s;
  const double density = params.number("density", -1.0, 0.0, 1.0);  // -1: not given
  const std::int64_t k = params.integer("k", -1, 0, static_cast<std::int64_t>(kMaxPayloadNumel));
  if (density >= 0.0 && k >= 0) {
    throw std::invalid_argument("codec '" + codec +
                                "': parameter 'k' and parameter 'density' exclude each other");
  }
  s.k = sparseCount(numel, density >= 0.0 ? density : defaultDensity, k);
  s.valueType = readValueType(params, "fp32");
  s.errorFeedback = params.boolean("error_feedback", true);
  return s;
}

SparseCompressor::SparseCompressor(std::string name, CodecId id, std::size_t numel,
                                   const SparseSettings& settings)
    : FeedbackCompressor(std::move(name), numel, settings.errorFeedback),
      id_(id),
      settings_(settings) {}

std::vector<std::uint8_t> SparseCompressor::encode(const GradientView& gradient,
                                                   const StepInfo& info) {
  const std::size_t n = numel();
  float* p = feedback().accumulate(gradient);
  const bool dense = settings_.k >= n;
  if (dense) {
    indices_.clear();
  } else if (settings_.k > 0) {
    select(p, info, indices_);
  } else {
    indices_.clear();
  }
  const std::size_t count = dense ? n : indices_.size();
  values_.resize(count);
  for (std::size_t j = 0; j < count; ++j) {
    const std::size_t i = dense ? j : indices_[j];
    values_[j] = roundToValueType(p[i], settings_.valueType);
    feedback().sent(i, values_[j]);
  }
  PayloadContent content;
  content.codec = id_;
  content.numel = n;
  content.count = count;
  content.dense = dense;
  content.indices = dense ? nullptr : indices_.data();
  content.valueType = settings_.valueType;
  content.values = values_.data();
  return encodePayload(content);
}

}  // namespace hearth::compress
