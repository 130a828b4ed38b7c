// checkpoint(): a custom autograd function that keeps only the inputs and the
// generator state, and recomputes the region in backward.
#include "hearth/shard/checkpoint.h"

#include <stdexcept>
#include <string>
#include <utility>

#include <ATen/core/ivalue.h>
#include <c10/core/GradMode.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/custom_function.h>

#include "checkpoint_rng.h"

namespace hearth {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// What backward needs besides the saved inputs. Travels in ctx->saved_data as
// an IValue capsule (the only IValue kind that holds an arbitrary C++ object).
struct CheckpointState : torch::CustomClassHolder {
  CheckpointFn fn;
  std::size_t numInputs = 0;       // the first numInputs tensors are fn's inputs,
  std::vector<bool> requiresGrad;  // the rest are parameters (edges only)
  std::size_t numParams = 0;
  checkpoint_detail::RngState rng;  // generator state before the first run
};

const char* const kStateKey = "hearth_checkpoint_state";

struct CheckpointFunction : torch::autograd::Function<CheckpointFunction> {
  static variable_list forward(AutogradContext* ctx, c10::intrusive_ptr<CheckpointState> state,
                               at::TensorList all) {
    ctx->set_materialize_grads(false);  // unused outputs: undefined grads, no zero tensors
    state->rng = checkpoint_detail::RngState::capture();
    std::vector<at::Tensor> inputs(all.begin(), all.begin() + state->numInputs);
    std::vector<at::Tensor> outputs;
    {
      c10::AutoGradMode noGrad(false);
      outputs = state->fn(inputs);
    }
    ctx->save_for_backward(inputs);
    ctx->saved_data[kStateKey] = c10::IValue::make_capsule(state);
    return outputs;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto state = c10::static_intrusive_pointer_cast<CheckpointState>(
        ctx->saved_data.at(kStateKey).toCapsule());
    const variable_list saved = ctx->get_saved_variables();

    std::vector<at::Tensor> detached(state->numInputs);
    for (std::size_t i = 0; i < state->numInputs; ++i) {
      if (!saved[i].defined()) continue;
      detached[i] = saved[i].detach();
      if (state->requiresGrad[i]) detached[i].set_requires_grad(true);
    }

    std::vector<at::Tensor> outputs;
    {
      checkpoint_detail::RngStateGuard callerStream;  // put back after recomputing
      state->rng.restore();
      c10::AutoGradMode withGrad(true);
      outputs = state->fn(detached);
    }
    if (outputs.size() != grads.size()) {
      throw std::runtime_error("checkpoint: recomputation returned " +
                               std::to_string(outputs.size()) + " outputs, the first run " +
                               std::to_string(grads.size()) + " (fn must be deterministic)");
    }

    variable_list roots;
    variable_list rootGrads;
    for (std::size_t i = 0; i < outputs.size(); ++i) {
      if (!outputs[i].defined() || !outputs[i].requires_grad() || !grads[i].defined()) continue;
      roots.push_back(outputs[i]);
      rootGrads.push_back(grads[i]);
    }
    if (!roots.empty()) {
      // Reentrant: accumulates into the .grad of the detached inputs and of
      // every parameter fn used.
      torch::autograd::backward(roots, rootGrads);
    }

    // One entry per forward argument: the state (none), then each tensor.
    variable_list result;
    result.reserve(1 + saved.size());
    result.emplace_back();
    for (std::size_t i = 0; i < state->numInputs; ++i) {
      result.push_back(detached[i].defined() && state->requiresGrad[i] ? detached[i].grad()
                                                                       : at::Tensor());
    }
    result.resize(result.size() + state->numParams);  // parameters: already accumulated
    return result;
  }
};

}  // namespace

std::vector<at::Tensor> checkpoint(CheckpointFn fn, const std::vector<at::Tensor>& inputs,
                                   const std::vector<at::Tensor>& parameters) {
  if (!fn) throw std::invalid_argument("checkpoint: empty function");
  if (!c10::GradMode::is_enabled()) return fn(inputs);

  auto state = c10::make_intrusive<CheckpointState>();
  state->fn = std::move(fn);
  state->numInputs = inputs.size();
  bool anyGrad = false;
  for (const at::Tensor& t : inputs) {
    const bool rg = t.defined() && t.requires_grad();
    state->requiresGrad.push_back(rg);
    anyGrad = anyGrad || rg;
  }
  std::vector<at::Tensor> all = inputs;
  for (const at::Tensor& p : parameters) {
    if (p.defined() && p.requires_grad()) all.push_back(p);
  }
  state->numParams = all.size() - inputs.size();
  if (!anyGrad && state->numParams == 0) {
    throw std::invalid_argument(
        "checkpoint: grad mode is on but no input and no parameter requires grad, so backward "
        "would never reach the checkpointed function and weights used inside it would get no "
        "gradient. Pass them as `parameters`, or run the function under torch::NoGradGuard.");
  }
  return CheckpointFunction::apply(state, at::TensorList(all));
}

at::Tensor checkpoint(CheckpointUnaryFn fn, const at::Tensor& input,
                      const std::vector<at::Tensor>& parameters) {
  if (!fn) throw std::invalid_argument("checkpoint: empty function");
  CheckpointFn wrapped = [fn = std::move(fn)](const std::vector<at::Tensor>& in) {
    return std::vector<at::Tensor>{fn(in.at(0))};
  };
  return checkpoint(std::move(wrapped), std::vector<at::Tensor>{input}, parameters).at(0);
}

}  // namespace hearth
