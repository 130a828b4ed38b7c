// bench_stats.h — small helpers the benchmark binaries share: the median of
// a sample, the slowest rank's figure (every rank must call it: it is a
// collective) and the median time of a timed collective run.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
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

// Milliseconds of `op`: one warm-up run, then `iterations` timed runs; before
// each, `data` is filled with `rank` + 1 and the ranks of `c` meet at a
// barrier; after each, `check()` (which throws on a wrong result). Returns the
// middle of the sorted times (the upper of the two middle ones for an even
// count).
inline double medianRunMs(Collectives& c, std::vector<float>& data, int rank, int iterations,
                          Millis timeout, const std::function<void()>& op,
                          const std::function<void()>& check) {
  std::vector<double> ms;
  for (int i = 0; i < iterations + 1; ++i) {
    std::fill(data.begin(), data.end(), float(rank + 1));
    c.barrier(timeout);
    const auto start = std::chrono::steady_clock::now();
    op();
    const double elapsed =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    check();
    if (i > 0) ms.push_back(elapsed);  // the first one warms up
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

}  // namespace hearth::bench
