// optimizerStateBytes: sums the tensors of known optimizer state types.
#include "optimizer_state_bytes.h"

#include <torch/optim/adagrad.h>
#include <torch/optim/adam.h>
#include <torch/optim/adamw.h>
#include <torch/optim/optimizer.h>
#include <torch/optim/rmsprop.h>
#include <torch/optim/sgd.h>

namespace hearth::shard_detail {
namespace {

std::size_t bytesOf(const at::Tensor& t) {
  return t.defined() ? t.nbytes() : 0;
}

std::size_t stateBytes(const torch::optim::OptimizerParamState& state) {
  if (auto* s = dynamic_cast<const torch::optim::AdamParamState*>(&state)) {
    return bytesOf(s->exp_avg()) + bytesOf(s->exp_avg_sq()) + bytesOf(s->max_exp_avg_sq());
  }
  if (auto* s = dynamic_cast<const torch::optim::AdamWParamState*>(&state)) {
    return bytesOf(s->exp_avg()) + bytesOf(s->exp_avg_sq()) + bytesOf(s->max_exp_avg_sq());
  }
  if (auto* s = dynamic_cast<const torch::optim::SGDParamState*>(&state)) {
    return bytesOf(s->momentum_buffer());
  }
  if (auto* s = dynamic_cast<const torch::optim::RMSpropParamState*>(&state)) {
    return bytesOf(s->square_avg()) + bytesOf(s->momentum_buffer()) + bytesOf(s->grad_avg());
  }
  if (auto* s = dynamic_cast<const torch::optim::AdagradParamState*>(&state)) {
    return bytesOf(s->sum());
  }
  return 0;
}

}  // namespace

std::size_t optimizerStateBytes(const torch::optim::Optimizer& optimizer) {
  std::size_t total = 0;
  for (const auto& entry : optimizer.state()) total += stateBytes(*entry.second);
  return total;
}

}  // namespace hearth::shard_detail
