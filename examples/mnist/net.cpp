// The CNN.
#include "mnist/net.h"

#include <ATen/ops/cross_entropy_loss.h>
#include <ATen/ops/max_pool2d.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>

namespace mnist {

class CnnModule : public torch::nn::Module {
 public:
  explicit CnnModule(const NetOptions& o) {
    conv1_ = register_module(
        "conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(1, o.channels, 5).padding(2)));
    conv2_ = register_module(
        "conv2",
        torch::nn::Conv2d(torch::nn::Conv2dOptions(o.channels, 2 * o.channels, 5).padding(2)));
    fc_ = register_module("fc", torch::nn::Linear(2 * o.channels * 7 * 7, o.hidden));
    head_ = register_module("head", torch::nn::Linear(o.hidden, 10));
  }

  at::Tensor forward(const at::Tensor& images) {
    auto x = at::max_pool2d(conv1_->forward(images).relu(), {2, 2});  // [N, C, 14, 14]
    x = at::max_pool2d(conv2_->forward(x).relu(), {2, 2});            // [N, 2C, 7, 7]
    return head_->forward(fc_->forward(x.flatten(1)).relu());
  }

 private:
  torch::nn::Conv2d conv1_{nullptr}, conv2_{nullptr};
  torch::nn::Linear fc_{nullptr}, head_{nullptr};
};

Net::Net(const NetOptions& options) : net_(std::make_shared<CnnModule>(options)) {}

torch::nn::Module& Net::module() {
  return *net_;
}

std::vector<at::Tensor> Net::parameters() const {
  return net_->parameters();
}

std::int64_t Net::parameterCount() const {
  std::int64_t count = 0;
  for (const auto& p : net_->parameters()) count += p.numel();
  return count;
}

at::Tensor Net::logits(const at::Tensor& images) {
  return net_->forward(images);
}

at::Tensor Net::loss(const at::Tensor& images, const at::Tensor& labels) {
  return at::cross_entropy_loss(net_->forward(images), labels);
}

}  // namespace mnist
