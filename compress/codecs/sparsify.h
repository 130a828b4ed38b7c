// sparsify.h (internal) — coordinate selection for the sparse codecs and
// their shared base class.
//
// selectTopK: the exact k largest |p[i]| (ties go to the lowest indices),
// returned as strictly increasing indices (selectTopKByMagnitude in
// dgc_selection.h: a radix select, a few passes over p).
// sampleRandomK: k distinct uniform coordinates (Floyd's algorithm over a
// bitmap, O(k + numel/64)), strictly increasing.
//
// SparseCompressor: a FeedbackCompressor that sends p = gradient + residual at
// the coordinates select() picks, values rounded to `value_type`, and keeps
// the rest (and the rounding error) in the error-feedback residual. When all
// coordinates are selected it sends a dense payload (no index section).
// Not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "codec_params.h"
#include "codec_rng.h"
#include "error_feedback.h"

namespace hearth::compress {

// REQUIRES: k <= n. `indices` keeps its capacity between calls.
void selectTopK(const float* p, std::size_t n, std::size_t k, std::vector<std::uint32_t>& indices);

// REQUIRES: k <= n. `bitmap` is scratch reused between calls.
void sampleRandomK(CodecRng& rng, std::size_t n, std::size_t k, std::vector<std::uint32_t>& indices,
                   std::vector<std::uint64_t>& bitmap);

// Parameters every sparse codec reads: `density` (default defaultDensity) or
// `k` (not both), `value_type` (fp32) and `error_feedback` (true).
struct SparseSettings {
  std::size_t k = 0;  // coordinates sent per step, <= numel
  ValueType valueType = ValueType::kF32;
  bool errorFeedback = true;
};
SparseSettings readSparseSettings(const std::string& codec, CodecParams& params, std::size_t numel,
                                  double defaultDensity);

class SparseCompressor : public FeedbackCompressor {
 public:
  SparseCompressor(std::string name, CodecId id, std::size_t numel, const SparseSettings& settings);

  std::size_t k() const { return settings_.k; }

 protected:
  // Fills `indices` with k() strictly increasing coordinates of p.
  // Only called when 0 < k() < numel().
  virtual void select(const float* p, const StepInfo& info,
                      std::vector<std::uint32_t>& indices) = 0;

 private:
  std::vector<std::uint8_t> encode(const GradientView& gradient, const StepInfo& info) final;

  CodecId id_;
  SparseSettings settings_;
  std::vector<std::uint32_t> indices_;
  std::vector<float> values_;
};

}  // namespace hearth::compress
