// charlm/gpt.h — a small GPT-style decoder-only transformer for char-level
// language modelling, written with the LibTorch C++ frontend.
//
// Architecture: token + learned position embeddings, nLayer pre-LayerNorm
// blocks (causal multi-head self-attention written out with a lower-triangular
// mask, then a 4x GELU MLP, each in a residual branch), a final LayerNorm and
// a linear head to vocabulary logits. Weights start GPT-2 style (normal, std
// 0.02; residual projections scaled down by sqrt(2 nLayer); zero biases), drawn
// from torch's global generator (seed it with hearth::seedModel first).
//
// Gpt is a thin handle: the torch modules live in gpt.cpp so that callers do
// not compile the nn headers. module() is what hearth::Engine wraps.
// REQUIRES: nEmbd % nHead == 0, inputs of at most blockSize positions.
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

namespace charlm {

struct GptOptions {
  std::int64_t vocabSize = 0;
  std::int64_t blockSize = 64;
  std::int64_t nLayer = 2;
  std::int64_t nHead = 4;
  std::int64_t nEmbd = 64;
  double dropout = 0.0;
  // Activation checkpointing: 0 off, -1 ceil(sqrt(nLayer)), else segments.
  std::int64_t checkpointSegments = 0;
};

class GptNet;  // the torch::nn::Module, defined in gpt.cpp

class Gpt {
 public:
  explicit Gpt(const GptOptions& options);

  torch::nn::Module& module();
  std::vector<at::Tensor> parameters() const;
  std::int64_t parameterCount() const;
  const GptOptions& options() const { return options_; }

  // int64 token ids [batch, time] -> logits [batch, time, vocab].
  at::Tensor logits(const at::Tensor& tokens);
  // Mean next-character cross-entropy in nats.
  at::Tensor loss(const at::Tensor& tokens, const at::Tensor& targets);
  // Training mode enables dropout; evaluation and sampling turn it off.
  void setTraining(bool training);

  // Autoregressive sampling: extends `prompt` (token ids) by `count` tokens,
  // each drawn from softmax(logits / temperature) with torch's global
  // generator, conditioning on at most the last blockSize tokens. No grad.
  std::vector<std::int64_t> generate(std::vector<std::int64_t> prompt, std::int64_t count,
                                     double temperature);

 private:
  GptOptions options_;
  std::shared_ptr<GptNet> net_;
};

}  // namespace charlm
