// Warm-up plus cosine decay.
#include "charlm/lr_schedule.h"

#include <torch/optim/optimizer.h>

#include <algorithm>
#include <cmath>

namespace charlm {

double scheduledLearningRate(const LrSchedule& schedule, std::int64_t step) {
  if (schedule.warmupSteps > 0 && step <= schedule.warmupSteps) {
    return schedule.base * static_cast<double>(step) / static_cast<double>(schedule.warmupSteps);
  }
  const auto decaySteps = std::max<std::int64_t>(1, schedule.totalSteps - schedule.warmupSteps);
  const double progress =
      std::clamp(static_cast<double>(step - schedule.warmupSteps) / decaySteps, 0.0, 1.0);
  const double cosine = 0.5 * (1.0 + std::cos(M_PI * progress));  // 1 -> 0
  return schedule.base * (schedule.minRatio + (1.0 - schedule.minRatio) * cosine);
}

void setLearningRate(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) group.options().set_lr(lr);
}

}  // namespace charlm
