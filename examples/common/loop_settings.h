// common/loop_settings.h — the engine keys every example's training loop
// reads (seed, micro batch, accumulation, log interval, metrics file), read
// in one place. Example settings derive from LoopSettings. Pure; thread-safe.
#pragma once

#include <cstdint>
#include <string>

#include "hearth/runtime/config.h"

namespace hearth::examples {

struct LoopSettings {
  std::uint64_t seed = 0;
  std::int64_t microBatch = 0;
  std::int64_t accumulation = 1;
  std::int64_t logInterval = 0;
  std::string metricsFile;
};

// REQUIRES: config's schema extends hearth::engineConfigSchema().
LoopSettings readLoopSettings(const hearth::Config& config);

}  // namespace hearth::examples
