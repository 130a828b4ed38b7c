// hearth/shard/zero_unit.h — a module wrapper that marks one unit of a model
// (a transformer block, say) for ZeRO stage 3 parameter partitioning.
//
// The C++ frontend has no module hooks, so a model opts in by wrapping:
//   blocks->push_back(hearth::ZeroUnit(Block(...)));   // instead of Block(...)
// and calling the unit's forward. Without a stage-3 ZeroEngine attached the
// wrapper just calls the inner module (so the same model trains unsharded).
// With one attached, forward() asks the engine to gather the unit's
// parameters, runs the inner module, releases them, and puts an identity
// autograd node on the output whose backward gathers them again before the
// unit's own backward runs (zero.h). Single tensor in, single tensor out.
//
// Activation checkpointing (checkpoint.h) composes: a checkpointed segment
// that contains units gathers them again when it recomputes.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/any.h>
#include <torch/nn/pimpl.h>

namespace hearth {

// Called by ZeroUnitImpl around its inner forward; implemented by the engine.
class ZeroUnitController {
 public:
  virtual ~ZeroUnitController() = default;
  virtual void beforeForward(int unit) = 0;
  virtual void afterForward(int unit) = 0;
  virtual void beforeBackward(int unit) = 0;
};

class ZeroUnitImpl : public torch::nn::Module {
 public:
  template <typename ModuleType>
  explicit ZeroUnitImpl(ModuleType module) : inner_(std::move(module)) {
    register_module("inner", inner_.ptr());
  }

  at::Tensor forward(const at::Tensor& input);

  torch::nn::AnyModule& inner() { return inner_; }
  // Used by the engine; nullptr detaches.
  void attach(ZeroUnitController* controller, int index) {
    controller_ = controller;
    index_ = index;
  }
  int index() const { return index_; }

 private:
  torch::nn::AnyModule inner_;
  ZeroUnitController* controller_ = nullptr;
  int index_ = -1;
};
TORCH_MODULE(ZeroUnit);

}  // namespace hearth
