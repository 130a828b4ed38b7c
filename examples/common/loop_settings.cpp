#include "common/loop_settings.h"

namespace hearth::examples {

LoopSettings readLoopSettings(const hearth::Config& config) {
  LoopSettings s;
  s.seed = static_cast<std::uint64_t>(config.getInt("seed"));
  s.microBatch = config.getInt("train_micro_batch_size_per_gpu");
  s.accumulation = config.getInt("gradient_accumulation_steps");
  s.logInterval = config.getInt("logging.log_interval");
  s.metricsFile = config.getString("logging.metrics_file");
  return s;
}

}  // namespace hearth::examples
