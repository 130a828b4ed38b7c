// bench_engine — the Engine's bucketed gradient averaging against calling
// ProcessGroupGloo allreduce once per parameter tensor (what a naive C++
// data-parallel loop does), on the same process group, in the same run.
//
// Run under the launcher, one process per rank:
//   hearthrun --standalone --nproc-per-node 2 build/bench/bench_engine
// Each method does: backward of a loss whose gradient for tensor j is a
// rank-unique constant, then averaging; the result is checked on every
// iteration. Reported: median milliseconds per step and the ratio
// per-tensor / bucketed. Rank 0 prints a table and one JSON line per model.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/optim/sgd.h>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>

#include "bench_stats.h"
#include "hearth/hearth.h"
#include "hearth/runtime/gloo_backend.h"

namespace {

using hearth::bench::median;

using Clock = std::chrono::steady_clock;

struct ModelShape {
  std::string name;
  std::vector<int64_t> numels;
};

// A transformer-like parameter list: per block 4 matrices, 4 biases and two
// LayerNorms (weight + bias), i.e. 12 tensors per block.
ModelShape transformerLike(int blocks, int width) {
  ModelShape shape{"transformer-" + std::to_string(blocks) + "x" + std::to_string(width), {}};
  for (int b = 0; b < blocks; ++b) {
    for (int m = 0; m < 4; ++m) {
      shape.numels.push_back(int64_t(width) * width);
      shape.numels.push_back(width);
    }
    for (int n = 0; n < 4; ++n) shape.numels.push_back(width);
  }
  return shape;
}

ModelShape manySmall(int count, int size) {
  return {"small-" + std::to_string(count) + "x" + std::to_string(size),
          std::vector<int64_t>(count, size)};
}

struct Setup {
  std::vector<at::Tensor> params;
  std::vector<at::Tensor> coefficients;  // rank-unique gradient values
};

Setup makeSetup(const ModelShape& shape, int rank) {
  Setup s;
  for (auto n : shape.numels) {
    s.params.push_back(at::zeros({n}).set_requires_grad(true));
    s.coefficients.push_back(at::full({n}, float(rank + 1)));
  }
  return s;
}

at::Tensor lossOf(const Setup& s) {
  at::Tensor loss = at::zeros({});
  for (std::size_t j = 0; j < s.params.size(); ++j)
    loss = loss + (s.params[j] * s.coefficients[j]).sum();
  return loss;
}

void checkAveraged(const Setup& s, int world, const char* method) {
  const float expected = float(world + 1) / 2.0f;
  for (std::size_t j = 0; j < s.params.size(); ++j) {
    const auto g = s.params[j].grad();
    const float lo = g.min().item<float>(), hi = g.max().item<float>();
    if (std::abs(lo - expected) > 1e-5f || std::abs(hi - expected) > 1e-5f) {
      throw std::runtime_error(std::string(method) + ": tensor " + std::to_string(j) +
                               " averaged to [" + std::to_string(lo) + ", " + std::to_string(hi) +
                               "], expected " + std::to_string(expected));
    }
  }
}

template <typename Step>
double timeMethod(int warmup, int iterations, hearth::Collectives& comm, Step step) {
  for (int i = 0; i < warmup; ++i) step();
  std::vector<double> ms;
  for (int i = 0; i < iterations; ++i) {
    comm.barrier(hearth::Millis(60000));
    const auto start = Clock::now();
    step();
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
  }
  // Every rank reports rank 0's view; ranks are synchronized per iteration.
  return median(ms);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Engine gradient averaging vs per-tensor ProcessGroupGloo allreduce"};
  int iterations = 20;
  int warmup = 3;
  double bucketMb = 25.0;
  app.add_option("--iterations", iterations, "Timed iterations per method")
      ->check(CLI::PositiveNumber);
  app.add_option("--warmup", warmup, "Untimed iterations per method")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--bucket-mb", bucketMb, "Engine bucket cap in MiB")->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);

  try {
    at::set_num_threads(1);
    auto ctx = hearth::init();
    auto* gloo = hearth::glooGroupOf(*ctx.collectives);
    const int world = ctx.worldSize();
    const hearth::Millis timeout(60000);
    if (ctx.isRank0()) {
      std::printf("bench_engine: %d ranks, backend %s, bucket cap %.1f MiB, %d iterations\n", world,
                  ctx.collectives->backendName().c_str(), bucketMb, iterations);
      std::printf("%-22s %8s %10s | %12s %14s %14s | %8s %8s\n", "model", "tensors", "floats",
                  "bucketed ms", "per-tensor ms", "async-each ms", "speedup", "vs async");
    }
    for (const auto& shape :
         {manySmall(400, 256), transformerLike(24, 128), transformerLike(8, 512)}) {
      std::int64_t floats = 0;
      for (auto n : shape.numels) floats += n;

      // 1. hearth Engine: bucketed, overlapped with backward.
      auto engineSetup = makeSetup(shape, ctx.rank());
      torch::optim::SGD engineOpt(engineSetup.params, torch::optim::SGDOptions(0.0));
      hearth::EngineOptions options;
      options.bucketCapMb = bucketMb;
      hearth::Engine engine(engineSetup.params, {}, engineOpt, ctx.collectives, options);
      const double bucketed = timeMethod(warmup, iterations, *ctx.collectives, [&] {
        engine.zeroGrad();
        engine.backward(lossOf(engineSetup));
        checkAveraged(engineSetup, world, "bucketed");
      });

      // 2. Baseline: backward, then one blocking allreduce per tensor.
      auto naive = makeSetup(shape, ctx.rank());
      auto perTensor = [&](bool async) {
        for (auto& p : naive.params) {
          if (p.grad().defined()) p.mutable_grad().zero_();
        }
        lossOf(naive).backward();
        std::vector<c10::intrusive_ptr<c10d::Work>> works;
        for (auto& p : naive.params) {
          std::vector<at::Tensor> t{p.grad()};
          auto work = gloo->allreduce(t);
          if (async) {
            works.push_back(work);
          } else {
            work->wait(timeout);
          }
        }
        for (auto& w : works) w->wait(timeout);
        for (auto& p : naive.params) p.mutable_grad().div_(world);
        checkAveraged(naive, world, "per-tensor");
      };
      const double sync =
          timeMethod(warmup, iterations, *ctx.collectives, [&] { perTensor(false); });
      // 3. Baseline: backward, then all per-tensor allreduces in flight at once.
      const double async =
          timeMethod(warmup, iterations, *ctx.collectives, [&] { perTensor(true); });

      if (ctx.isRank0()) {
        std::printf("%-22s %8zu %10lld | %12.2f %14.2f %14.2f | %7.2fx %7.2fx\n",
                    shape.name.c_str(), shape.numels.size(), static_cast<long long>(floats),
                    bucketed, sync, async, sync / bucketed, async / bucketed);
        nlohmann::json record = {{"bench", "engine_averaging"},
                                 {"world", world},
                                 {"model", shape.name},
                                 {"tensors", shape.numels.size()},
                                 {"floats", floats},
                                 {"buckets", engine.numBuckets()},
                                 {"bucketed_ms", bucketed},
                                 {"per_tensor_ms", sync},
                                 {"per_tensor_async_ms", async},
                                 {"speedup", sync / bucketed},
                                 {"speedup_vs_async", async / bucketed}};
        std::cout << record.dump() << std::endl;
      }
    }
    ctx.collectives->barrier(timeout);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_engine: %s\n", e.what());
    return 1;
  }
  return 0;
}
