// dgc_schedule.h (internal) — DGC's warm-up density schedule: the share of
// entries sent per step, decreasing over the first periods of training and
// then constant at the target density.
//
//   period p = floor(position / periodLength), position = StepInfo.step
//   (unit kSteps) or StepInfo.epoch (unit kEpochs);
//   density = warmup[p] while p < warmup.size(), else target.
//
// The default warm-up is exponential (as in the paper's reference code):
// warmup[p] = target^((p+1)/(P+1)) for P periods, which for target 0.001 and
// P = 4 gives 25.1%, 6.31%, 1.58%, 0.398%, then 0.1% (the paper rounds these
// to 25%, 6.25%, 1.5625%, 0.4%). An explicit list replaces it.
//
// Thread-safety: immutable after construction; const methods are safe from
// any thread. Preconditions are checked by the constructor
// (std::invalid_argument). Nothing blocks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace hearth::compress {

enum class WarmupUnit { kSteps, kEpochs };

class DensitySchedule {
 public:
  // REQUIRES: 0 < target <= 1; periodLength > 0; every warm-up density in (0, 1].
  DensitySchedule(double target, WarmupUnit unit, double periodLength,
                  std::vector<double> warmupDensities);

  // target^((p+1)/(periods+1)) for p < periods.
  static std::vector<double> exponentialWarmup(double target, int periods);

  double densityAt(std::int64_t step, double epoch) const;
  // The warm-up period index at this position (>= warmup().size() after it).
  std::int64_t periodAt(std::int64_t step, double epoch) const;

  double target() const { return target_; }
  WarmupUnit unit() const { return unit_; }
  double periodLength() const { return periodLength_; }
  const std::vector<double>& warmup() const { return warmup_; }

 private:
  double target_;
  WarmupUnit unit_;
  double periodLength_;
  std::vector<double> warmup_;
};

// Entries selected at `density` of n: ceil(density * n) clamped to [1, n]
// (0 when n == 0). A tiny tolerance keeps exact products such as 0.001 * 1000
// from rounding up to 2.
std::size_t selectionCount(double density, std::size_t n);

}  // namespace hearth::compress
