// dgc_sparsifier.h (internal) — the state and the local step of Deep Gradient
// Compression (Lin et al., ICLR 2018) for one flat buffer, without the wire
// format: momentum correction, local clipping, warm-up, threshold selection,
// momentum factor masking. DgcCompressor (dgc.h) encodes its result; shard/
// code can route the SparseSelection to shard owners instead.
//
// One step, per element i (g = the gradient as fp32, s = the clip scale):
//   momentum == 0:  v_i += s*g_i                          (no u is kept)
//   momentum m:     u_i = m*u_i + s*g_i;  v_i += u_i
//   nesterov:       u_i = m*u_i + s*g_i;  v_i += s*g_i + m*u_i   (u_i the new value)
// then select about k = ceil(density * numel) entries of largest |v| (see
// ThresholdSelector) and for each selected i: send q(v_i), v_i -= q(v_i)
// (q = rounding to the value type; exactly 0 left for fp32) and u_i = 0
// (momentum factor masking). Nothing else changes: unsent entries stay in v.
// Zero entries of v are never selected.
//
// Buffers with numel < minNumel take the dense path: the same update, then
// every entry is sent (v keeps only the value-type rounding error) and u is
// NOT masked — that makes it plain momentum SGD (masking every entry each step
// would discard the momentum), as the reference code does for the tensors it
// leaves uncompressed.
//
// Clipping (clipNorm > 0): s = min(1, clipNorm / sqrt(worldSize) / ||g||_2),
// the norm of this buffer's gradient, computed in double.
//
// The update pass is fused: one pass reads g, u, v and writes u, v in
// cache-sized blocks and, while each block is in cache, picks the strided
// samples of |v| and collects the indices of entries above a predicted
// threshold (a factor, 0.85 at first and adapted when the prediction fails,
// times the magnitude of the smallest entry sent last step at the same k). When this step's
// threshold is at or above the prediction and the candidates fit their buffer (16k + 4096),
// selection never re-reads v; otherwise it scans v once more (SIMD compare). Buffers are
// preallocated; a step at a constant density does not allocate.
//
// Thread-safety: not thread-safe; one step at a time. Nothing blocks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

#include "dgc_schedule.h"
#include "dgc_selection.h"
#include "hearth/compress/compressor.h"
#include "hearth/compress/payload.h"

namespace hearth::compress {

struct DgcOptions {
  double density = 0.001;  // target share of entries sent after warm-up
  double momentum = 0.9;   // 0: pure error feedback, no u
  bool nesterov = false;
  double clipNorm = 0.0;      // 0: off; else clip ||g|| to clipNorm / sqrt(worldSize)
  double sampleRatio = 0.01;  // share of |v| sampled for the threshold
  ThresholdConfig threshold;  // lower/upper bounds, adaptation iterations
  bool exact = false;         // exact top-k every step (no sampling)
  WarmupUnit warmupUnit = WarmupUnit::kSteps;
  int warmupPeriods = 4;                  // exponential warm-up periods (ignored with a list)
  double warmupPeriod = 100.0;            // length of one warm-up period in warmupUnit
  std::vector<double> warmupDensities;    // explicit warm-up; empty: exponential
  std::size_t minNumel = 4096;            // smaller buffers are sent dense
  ValueType valueType = ValueType::kF32;  // kF32, kF16 or kBF16
  bool zstd = false;
  std::uint64_t seed = 0;  // sampling offsets: seeded with seed + rank
};

// What one rank contributes in a step, before encoding.
struct SparseSelection {
  bool dense = false;                  // every entry, indices 0..numel-1
  std::vector<std::uint32_t> indices;  // strictly increasing (filled for dense too)
  std::vector<float> values;           // already rounded to the value type
  std::size_t size() const { return values.size(); }
};

class DgcSparsifier {
 public:
  // Throws std::invalid_argument naming the option when it is out of range.
  DgcSparsifier(const DgcOptions& options, std::size_t numel);

  // The full local DGC step. REQUIRES: gradient.numel == numel(), a non-null
  // buffer of fp32/fp16/bf16, NaN/Inf-free (they would poison v).
  // The result stays valid until the next step().
  const SparseSelection& step(const GradientView& gradient, const StepInfo& info);

  std::size_t numel() const { return numel_; }
  const DgcOptions& options() const { return options_; }
  const DensitySchedule& schedule() const { return schedule_; }
  bool denseBuffer() const { return numel_ < options_.minNumel; }

  // State (fp32, numel entries; momentum() is empty when momentum == 0).
  // Mutable access is for tests and checkpoint restore.
  const std::vector<float>& momentum() const { return u_; }
  const std::vector<float>& velocity() const { return v_; }
  std::vector<float>& mutableMomentum() { return u_; }
  std::vector<float>& mutableVelocity() { return v_; }

  // About the last step.
  const SparseSelection& selection() const { return selection_; }
  std::size_t lastCount() const { return selection_.size(); }
  std::size_t lastTarget() const { return lastK_; }  // k
  double currentDensity() const { return lastDensity_; }
  float lastClipScale() const { return lastClipScale_; }
  const SelectionStats& selectionStats() const { return selector_.stats(); }

 private:
  void accumulate(const GradientView& gradient, float clipScale, const SamplePlan& samplePlan,
                  std::size_t sampleOffsetInPlan, std::size_t sampleCount, Prefilter* prefilter,
                  std::size_t prefilterCap);
  float clipScale(const GradientView& gradient, int worldSize) const;
  float quantize(float x) const;

  DgcOptions options_;
  std::size_t numel_;
  DensitySchedule schedule_;
  ThresholdSelector selector_;
  std::vector<float> u_;
  std::vector<float> v_;
  std::vector<std::uint32_t> samples_;
  std::vector<std::uint32_t> prefilter_;  // candidates above the predicted threshold
  std::uint32_t cutKey_ = 0;              // smallest key sent last step (0: none)
  std::size_t cutForK_ = 0;               // the k it was sent for
  float prefilterFactor_ = 0.85f;         // predicted threshold / cutKey_, adapted
  SparseSelection selection_;
  std::mt19937_64 rng_;
  int seededRank_ = -1;
  std::size_t lastK_ = 0;
  double lastDensity_ = 0.0;
  float lastClipScale_ = 1.0f;
};

}  // namespace hearth::compress
