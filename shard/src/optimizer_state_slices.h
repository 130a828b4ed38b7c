// optimizer_state_slices.h (internal) — the per-parameter state of the
// element-wise torch::optim optimizers (Adam, AdamW, SGD, RMSprop, Adagrad) as
// named 1-D tensors plus JSON scalars, and back: what a ZeRO checkpoint stores
// for each shard tensor (zero_checkpoint.cpp, docs/checkpoints.md).
//
// Tensor fields are named after the ParamState accessors ("exp_avg",
// "exp_avg_sq", "max_exp_avg_sq", "momentum_buffer", "square_avg",
// "grad_avg", "sum"); optional fields that are undefined (amsgrad off, SGD
// without momentum, ...) are left out. Scalars: {"step": n} where the type
// has a step counter.
#pragma once

#include <ATen/core/Tensor.h>

#include <map>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

namespace torch::optim {
class Optimizer;
class OptimizerParamState;
}  // namespace torch::optim

namespace hearth::shard_detail {

// "adam", "adamw", "sgd", "rmsprop" or "adagrad"; "" for any other type.
std::string optimizerKind(const torch::optim::Optimizer& optimizer);
// The kinds optimizerKind names, for error messages ("adam, adamw, ...").
std::string supportedOptimizerKinds();
// The optimizer's defaults (lr, betas, momentum, ...) as JSON, for the record;
// empty object for an unsupported kind.
nlohmann::json optimizerOptionsJson(const torch::optim::Optimizer& optimizer);

struct ParamStateSlices {
  bool present = false;  // false: the optimizer holds no state for the tensor
  nlohmann::json scalars = nlohmann::json::object();
  std::map<std::string, at::Tensor> tensors;  // the optimizer's own tensors (not copies)
};

// The optimizer's state for `param` (looked up by its TensorImpl, as
// torch::optim does). Throws std::invalid_argument for an unsupported kind.
ParamStateSlices exportParamState(const torch::optim::Optimizer& optimizer,
                                  const at::Tensor& param);

// A new ParamState of `kind` from `scalars` and `tensors` (taken as they are).
// Throws std::invalid_argument naming the problem when a required field is
// missing, a field is unknown for the kind, or the kind is unsupported.
std::unique_ptr<torch::optim::OptimizerParamState> makeParamState(
    const std::string& kind, const nlohmann::json& scalars,
    const std::map<std::string, at::Tensor>& tensors);

// Replaces the optimizer's state for `param`; nullptr erases it.
void installParamState(torch::optim::Optimizer& optimizer, const at::Tensor& param,
                       std::unique_ptr<torch::optim::OptimizerParamState> state);

}  // namespace hearth::shard_detail
