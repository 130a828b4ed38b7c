// mnist/net.h — the classifier of the MNIST example: a small CNN
// (conv 5x5 -> ReLU -> 2x2 max-pool, twice, then a hidden linear layer and
// a 10-way linear head) in the LibTorch C++ frontend.
//
// Net is a thin handle: the torch modules live in net.cpp so that callers do
// not compile the nn headers; module() is what hearth::Engine wraps. Weights
// come from torch's global generator (seed it with hearth::seedModel first).
// Not thread-safe (one training loop drives it).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <vector>

namespace torch {
namespace nn {
class Module;
}  // namespace nn
}  // namespace torch

namespace mnist {

struct NetOptions {
  std::int64_t channels = 8;  // first conv layer; the second has twice as many
  std::int64_t hidden = 64;
};

class CnnModule;  // the torch::nn::Module, defined in net.cpp

class Net {
 public:
  explicit Net(const NetOptions& options);
  torch::nn::Module& module();
  std::vector<at::Tensor> parameters() const;
  std::int64_t parameterCount() const;
  // float [N, 1, 28, 28] -> logits [N, 10].
  at::Tensor logits(const at::Tensor& images);
  // Mean cross-entropy in nats.
  at::Tensor loss(const at::Tensor& images, const at::Tensor& labels);

 private:
  std::shared_ptr<CnnModule> net_;
};

}  // namespace mnist
