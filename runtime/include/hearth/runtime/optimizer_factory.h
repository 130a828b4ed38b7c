// hearth/runtime/optimizer_factory.h — builds the torch::optim optimizer named
// by the config's optimizer.type with optimizer.params.* (sgd, adam, adamw).
// Throws ConfigError for an unknown type. Pure construction; thread-safe.
#pragma once

#include <ATen/core/Tensor.h>

#include <memory>
#include <vector>

#include "hearth/runtime/config.h"

namespace torch {
namespace optim {
class Optimizer;
}  // namespace optim
}  // namespace torch

namespace hearth {

std::unique_ptr<torch::optim::Optimizer> makeOptimizer(const Config& config,
                                                       std::vector<at::Tensor> parameters);

}  // namespace hearth
