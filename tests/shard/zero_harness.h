// Test harness for ZeRO: a small model with stage-3 units and an uneven
// parameter count, a deterministic global batch, a single-process reference
// and ranks as threads over inproc collectives.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>
#include <torch/optim/adam.h>
#include <torch/optim/adamw.h>
#include <torch/optim/sgd.h>
#include <torch/utils.h>

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "../engine/rank_threads.h"
#include "hearth/shard/zero.h"
#include "hearth/shard/zero_unit.h"
#include "hearth/transport/inproc.h"

namespace hearth::testing {

struct BlockImpl : torch::nn::Module {
  explicit BlockImpl(int width) { fc = register_module("fc", torch::nn::Linear(width, width)); }
  at::Tensor forward(const at::Tensor& x) { return torch::tanh(fc->forward(x)) + x; }
  torch::nn::Linear fc{nullptr};
};
TORCH_MODULE(Block);

// 13 -> 37 -> (2 units of 37x37) -> 2: 3406 parameters (odd split on 3 and 4
// ranks). Unit weights (1369) are partitioned at persistBelowNumel 64; biases
// and the outer layers stay whole.
struct NetImpl : torch::nn::Module {
  NetImpl() {
    in = register_module("in", torch::nn::Linear(13, 37));
    blocks = register_module("blocks", torch::nn::ModuleList());
    for (int i = 0; i < 2; ++i) blocks->push_back(ZeroUnit(Block(37)));
    out = register_module("out", torch::nn::Linear(37, 2));
  }
  at::Tensor forward(const at::Tensor& x) {
    at::Tensor h = torch::tanh(in->forward(x));
    for (const auto& block : *blocks) h = block->as<ZeroUnit>()->forward(h);
    return out->forward(h);
  }
  torch::nn::Linear in{nullptr}, out{nullptr};
  torch::nn::ModuleList blocks{nullptr};
};
TORCH_MODULE(Net);

inline Net makeNet(std::uint64_t seed) {
  std::lock_guard<std::mutex> lock(globalGeneratorMutex());
  torch::manual_seed(seed);
  return Net();
}

struct Batch {
  at::Tensor x, y;
};

inline Batch globalBatch(int step, int rows) {
  std::lock_guard<std::mutex> lock(globalGeneratorMutex());
  torch::manual_seed(1000 + step);
  return {torch::randn({rows, 13}), torch::randn({rows, 2})};
}

inline std::unique_ptr<torch::optim::Optimizer> makeOptimizer(const std::string& kind,
                                                              std::vector<at::Tensor> params) {
  if (kind == "sgd") {
    return std::make_unique<torch::optim::SGD>(
        params, torch::optim::SGDOptions(0.05).momentum(0.9).weight_decay(1e-3));
  }
  if (kind == "plainsgd") {
    return std::make_unique<torch::optim::SGD>(params, torch::optim::SGDOptions(0.05));
  }
  if (kind == "adamw") {
    return std::make_unique<torch::optim::AdamW>(
        params, torch::optim::AdamWOptions(0.01).weight_decay(0.1));
  }
  return std::make_unique<torch::optim::Adam>(params, torch::optim::AdamOptions(0.01));
}

inline at::Tensor loss(Net& net, const at::Tensor& x, const at::Tensor& y) {
  return (net->forward(x) - y).pow(2).mean();
}

inline std::vector<at::Tensor> snapshot(Net& net) {
  std::vector<at::Tensor> result;
  for (auto& p : net->parameters()) result.push_back(p.detach().clone());
  return result;
}

// One process, the whole batch of world*micro*accumulation rows per step.
inline std::vector<at::Tensor> trainReference(const std::string& optimizer, int steps, int rows) {
  Net net = makeNet(7);
  auto opt = makeOptimizer(optimizer, net->parameters());
  for (int s = 0; s < steps; ++s) {
    Batch batch = globalBatch(s, rows);
    opt->zero_grad();
    loss(net, batch.x, batch.y).backward();
    opt->step();
  }
  return snapshot(net);
}

// Rank `rank`'s run: starts from a different init (seed 7 + rank) to prove
// the initial broadcast; micro-batch m of rank r is a distinct slice.
inline std::vector<at::Tensor> trainRank(
    std::shared_ptr<Collectives> comm, const std::string& optimizer, int steps, int micro,
    ZeroOptions options, const std::function<void(ZeroEngine&, int)>& afterStep = {}) {
  const int world = comm->worldSize();
  const int rank = comm->rank();
  const int k = options.gradientAccumulationSteps;
  Net net = makeNet(7 + static_cast<std::uint64_t>(rank));
  auto opt = makeOptimizer(optimizer, net->parameters());
  ZeroEngine zero(*net, *opt, std::move(comm), options);
  for (int s = 0; s < steps; ++s) {
    Batch batch = globalBatch(s, world * micro * k);
    for (int m = 0; m < k; ++m) {
      const std::int64_t begin = (std::int64_t(m) * world + rank) * micro;
      zero.backward(loss(net, batch.x.narrow(0, begin, micro), batch.y.narrow(0, begin, micro)));
      zero.step();
    }
    if (afterStep) afterStep(zero, s);
  }
  return zero.fullParameters();
}

// Runs `body(rank, collectives)` on one thread per rank; rethrows the first
// failure naming its rank.
inline void runRanks(int world,
                     const std::function<void(int, std::shared_ptr<Collectives>)>& body) {
  auto group = makeInprocGroup(world);
  std::vector<std::shared_ptr<Collectives>> shared;
  for (auto& c : group) shared.push_back(std::move(c));
  runOnRankThreads(world, [&](int r) { body(r, shared[static_cast<std::size_t>(r)]); });
}

}  // namespace hearth::testing
