#include "dgc_schedule.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace hearth::compress {

DensitySchedule::DensitySchedule(double target, WarmupUnit unit, double periodLength,
                                 std::vector<double> warmupDensities)
    : target_(target),
      unit_(unit),
      periodLength_(periodLength),
      warmup_(std::move(warmupDensities)) {
  if (!(target > 0.0 && target <= 1.0)) {
    throw std::invalid_argument("dgc: density must be in (0, 1], got " + std::to_string(target));
  }
  if (!(periodLength > 0.0) || !std::isfinite(periodLength)) {
    throw std::invalid_argument("dgc: warmup_period must be > 0, got " +
                                std::to_string(periodLength));
  }
  for (double d : warmup_) {
    if (!(d > 0.0 && d <= 1.0)) {
      throw std::invalid_argument("dgc: warmup_densities must be in (0, 1], got " +
                                  std::to_string(d));
    }
  }
}

std::vector<double> DensitySchedule::exponentialWarmup(double target, int periods) {
  std::vector<double> out;
  for (int p = 0; p < periods; ++p) {
    out.push_back(std::pow(target, static_cast<double>(p + 1) / static_cast<double>(periods + 1)));
  }
  return out;
}

std::int64_t DensitySchedule::periodAt(std::int64_t step, double epoch) const {
  const double position = unit_ == WarmupUnit::kSteps ? static_cast<double>(step) : epoch;
  if (!(position > 0.0)) return 0;  // also NaN
  const double p = std::floor(position / periodLength_);
  return p >= 9.0e18 ? INT64_MAX : static_cast<std::int64_t>(p);
}

double DensitySchedule::densityAt(std::int64_t step, double epoch) const {
  const std::int64_t p = periodAt(step, epoch);
  return p < static_cast<std::int64_t>(warmup_.size()) ? warmup_[static_cast<std::size_t>(p)]
                                                       : target_;
}

std::size_t selectionCount(double density, std::size_t n) {
  if (n == 0) return 0;
  const double k = std::ceil(density * static_cast<double>(n) - 1e-6);
  return static_cast<std::size_t>(std::clamp(k, 1.0, static_cast<double>(n)));
}

}  // namespace hearth::compress
