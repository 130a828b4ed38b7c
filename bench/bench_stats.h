// bench_stats.h — small helpers the benchmark binaries share: the median of
// a sample and the slowest rank's figure (every rank must call it: it is a
// collective).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "hearth/transport/collectives.h"

namespace hearth::bench {

// Median of `values` (mean of the two middle ones for an even count); 0 when
// empty.
inline double median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const std::size_t n = values.size();
  return n % 2 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

// The largest `value` over all ranks of `collectives`.
inline double slowestRank(Collectives& collectives, double value, Millis timeout) {
  std::vector<std::uint8_t> mine(sizeof value);
  std::memcpy(mine.data(), &value, sizeof value);
  double slowest = 0;
  for (const auto& bytes : collectives.allgatherBytes(mine, timeout)) {
    double other = 0;
    std::memcpy(&other, bytes.data(), sizeof other);
    slowest = std::max(slowest, other);
  }
  return slowest;
}

}  // namespace hearth::bench
