// charlm/lr_schedule.h — learning-rate schedule of the char-level LM example:
// linear warm-up over `warmupSteps`, then cosine decay from the base rate to
// base x minRatio at the last step. Steps count from 1.
//
// scheduledLearningRate() is a pure function. setLearningRate() writes the
// rate into every parameter group of the optimizer (call it on every rank
// before engine.step(), so all ranks stay identical). Not thread-safe with
// respect to a concurrent optimizer step.
#pragma once

#include <cstdint>

namespace torch {
namespace optim {
class Optimizer;
}  // namespace optim
}  // namespace torch

namespace charlm {

struct LrSchedule {
  double base = 1e-3;
  std::int64_t warmupSteps = 0;
  std::int64_t totalSteps = 1;
  double minRatio = 1.0;
};

double scheduledLearningRate(const LrSchedule& schedule, std::int64_t step);
void setLearningRate(torch::optim::Optimizer& optimizer, double lr);

}  // namespace charlm
