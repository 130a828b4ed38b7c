#include "hearth/runtime/optimizer_factory.h"

#include "compression_settings.h"

#include <torch/optim/adam.h>
#include <torch/optim/adamw.h>
#include <torch/optim/sgd.h>

namespace hearth {

std::unique_ptr<torch::optim::Optimizer> makeOptimizer(const Config& config,
                                                       std::vector<at::Tensor> parameters) {
  const std::string type = config.getString("optimizer.type");
  const double lr = config.getFloat("optimizer.params.lr");
  const double weightDecay = config.getFloat("optimizer.params.weight_decay");
  if (type == "sgd") {
    torch::optim::SGDOptions options(lr);
    if (resolveCompression(config).optimizerMomentumMoved) {
      // The codec (DGC) applies momentum, the Engine the weight decay.
      return std::make_unique<torch::optim::SGD>(std::move(parameters), options);
    }
    options.momentum(config.getFloat("optimizer.params.momentum"))
        .nesterov(config.getBool("optimizer.params.nesterov"))
        .weight_decay(weightDecay);
    if (options.nesterov() && options.momentum() <= 0) {
      throw ConfigError("config: optimizer.params.nesterov needs optimizer.params.momentum > 0");
    }
    return std::make_unique<torch::optim::SGD>(std::move(parameters), options);
  }
  const auto betas = config.getFloatList("optimizer.params.betas");
  const double eps = config.getFloat("optimizer.params.eps");
  if (type == "adam") {
    torch::optim::AdamOptions options(lr);
    options.betas({betas[0], betas[1]}).eps(eps).weight_decay(weightDecay);
    return std::make_unique<torch::optim::Adam>(std::move(parameters), options);
  }
  if (type == "adamw") {
    torch::optim::AdamWOptions options(lr);
    options.betas({betas[0], betas[1]}).eps(eps).weight_decay(weightDecay);
    return std::make_unique<torch::optim::AdamW>(std::move(parameters), options);
  }
  throw ConfigError("config: optimizer.type '" + type + "' is not one of sgd, adam, adamw");
}

}  // namespace hearth
