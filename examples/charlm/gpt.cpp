// The transformer itself: attention, MLP, blocks and the full network.
#include "charlm/gpt.h"

#include <ATen/ops/arange.h>
#include <ATen/ops/cross_entropy_loss.h>
#include <ATen/ops/from_blob.h>
#include <ATen/ops/gelu.h>
#include <ATen/ops/multinomial.h>
#include <ATen/ops/ones.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include <ATen/core/grad_mode.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "hearth/shard/checkpoint.h"
#include "hearth/shard/zero_unit.h"

namespace charlm {
namespace {

// Multi-head self-attention where position t only sees positions <= t.
class CausalSelfAttention : public torch::nn::Module {
 public:
  explicit CausalSelfAttention(const GptOptions& o) : nHead_(o.nHead) {
    qkv_ = register_module("qkv", torch::nn::Linear(o.nEmbd, 3 * o.nEmbd));
    proj_ = register_module("proj", torch::nn::Linear(o.nEmbd, o.nEmbd));
    attentionDropout_ = register_module("attention_dropout", torch::nn::Dropout(o.dropout));
    residualDropout_ = register_module("residual_dropout", torch::nn::Dropout(o.dropout));
    // true above the diagonal: the future positions a query must not attend to.
    future_ =
        register_buffer("future_mask", at::ones({o.blockSize, o.blockSize}, at::kBool).triu(1));
  }

  at::Tensor forward(const at::Tensor& x) {
    const auto batch = x.size(0), time = x.size(1), channels = x.size(2);
    const auto headDim = channels / nHead_;
    // [batch, time, 3 * channels] -> three tensors of [batch, head, time, headDim]
    const auto qkv =
        qkv_->forward(x).view({batch, time, 3, nHead_, headDim}).permute({2, 0, 3, 1, 4});
    const auto q = qkv[0], k = qkv[1], v = qkv[2];
    auto scores = q.matmul(k.transpose(-2, -1)) * (1.0 / std::sqrt(static_cast<double>(headDim)));
    scores = scores.masked_fill(future_.slice(0, 0, time).slice(1, 0, time),
                                -std::numeric_limits<float>::infinity());
    const auto weights = attentionDropout_->forward(scores.softmax(-1));
    const auto y = weights.matmul(v).transpose(1, 2).reshape({batch, time, channels});
    return residualDropout_->forward(proj_->forward(y));
  }

 private:
  std::int64_t nHead_;
  torch::nn::Linear qkv_{nullptr}, proj_{nullptr};
  torch::nn::Dropout attentionDropout_{nullptr}, residualDropout_{nullptr};
  at::Tensor future_;
};

// Position-wise feed-forward network: expand 4x, GELU, project back.
class Mlp : public torch::nn::Module {
 public:
  explicit Mlp(const GptOptions& o) {
    fc_ = register_module("fc", torch::nn::Linear(o.nEmbd, 4 * o.nEmbd));
    proj_ = register_module("proj", torch::nn::Linear(4 * o.nEmbd, o.nEmbd));
    dropout_ = register_module("dropout", torch::nn::Dropout(o.dropout));
  }
  at::Tensor forward(const at::Tensor& x) {
    return dropout_->forward(proj_->forward(at::gelu(fc_->forward(x))));
  }

 private:
  torch::nn::Linear fc_{nullptr}, proj_{nullptr};
  torch::nn::Dropout dropout_{nullptr};
};

// Pre-LayerNorm transformer block: x + attention(ln(x)), then x + mlp(ln(x)).
class Block : public torch::nn::Module {
 public:
  explicit Block(const GptOptions& o) {
    const torch::nn::LayerNormOptions norm({o.nEmbd});
    norm1_ = register_module("ln1", torch::nn::LayerNorm(norm));
    attention_ = register_module("attention", std::make_shared<CausalSelfAttention>(o));
    norm2_ = register_module("ln2", torch::nn::LayerNorm(norm));
    mlp_ = register_module("mlp", std::make_shared<Mlp>(o));
  }
  at::Tensor forward(at::Tensor x) {
    x = x + attention_->forward(norm1_->forward(x));
    return x + mlp_->forward(norm2_->forward(x));
  }

 private:
  torch::nn::LayerNorm norm1_{nullptr}, norm2_{nullptr};
  std::shared_ptr<CausalSelfAttention> attention_;
  std::shared_ptr<Mlp> mlp_;
};

bool endsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

class GptNet : public torch::nn::Module {
 public:
  explicit GptNet(const GptOptions& o) {
    tokenEmbedding_ =
        register_module("token_embedding", torch::nn::Embedding(o.vocabSize, o.nEmbd));
    positionEmbedding_ =
        register_module("position_embedding", torch::nn::Embedding(o.blockSize, o.nEmbd));
    dropout_ = register_module("dropout", torch::nn::Dropout(o.dropout));
    for (std::int64_t i = 0; i < o.nLayer; ++i) {
      // Each block is a ZeRO unit: partitioned under zero_optimization.stage 3,
      // a plain call otherwise.
      blocks_.push_back(
          register_module("block" + std::to_string(i),
                          std::make_shared<hearth::ZeroUnitImpl>(std::make_shared<Block>(o))));
    }
    finalNorm_ =
        register_module("ln_final", torch::nn::LayerNorm(torch::nn::LayerNormOptions({o.nEmbd})));
    head_ = register_module("head", torch::nn::Linear(o.nEmbd, o.vocabSize));
    checkpointSegments_ = o.checkpointSegments;
    initWeights(o);
  }

  at::Tensor forward(const at::Tensor& tokens) {
    const auto positions = at::arange(tokens.size(1), at::kLong);
    auto x = dropout_->forward(tokenEmbedding_->forward(tokens) +
                               positionEmbedding_->forward(positions));
    x = runBlocks(x);
    return head_->forward(finalNorm_->forward(x));
  }

 private:
  // The blocks in segments; every segment but the last is checkpointed when
  // gradients are recorded (its activations are recomputed in backward, with
  // the dropout RNG restored).
  at::Tensor runBlocks(at::Tensor x) {
    const auto n = static_cast<std::int64_t>(blocks_.size());
    std::int64_t segments = checkpointSegments_ < 0
                                ? static_cast<std::int64_t>(std::ceil(std::sqrt(double(n))))
                                : checkpointSegments_;
    segments = std::clamp<std::int64_t>(segments, 1, n);
    for (std::int64_t i = 0; i < segments; ++i) {
      const std::int64_t lo = i * n / segments;
      const std::int64_t hi = (i + 1) * n / segments;
      auto run = [this, lo, hi](const at::Tensor& input) {
        at::Tensor h = input;
        for (std::int64_t k = lo; k < hi; ++k) h = blocks_[static_cast<std::size_t>(k)]->forward(h);
        return h;
      };
      if (checkpointSegments_ != 0 && i + 1 < segments && at::GradMode::is_enabled()) {
        std::vector<at::Tensor> params;
        for (std::int64_t k = lo; k < hi; ++k) {
          for (const auto& p : blocks_[static_cast<std::size_t>(k)]->parameters())
            params.push_back(p);
        }
        x = hearth::checkpoint(run, x, params);
      } else {
        x = run(x);
      }
    }
    return x;
  }

  void initWeights(const GptOptions& o) {
    at::NoGradGuard noGrad;
    const double residualStd = 0.02 / std::sqrt(2.0 * static_cast<double>(o.nLayer));
    for (auto& item : named_parameters()) {
      auto& p = item.value();
      if (endsWith(item.key(), ".bias")) {
        p.zero_();                // linear and LayerNorm biases
      } else if (p.dim() == 2) {  // linear and embedding weights; LayerNorm gains stay 1
        p.normal_(0.0, endsWith(item.key(), "proj.weight") ? residualStd : 0.02);
      }
    }
  }

  torch::nn::Embedding tokenEmbedding_{nullptr}, positionEmbedding_{nullptr};
  torch::nn::Dropout dropout_{nullptr};
  std::vector<std::shared_ptr<hearth::ZeroUnitImpl>> blocks_;
  std::int64_t checkpointSegments_ = 0;
  torch::nn::LayerNorm finalNorm_{nullptr};
  torch::nn::Linear head_{nullptr};
};

Gpt::Gpt(const GptOptions& options) : options_(options) {
  if (options.vocabSize < 1 || options.blockSize < 1 || options.nLayer < 1 || options.nHead < 1 ||
      options.nEmbd % options.nHead != 0) {
    throw std::invalid_argument(
        "Gpt: need vocabSize, blockSize, nLayer, nHead >= 1 and nEmbd "
        "divisible by nHead");
  }
  net_ = std::make_shared<GptNet>(options);
}

torch::nn::Module& Gpt::module() {
  return *net_;
}

std::vector<at::Tensor> Gpt::parameters() const {
  return net_->parameters();
}

std::int64_t Gpt::parameterCount() const {
  std::int64_t count = 0;
  for (const auto& p : net_->parameters()) count += p.numel();
  return count;
}

at::Tensor Gpt::logits(const at::Tensor& tokens) {
  return net_->forward(tokens);
}

at::Tensor Gpt::loss(const at::Tensor& tokens, const at::Tensor& targets) {
  const auto out = net_->forward(tokens);
  return at::cross_entropy_loss(out.reshape({-1, out.size(-1)}), targets.reshape({-1}));
}

void Gpt::setTraining(bool training) {
  net_->train(training);
}

std::vector<std::int64_t> Gpt::generate(std::vector<std::int64_t> prompt, std::int64_t count,
                                        double temperature) {
  at::NoGradGuard noGrad;
  const bool wasTraining = net_->is_training();
  net_->eval();
  for (std::int64_t i = 0; i < count; ++i) {
    const auto context = std::min<std::int64_t>(options_.blockSize, prompt.size());
    const auto tokens =
        at::from_blob(prompt.data() + prompt.size() - context, {1, context}, at::kLong).clone();
    const auto last = net_->forward(tokens).select(1, context - 1);  // [1, vocab]
    const auto probabilities = (last / temperature).softmax(-1);
    prompt.push_back(at::multinomial(probabilities, 1).item<std::int64_t>());
  }
  net_->train(wasTraining);
  return prompt;
}

}  // namespace charlm
