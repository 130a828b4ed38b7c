// dgc.h (internal) — the "dgc" codec: Deep Gradient Compression as a
// Compressor. Each step runs DgcSparsifier::step (momentum correction,
// clipping, warm-up, sampled threshold selection, momentum factor masking)
// and encodes the selection as one kDgc payload (sparse indices, or dense for
// small buffers; fp32/fp16/bf16 values; optional zstd) for one allgather;
// GatherCompressor averages every rank's payload.
//
// JSON parameters (defaults; docs/dgc.md has the details):
//   density 0.001, momentum 0.9, nesterov false, clip_norm 0 (off),
//   sample_ratio 0.01, lower_bound 0.8, upper_bound 1.3,
//   max_adaptation_iters 10, exact false, warmup_unit "steps",
//   warmup_periods 4, warmup_period 100, warmup_densities (none: exponential),
//   min_numel 4096, value_type "fp32", zstd false, seed 0.
//
// ownsMomentum() is true when momentum > 0: the optimizer must then be plain
// SGD (weight decay applied outside, see docs/dgc.md).
// Thread-safety: not thread-safe (one step at a time). Nothing blocks.
#pragma once

#include <cstddef>
#include <vector>

#include <nlohmann/json.hpp>

#include "dgc_sparsifier.h"
#include "gather_compressor.h"

namespace hearth::compress {

// Reads and validates the JSON parameters; throws std::invalid_argument
// naming the parameter (unknown keys included).
DgcOptions parseDgcOptions(const nlohmann::json& params);

// The payload for a selection (codec kDgc; dense encoding when sel.dense).
std::vector<std::uint8_t> encodeDgcSelection(const SparseSelection& sel, std::size_t numel,
                                             const DgcOptions& options);

class DgcCompressor final : public GatherCompressor {
 public:
  DgcCompressor(const DgcOptions& options, std::size_t numel)
      : GatherCompressor(numel), sparsifier_(options, numel) {}

  std::string name() const override { return "dgc"; }
  bool ownsMomentum() const override { return sparsifier_.options().momentum > 0.0; }

  DgcSparsifier& sparsifier() { return sparsifier_; }
  const DgcSparsifier& sparsifier() const { return sparsifier_; }

 protected:
  std::vector<std::uint8_t> encode(const GradientView& gradient, const StepInfo& info) override;

 private:
  DgcSparsifier sparsifier_;
};

}  // namespace hearth::compress
