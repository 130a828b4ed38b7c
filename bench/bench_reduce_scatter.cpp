// bench_reduce_scatter — Gloo's reduce-scatter + allgather built from
// send/recv (reduceScatterSum then allgatherInPlace, even bounds) against
// Gloo's own allreduce of the same buffer, in the same processes and run.
//
//   hearthrun --standalone --nproc-per-node N build/bench/bench_reduce_scatter
//
// Every iteration checks the sums on rank-unique data. Rank 0 prints a table
// and one JSON line per size: the slowest rank's median ms of each, and the
// ratio (reduce-scatter + allgather over allreduce).
#include <ATen/Parallel.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <iostream>
#include <stdexcept>

#include "bench_stats.h"
#include "hearth/runtime/init.h"

namespace {

using hearth::bench::slowestRank;

// Median over `iterations` timed runs (after one warm-up) of `op` on `data`
// filled with rank + 1; each result must hold the full sum in `checked`.
double medianMs(hearth::Collectives& c, std::vector<float>& data, int iterations,
                hearth::Millis timeout, const std::function<void()>& op,
                const std::function<std::pair<std::size_t, std::size_t>()>& checked) {
  const int rank = c.rank(), world = c.worldSize();
  return hearth::bench::medianRunMs(c, data, rank, iterations, timeout, op, [&] {
    const auto [lo, hi] = checked();
    const float want = float(world) * float(world + 1) / 2;
    if (lo < hi && (data[lo] != want || data[hi - 1] != want)) {
      throw std::runtime_error("wrong sum " + std::to_string(data[lo]));
    }
  });
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Gloo reduceScatterSum + allgatherInPlace vs Gloo allreduce, same run"};
  int iterations = 5;
  std::vector<double> sizesMb = {16, 64};
  app.add_option("--iterations", iterations, "Timed iterations per size")
      ->check(CLI::PositiveNumber);
  app.add_option("--sizes-mb", sizesMb, "Buffer sizes in MiB");
  CLI11_PARSE(app, argc, argv);
  try {
    at::set_num_threads(1);
    const hearth::Millis timeout(300000);
    hearth::InitOptions options;
    options.backend = "gloo";
    options.timeout = timeout;
    auto ctx = hearth::init(options);
    hearth::Collectives& c = *ctx.collectives;
    const int rank = c.rank(), world = c.worldSize();
    if (rank == 0) {
      std::printf("bench_reduce_scatter: %s, %d ranks, %d iterations (median)\n",
                  c.backendName().c_str(), world, iterations);
      std::printf("%8s | %14s %16s | %8s\n", "MiB", "allreduce ms", "rs+allgather ms", "ratio");
    }
    for (double mb : sizesMb) {
      std::vector<float> data(static_cast<std::size_t>(mb * (1 << 20) / sizeof(float)));
      std::vector<std::size_t> bounds(world + 1, 0);
      for (int r = 0; r < world; ++r) {
        bounds[r + 1] = bounds[r] + data.size() / world + (r < int(data.size() % world) ? 1 : 0);
      }
      const auto all = [&] { return std::make_pair(std::size_t{0}, data.size()); };
      const double allreduceMs =
          slowestRank(c,
                      medianMs(
                          c, data, iterations, timeout,
                          [&] { c.allreduceSum(data.data(), data.size(), timeout); }, all),
                      timeout);
      const double splitMs = slowestRank(c,
                                         medianMs(
                                             c, data, iterations, timeout,
                                             [&] {
                                               c.reduceScatterSum(data.data(), bounds, timeout);
                                               c.allgatherInPlace(data.data(), bounds, timeout);
                                             },
                                             all),
                                         timeout);
      const double rsMs =
          slowestRank(c,
                      medianMs(
                          c, data, iterations, timeout,
                          [&] { c.reduceScatterSum(data.data(), bounds, timeout); },
                          [&] { return std::make_pair(bounds[rank], bounds[rank + 1]); }),
                      timeout);
      if (rank == 0) {
        std::printf("%8.1f | %14.2f %16.2f | %7.2fx  (reduce-scatter alone %.2f ms)\n", mb,
                    allreduceMs, splitMs, splitMs / allreduceMs, rsMs);
        std::cout << nlohmann::json{{"bench", "gloo_reduce_scatter_allgather"},
                                    {"world", world},
                                    {"mib", mb},
                                    {"allreduce_ms", allreduceMs},
                                    {"rs_allgather_ms", splitMs},
                                    {"reduce_scatter_ms", rsMs},
                                    {"ratio", splitMs / allreduceMs}}
                         .dump()
                  << std::endl;
      }
    }
    c.barrier(timeout);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_reduce_scatter: %s\n", e.what());
    return 1;
  }
  return 0;
}
