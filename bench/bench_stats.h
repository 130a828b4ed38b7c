// bench_stats.h — small helpers the benchmark binaries share: the median of
// a sample, the slowest rank's figure (every rank must call it: it is a
// collective) and the median time of a timed collective run.
#pragma once

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>
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

// Throws std::runtime_error unless data (after an allreduce of every rank's
// rank + 1, as interleavedMedianRunMs fills it) holds the sum at both ends.
inline void checkRankSum(Collectives& c, const std::vector<float>& data, int world) {
  const float expected = float(world) * float(world + 1) / 2;
  if (!data.empty() && (data.front() != expected || data.back() != expected)) {
    throw std::runtime_error(c.backendName() + ": wrong sum " + std::to_string(data.front()));
  }
}

// CPU time of this process so far, all its threads, user + system, in ms.
inline double processCpuMs() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const auto ms = [](const timeval& t) { return double(t.tv_sec) * 1e3 + double(t.tv_usec) / 1e3; };
  return ms(usage.ru_utime) + ms(usage.ru_stime);
}

// The timed runs of medianRunMs for several backends at once, interleaved
// (round i runs op(0), op(1), ... in turn), so that a machine whose load
// drifts during the benchmark slows every backend alike. Before each run
// `data` is filled with `rank` + 1 and the ranks meet at a barrier of that
// backend; after it, check(b) throws on a wrong result. Returns one median
// per backend (the upper middle value for an even count). With cpuMs: also
// this process's CPU time per timed run of each backend (processCpuMs, a
// mean): on a machine with fewer cores than ranks the figure that decides
// the wall time, and steadier than it.
inline std::vector<double> interleavedMedianRunMs(const std::vector<Collectives*>& backends,
                                                  std::vector<float>& data, int rank,
                                                  int iterations, Millis timeout,
                                                  const std::function<void(std::size_t)>& op,
                                                  const std::function<void(std::size_t)>& check,
                                                  std::vector<double>* cpuMs = nullptr) {
  std::vector<std::vector<double>> ms(backends.size());
  std::vector<double> cpu(backends.size(), 0.0);
  for (int i = 0; i < iterations + 1; ++i) {
    for (std::size_t b = 0; b < backends.size(); ++b) {
      std::fill(data.begin(), data.end(), float(rank + 1));
      backends[b]->barrier(timeout);
      const double cpuStart = processCpuMs();
      const auto start = std::chrono::steady_clock::now();
      op(b);
      const double elapsed =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
              .count();
      const double cpuUsed = processCpuMs() - cpuStart;
      check(b);
      if (i > 0) {  // the first round warms up
        ms[b].push_back(elapsed);
        cpu[b] += cpuUsed / iterations;
      }
    }
  }
  if (cpuMs != nullptr) *cpuMs = cpu;
  std::vector<double> medians;
  for (auto& sample : ms) {
    std::sort(sample.begin(), sample.end());
    medians.push_back(sample[sample.size() / 2]);
  }
  return medians;
}

// Milliseconds of `op` on one backend: one warm-up run, then `iterations`
// timed runs, each prepared and checked as above; the median.
inline double medianRunMs(Collectives& c, std::vector<float>& data, int rank, int iterations,
                          Millis timeout, const std::function<void()>& op,
                          const std::function<void()>& check) {
  return interleavedMedianRunMs(
      {&c}, data, rank, iterations, timeout, [&](std::size_t) { op(); },
      [&](std::size_t) { check(); })[0];
}

}  // namespace hearth::bench
