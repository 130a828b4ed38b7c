// Opening the metrics file, with a configuration error naming its key.
#include "common/metrics.h"

#include <stdexcept>

#include "hearth/runtime/config.h"

namespace hearth::examples {

hearth::MetricsWriter openMetrics(const std::string& path) {
  try {
    return hearth::MetricsWriter(path);
  } catch (const std::runtime_error& e) {
    throw hearth::ConfigError(std::string("config: logging.metrics_file: ") + e.what());
  }
}

}  // namespace hearth::examples
