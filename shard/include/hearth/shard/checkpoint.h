// hearth/shard/checkpoint.h — activation checkpointing: trade a second forward
// pass of a region for not keeping the region's activations between forward
// and backward.
//
// checkpoint(fn, inputs, parameters):
// - Forward runs fn(inputs) with grad mode off, so none of its intermediate
//   activations is kept. It saves the inputs (and only them) and the state of
//   the default random generators (CPU, plus every CUDA device's when LibTorch
//   has CUDA at run time).
// - Backward puts the saved generator state in place, re-runs fn with grad
//   mode on over detached copies of the inputs (each requiring grad iff the
//   original did), then puts the caller's generator state back, so dropout
//   draws the same masks as in the first run and the caller's random stream
//   ends where it would have ended without checkpointing. It then runs an
//   inner torch::autograd::backward from the recomputed outputs with the
//   incoming gradients and returns the inputs' gradients. Parameters used
//   inside fn accumulate into their .grad during that inner backward (as in
//   PyTorch's reentrant checkpoint), whether or not they are passed in
//   `parameters`.
// - `parameters`: the tensors requiring grad that fn uses without receiving
//   them as inputs (a module's weights). They are only needed so that the
//   outputs require grad when no input does (the first region of a network
//   whose input is data); passing them is always allowed and cheap.
// - With grad mode off (evaluation) fn just runs, nothing is saved.
// - Error: with grad mode on, if no input and no parameter requires grad,
//   checkpoint throws std::invalid_argument — backward would never reach fn,
//   and weights used inside it would silently get no gradient. Pass them as
//   `parameters`, or run fn under torch::NoGradGuard if no gradient is wanted.
// - Outputs that do not require grad after recomputation, outputs not used by
//   the loss (undefined incoming gradient) and integer outputs get no
//   gradient; fn may return no outputs at all (then nothing flows back).
//   Inputs that do not require grad get an undefined gradient.
// REQUIRES: fn is deterministic given its inputs, the generator state and the
// parameters (same number of outputs, same ops) and does not modify its
// inputs in place; the parameters are not modified between forward and
// backward. Not supported: double backward (create_graph through a
// checkpoint) and torch::autograd::grad() calls that expect parameter
// gradients to be returned rather than accumulated into .grad.
//
// CheckpointedSequential: a chain of single-tensor modules split into
// contiguous segments. Every segment except the last runs under checkpoint();
// the last segment runs normally, because backward starts with it: its
// activations would be recomputed straight away, so checkpointing it costs a
// forward pass and saves nothing at the peak. Hence segments == 1 means no
// checkpointing. Default segment count: ceil(sqrt(n)) — with ~sqrt(n)
// segments the memory is about (segment boundaries) + (one segment's
// activations) = O(sqrt(n)) layers, for one extra forward pass. Segments are
// as even as possible ([i*n/s, (i+1)*n/s)). Rounding sqrt(n) up, not to
// nearest, keeps the uncheckpointed last segment small (12 blocks: 4
// segments, 0.26 of the activation memory, against 0.34 with 3). Under no-grad (evaluation) the
// modules just run; a segment whose input and parameters need no gradient
// runs plainly too (it records no graph). Children are registered as "0", "1", ... like
// torch::nn::Sequential, so state dicts match. It is a plain Module (not
// Cloneable): clone() is not supported.
#pragma once

#include <cstddef>
#include <functional>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/any.h>
#include <torch/nn/pimpl.h>

namespace hearth {

using CheckpointFn = std::function<std::vector<at::Tensor>(const std::vector<at::Tensor>&)>;
using CheckpointUnaryFn = std::function<at::Tensor(const at::Tensor&)>;

std::vector<at::Tensor> checkpoint(CheckpointFn fn, const std::vector<at::Tensor>& inputs,
                                   const std::vector<at::Tensor>& parameters = {});

// Single tensor in, single tensor out.
at::Tensor checkpoint(CheckpointUnaryFn fn, const at::Tensor& input,
                      const std::vector<at::Tensor>& parameters = {});

class CheckpointedSequentialImpl : public torch::nn::Module {
 public:
  CheckpointedSequentialImpl() = default;
  // segments <= 0: ceil(sqrt(modules.size())).
  explicit CheckpointedSequentialImpl(std::vector<torch::nn::AnyModule> modules, int segments = 0);

  // Appends a module (any torch::nn module holder taking and returning one
  // tensor), registered under its index.
  void push_back(torch::nn::AnyModule module);
  template <typename M>
  void push_back(M module) {
    push_back(torch::nn::AnyModule(std::move(module)));
  }

  // Number of segments: clamped to [1, size()]; <= 0 restores the default.
  void setSegments(int segments);
  int segments() const;
  std::size_t size() const { return modules_.size(); }
  // [begin, end) module index range of segment i.
  std::pair<std::size_t, std::size_t> segmentRange(int i) const;

  at::Tensor forward(at::Tensor x);

 private:
  at::Tensor runRange(std::size_t begin, std::size_t end, at::Tensor x);
  std::vector<at::Tensor> rangeParameters(std::size_t begin, std::size_t end) const;

  std::vector<torch::nn::AnyModule> modules_;
  int segments_ = 0;  // 0: default
};
TORCH_MODULE(CheckpointedSequential);

}  // namespace hearth
