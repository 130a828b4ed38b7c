// Test harness for data-parallel equivalence: a small MLP, a deterministic
// global batch, a single-process reference run and a data-parallel run with
// ranks as threads over any Collectives group.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/optim/adam.h>
#include <torch/optim/sgd.h>

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "hearth/runtime/engine.h"
#include "rank_threads.h"

namespace hearth::testing {

struct MlpImpl : torch::nn::Module {
  MlpImpl() {
    fc1 = register_module("fc1", torch::nn::Linear(13, 31));
    fc2 = register_module("fc2", torch::nn::Linear(31, 7));
    fc3 = register_module("fc3", torch::nn::Linear(7, 3));
  }
  at::Tensor forward(const at::Tensor& x) {
    return fc3->forward(torch::tanh(fc2->forward(torch::tanh(fc1->forward(x)))));
  }
  torch::nn::Linear fc1{nullptr}, fc2{nullptr}, fc3{nullptr};
};
TORCH_MODULE(Mlp);

inline Mlp makeMlp(std::uint64_t seed) {
  std::lock_guard<std::mutex> lock(globalGeneratorMutex());
  torch::manual_seed(seed);
  return Mlp();
}

struct Batch {
  at::Tensor x, y;
};

// Global batch for `step`: rows [r*B, (r+1)*B) belong to rank r.
inline Batch globalBatch(int step, int rows) {
  std::lock_guard<std::mutex> lock(globalGeneratorMutex());
  torch::manual_seed(1000 + step);
  auto x = torch::randn({rows, 13});
  auto y = torch::randn({rows, 3});
  return {x, y};
}

inline std::unique_ptr<torch::optim::Optimizer> makeOptimizer(const std::string& kind,
                                                              std::vector<at::Tensor> params) {
  if (kind == "sgd") {
    return std::make_unique<torch::optim::SGD>(
        params, torch::optim::SGDOptions(0.05).momentum(0.9).nesterov(false));
  }
  return std::make_unique<torch::optim::Adam>(params, torch::optim::AdamOptions(0.01));
}

inline at::Tensor mseLoss(Mlp& model, const at::Tensor& x, const at::Tensor& y) {
  return (model->forward(x) - y).pow(2).mean();
}

// One process, whole batch of world*micro*accumulation rows per step.
inline std::vector<at::Tensor> trainReference(const std::string& optimizer, int steps, int rows) {
  auto model = makeMlp(7);
  auto opt = makeOptimizer(optimizer, model->parameters());
  for (int s = 0; s < steps; ++s) {
    auto batch = globalBatch(s, rows);
    opt->zero_grad();
    mseLoss(model, batch.x, batch.y).backward();
    opt->step();
  }
  std::vector<at::Tensor> result;
  for (auto& p : model->parameters()) result.push_back(p.detach().clone());
  return result;
}

// Trains rank `rank` of `world` for `steps` optimizer steps; rank r starts
// from a *different* init (seed 7 + r) to prove the Engine's initial
// broadcast. Micro-batch m of rank r is a distinct slice of the global batch.
inline std::vector<at::Tensor> trainRank(std::shared_ptr<Collectives> comm,
                                         const std::string& optimizer, int steps, int micro,
                                         EngineOptions options) {
  const int world = comm->worldSize();
  const int rank = comm->rank();
  const int k = options.gradientAccumulationSteps;
  auto model = makeMlp(7 + rank);
  auto opt = makeOptimizer(optimizer, model->parameters());
  Engine engine(*model, *opt, std::move(comm), options);
  for (int s = 0; s < steps; ++s) {
    auto batch = globalBatch(s, world * micro * k);
    for (int m = 0; m < k; ++m) {
      const int64_t begin = (int64_t(m) * world + rank) * micro;
      engine.backward(
          mseLoss(model, batch.x.narrow(0, begin, micro), batch.y.narrow(0, begin, micro)));
      engine.step();
    }
  }
  std::vector<at::Tensor> result;
  for (auto& p : model->parameters()) result.push_back(p.detach().clone());
  return result;
}

// Ranks as threads. Returns each rank's final parameters.
inline std::vector<std::vector<at::Tensor>> trainDataParallel(
    std::vector<std::shared_ptr<Collectives>> group, const std::string& optimizer, int steps,
    int micro, EngineOptions options) {
  const int world = static_cast<int>(group.size());
  std::vector<std::vector<at::Tensor>> finals(world);
  runOnRankThreads(
      world, [&](int r) { finals[r] = trainRank(group[r], optimizer, steps, micro, options); });
  return finals;
}

}  // namespace hearth::testing
