// ZeroUnitImpl::forward: gather, run, release, and a pre-backward gather hook.
#include "hearth/shard/zero_unit.h"

#include <ATen/core/grad_mode.h>
#include <torch/csrc/autograd/custom_function.h>

#include <cstdint>

namespace hearth {
namespace {

// Identity on the unit's output whose backward first gathers the unit's
// parameters again, so that the unit's backward finds them in place.
struct PreBackwardGather : torch::autograd::Function<PreBackwardGather> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& output,
                            std::int64_t controller, std::int64_t unit) {
    ctx->saved_data["controller"] = controller;
    ctx->saved_data["unit"] = unit;
    return output;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto* controller = reinterpret_cast<ZeroUnitController*>(ctx->saved_data["controller"].toInt());
    controller->beforeBackward(static_cast<int>(ctx->saved_data["unit"].toInt()));
    return {grads[0], at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor ZeroUnitImpl::forward(const at::Tensor& input) {
  if (controller_ == nullptr) return inner_.forward<at::Tensor>(input);
  controller_->beforeForward(index_);
  at::Tensor output;
  try {
    output = inner_.forward<at::Tensor>(input);
  } catch (...) {
    controller_->afterForward(index_);
    throw;
  }
  controller_->afterForward(index_);
  if (!at::GradMode::is_enabled() || !output.requires_grad()) return output;
  return PreBackwardGather::apply(
      output, static_cast<std::int64_t>(reinterpret_cast<std::intptr_t>(controller_)),
      static_cast<std::int64_t>(index_));
}

}  // namespace hearth
