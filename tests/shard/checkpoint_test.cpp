// checkpoint() and CheckpointedSequential: loss, parameter and input
// gradients and the random stream match the plain model's with dropout on;
// gradient accumulation; segment counts 1 and n; inputs that need no grad;
// the edge cases of the free function.
#include "hearth/shard/checkpoint.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/container/functional.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/utils.h>

#include <cmath>
#include <memory>
#include <mutex>
#include <stdexcept>

namespace hearth {
namespace {

at::Tensor rngState() {
  at::Generator gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  return gen.get_state();
}

void expectClose(const at::Tensor& a, const at::Tensor& b, const std::string& what) {
  ASSERT_EQ(a.defined(), b.defined()) << what;
  if (!a.defined()) return;
  EXPECT_TRUE(at::allclose(a, b, 1e-5, 1e-7))
      << what << " max diff " << (a - b).abs().max().item<double>();
}

// A pre-LayerNorm transformer block: causal self-attention and a GELU MLP,
// each a residual branch with dropout (on the attention weights too).
struct BlockImpl : torch::nn::Module {
  BlockImpl(int64_t d, int64_t heads, double p)
      : heads(heads),
        ln1(register_module("ln1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d})))),
        ln2(register_module("ln2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d})))),
        qkv(register_module("qkv", torch::nn::Linear(d, 3 * d))),
        proj(register_module("proj", torch::nn::Linear(d, d))),
        fc1(register_module("fc1", torch::nn::Linear(d, 4 * d))),
        fc2(register_module("fc2", torch::nn::Linear(4 * d, d))),
        drop(register_module("drop", torch::nn::Dropout(p))) {}

  at::Tensor forward(at::Tensor x) {
    const int64_t b = x.size(0), t = x.size(1), d = x.size(2), hd = d / heads;
    auto parts = qkv(ln1(x)).view({b, t, 3, heads, hd}).permute({2, 0, 3, 1, 4});
    at::Tensor att = at::matmul(parts[0], parts[1].transpose(-2, -1)) / std::sqrt(double(hd));
    at::Tensor mask = at::ones({t, t}, at::kBool).triu(1);
    att = drop(at::softmax(att.masked_fill(mask, -INFINITY), -1));
    at::Tensor y = at::matmul(att, parts[2]).transpose(1, 2).reshape({b, t, d});
    x = x + drop(proj(y));
    return x + drop(fc2(at::gelu(fc1(ln2(x)))));
  }

  int64_t heads;
  torch::nn::LayerNorm ln1, ln2;
  torch::nn::Linear qkv, proj, fc1, fc2;
  torch::nn::Dropout drop;
};
TORCH_MODULE(Block);

CheckpointedSequential makeMlp(double p) {
  CheckpointedSequential m;
  m->push_back(torch::nn::Linear(12, 32));
  for (int i = 0; i < 4; ++i) {
    m->push_back(torch::nn::Tanh());
    m->push_back(torch::nn::Dropout(p));
    m->push_back(torch::nn::Linear(32, 32));
  }
  m->push_back(torch::nn::Linear(32, 3));
  return m;  // 14 modules
}

CheckpointedSequential makeTransformer(double p) {
  CheckpointedSequential m;
  for (int i = 0; i < 4; ++i) m->push_back(Block(32, 4, p));
  return m;
}

struct StepResult {
  double loss = 0;
  std::vector<at::Tensor> grads;
  at::Tensor inputGrad;
  at::Tensor rngAfter;
};

// Builds the model from seed 1, draws inputs from seed 2, then from seed 3
// runs `microBatches` forward/backward calls (accumulating gradients).
template <typename Make>
StepResult step(Make make, int segments, std::vector<int64_t> inputShape, bool inputGrad,
                int microBatches = 1) {
  torch::manual_seed(1);
  CheckpointedSequential model = make();
  model->setSegments(segments);
  model->train();
  torch::manual_seed(2);
  at::Tensor x = at::randn(inputShape);
  if (inputGrad) x.set_requires_grad(true);
  torch::manual_seed(3);
  StepResult r;
  for (int i = 0; i < microBatches; ++i) {
    at::Tensor loss = model->forward(x * (1.0 + i)).pow(2).mean();
    loss.backward();
    r.loss += loss.item<double>();
  }
  for (const auto& p : model->parameters()) {
    r.grads.push_back(p.grad().defined() ? p.grad().clone() : at::Tensor());
  }
  if (inputGrad) r.inputGrad = x.grad().clone();
  r.rngAfter = rngState();
  return r;
}

void expectSameStep(const StepResult& plain, const StepResult& ckpt) {
  EXPECT_NEAR(plain.loss, ckpt.loss, 1e-6 * std::abs(plain.loss));
  ASSERT_EQ(plain.grads.size(), ckpt.grads.size());
  for (size_t i = 0; i < plain.grads.size(); ++i) {
    ASSERT_TRUE(plain.grads[i].defined()) << "parameter " << i;
    expectClose(plain.grads[i], ckpt.grads[i], "parameter " + std::to_string(i));
  }
  expectClose(plain.inputGrad, ckpt.inputGrad, "input");
  EXPECT_TRUE(at::equal(plain.rngAfter, ckpt.rngAfter)) << "random stream moved differently";
}

TEST(CheckpointedSequential, MlpMatchesPlainWithDropout) {
  for (double p : {0.1, 0.5}) {
    const StepResult plain = step([p] { return makeMlp(p); }, 1, {16, 12}, true);
    for (int segments : {0, 2, 5}) {
      SCOPED_TRACE("p=" + std::to_string(p) + " segments=" + std::to_string(segments));
      expectSameStep(plain, step([p] { return makeMlp(p); }, segments, {16, 12}, true));
    }
  }
}

TEST(CheckpointedSequential, TransformerStackMatchesPlainWithDropout) {
  const auto make = [] { return makeTransformer(0.2); };
  const StepResult plain = step(make, 1, {3, 10, 32}, true);
  expectSameStep(plain, step(make, 0, {3, 10, 32}, true));  // 2 segments
  expectSameStep(plain, step(make, 4, {3, 10, 32}, true));  // one block each
}

TEST(CheckpointedSequential, GradientAccumulationOverTwoBackwards) {
  const auto make = [] { return makeMlp(0.3); };
  expectSameStep(step(make, 1, {8, 12}, true, 2), step(make, 3, {8, 12}, true, 2));
}

TEST(CheckpointedSequential, InputWithoutGrad) {
  const auto make = [] { return makeTransformer(0.1); };
  expectSameStep(step(make, 1, {2, 6, 32}, false), step(make, 4, {2, 6, 32}, false));
}

TEST(CheckpointedSequential, SegmentCountOneAndN) {
  int calls = 0;
  auto counting = torch::nn::Functional([&calls](at::Tensor x) {
    ++calls;
    return x;
  });
  CheckpointedSequential m;
  m->push_back(torch::nn::Linear(4, 4));
  m->push_back(counting);
  m->push_back(torch::nn::Linear(4, 4));
  m->push_back(torch::nn::Linear(4, 4));
  EXPECT_EQ(m->segments(), 2);  // ceil(sqrt(4))
  const at::Tensor x = at::randn({2, 4});

  m->setSegments(1);  // one segment = the last one: no checkpointing
  m->forward(x).sum().backward();
  EXPECT_EQ(calls, 1);

  m->setSegments(100);  // clamped to n: every module its own segment
  EXPECT_EQ(m->segments(), 4);
  EXPECT_EQ(m->segmentRange(1), std::make_pair(size_t{1}, size_t{2}));
  calls = 0;
  m->forward(x).sum().backward();
  EXPECT_EQ(calls, 2);  // recomputed in backward

  m->setSegments(0);
  EXPECT_EQ(m->segments(), 2);
  EXPECT_EQ(m->segmentRange(0), std::make_pair(size_t{0}, size_t{2}));
  EXPECT_EQ(m->segmentRange(1), std::make_pair(size_t{2}, size_t{4}));
  calls = 0;
  {
    torch::NoGradGuard noGrad;
    m->forward(x);
  }
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(m->named_parameters().size(), 6u);
  EXPECT_TRUE(m->named_parameters().contains("0.weight"));
}

// A two-in, three-out region: a differentiable output, an output the loss
// does not use, and an integer output.
std::vector<at::Tensor> region(const std::vector<at::Tensor>& in, const at::Tensor& w) {
  at::Tensor h = at::dropout(at::matmul(in[0], w) + in[1], 0.4, true);
  return {at::tanh(h), h * 2, h.argmax(-1)};
}

TEST(Checkpoint, FunctionMatchesPlainWithUnusedAndIntegerOutputs) {
  torch::manual_seed(7);
  const at::Tensor w0 = at::randn({5, 6});
  const at::Tensor a0 = at::randn({4, 5});
  const at::Tensor b0 = at::randn({4, 6});
  auto run = [&](bool ckpt) {
    at::Tensor w = w0.clone().set_requires_grad(true);
    at::Tensor a = a0.clone().set_requires_grad(true);
    at::Tensor b = b0.clone();  // needs no grad
    torch::manual_seed(11);
    const auto fn = [&w](const std::vector<at::Tensor>& in) { return region(in, w); };
    std::vector<at::Tensor> out = ckpt ? checkpoint(fn, {a, b}) : fn({a, b});
    EXPECT_EQ(out.size(), 3u);
    EXPECT_FALSE(out[2].requires_grad());
    out[0].sum().backward();  // out[1] unused: undefined incoming grad
    EXPECT_FALSE(b.grad().defined());
    return std::make_tuple(w.grad(), a.grad(), rngState());
  };
  const auto plain = run(false);
  const auto ckpt = run(true);
  expectClose(std::get<0>(plain), std::get<0>(ckpt), "w");
  expectClose(std::get<1>(plain), std::get<1>(ckpt), "a");
  EXPECT_TRUE(at::equal(std::get<2>(plain), std::get<2>(ckpt)));
}

TEST(Checkpoint, RecomputesOnceAndKeepsCallerStream) {
  int calls = 0;
  at::Tensor x = at::randn({64}).set_requires_grad(true);
  torch::manual_seed(5);
  at::Tensor y = checkpoint(
      [&calls](const at::Tensor& in) {
        ++calls;
        return at::dropout(in, 0.5, true);
      },
      x);
  EXPECT_EQ(calls, 1);
  const at::Tensor before = rngState();
  y.sum().backward();
  EXPECT_EQ(calls, 2);
  EXPECT_TRUE(at::equal(before, rngState()));
  // The recomputed mask is the forward's: grad is 2 where y kept x, else 0.
  EXPECT_TRUE(at::allclose(x.grad(), (y.detach() != 0).to(at::kFloat) * 2));
}

TEST(Checkpoint, ParametersMakeOutputsRequireGradWithoutGradInputs) {
  at::Tensor w = at::randn({3, 3}).set_requires_grad(true);
  const at::Tensor x = at::randn({2, 3});
  const auto fn = [&w](const at::Tensor& in) { return at::matmul(in, w); };
  at::Tensor y = checkpoint(fn, x, {w});
  ASSERT_TRUE(y.requires_grad());
  y.sum().backward();
  ASSERT_TRUE(w.grad().defined());
  EXPECT_TRUE(at::allclose(w.grad(), x.sum(0).unsqueeze(1).expand({3, 3})));
}

TEST(Checkpoint, ThrowsWhenNothingRequiresGrad) {
  at::Tensor w = at::randn({3, 3}).set_requires_grad(true);
  const auto fn = [&w](const at::Tensor& in) { return at::matmul(in, w); };
  EXPECT_THROW(checkpoint(fn, at::randn({2, 3})), std::invalid_argument);
  // Under no-grad it just runs.
  torch::NoGradGuard noGrad;
  EXPECT_FALSE(checkpoint(fn, at::randn({2, 3})).requires_grad());
}

TEST(Checkpoint, NoOutputsAndPassThrough) {
  at::Tensor x = at::randn({4}).set_requires_grad(true);
  EXPECT_TRUE(
      checkpoint([](const std::vector<at::Tensor>&) { return std::vector<at::Tensor>{}; }, {x})
          .empty());
  // fn returning its input unchanged: gradient passes straight through.
  at::Tensor y = checkpoint([](const at::Tensor& in) { return in; }, x);
  (y * 3).sum().backward();
  EXPECT_TRUE(at::allclose(x.grad(), at::full({4}, 3.0)));
}

}  // namespace
}  // namespace hearth

namespace hearth {
namespace {

TEST(CheckpointedSequential, DefaultSegmentCountRoundsSqrtUp) {
  for (const auto& [modules, expected] :
       std::vector<std::pair<int, int>>{{1, 1}, {2, 2}, {5, 3}, {9, 3}, {12, 4}, {16, 4}}) {
    CheckpointedSequential m;
    for (int i = 0; i < modules; ++i) m->push_back(torch::nn::Linear(2, 2));
    EXPECT_EQ(m->segments(), expected) << modules << " modules";
  }
}

}  // namespace
}  // namespace hearth
