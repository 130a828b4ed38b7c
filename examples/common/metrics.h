// common/metrics.h — opening the examples' JSONL metrics file.
// Thread-safe (each call opens its own writer).
#pragma once

#include <string>

#include "hearth/runtime/metrics.h"

namespace hearth::examples {

// A MetricsWriter on `path` (empty: one that writes nothing). A file that
// cannot be opened throws hearth::ConfigError naming logging.metrics_file.
hearth::MetricsWriter openMetrics(const std::string& path);

}  // namespace hearth::examples
