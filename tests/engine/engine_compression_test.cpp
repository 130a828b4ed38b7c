// The Engine with gradient codecs: lossless settings must reproduce dense
// training; DGC's momentum moved out of the optimizer must reproduce momentum
// SGD with weight decay; payload traffic is accounted.
#include <gtest/gtest.h>

#include <ATen/Parallel.h>
#include <torch/optim/sgd.h>

#include "dp_harness.h"
#include "group_factories.h"

namespace hearth::testing {
namespace {

constexpr int kSteps = 20;
constexpr int kMicro = 4;

EngineOptions withCodec(const std::string& codec, nlohmann::json params,
                        std::size_t denseBelow = 0) {
  EngineOptions options;
  options.bucketCapMb = 1.0 / 1024;
  options.timeout = Millis(30000);
  options.codec = codec;
  options.codecParams = std::move(params);
  options.denseBelowNumel = denseBelow;
  return options;
}

TEST(EngineCompression, LosslessCodecsMatchDenseTraining) {
  at::set_num_threads(1);
  const auto reference = trainReference("sgd", kSteps, 2 * kMicro);
  const std::vector<std::pair<std::string, nlohmann::json>> lossless = {
      {"none", nlohmann::json::object()},
      {"topk", {{"density", 1.0}}},
      {"dgc", {{"density", 1.0}, {"momentum", 0.0}, {"warmup_periods", 0}, {"min_numel", 0}}},
  };
  for (const auto& [codec, params] : lossless) {
    for (const std::string backend : {"inproc", "gloo"}) {
      const auto finals =
          trainDataParallel(makeGroup(backend, 2), "sgd", kSteps, kMicro, withCodec(codec, params));
      EXPECT_LT(maxAbsDiff(finals[0], reference), 2e-5) << codec << " over " << backend;
      EXPECT_EQ(maxAbsDiff(finals[0], finals[1]), 0.0) << codec << ": ranks diverged";
    }
  }
}

// DGC with optimizer momentum moved into the Engine: with every tensor in a
// dense bucket (denseBelow huge), the Engine's local momentum on gradients
// plus the momentum of the weight-decay term equals torch's momentum SGD with
// weight decay, by linearity.
TEST(EngineCompression, MovedMomentumAndWeightDecayEqualMomentumSgd) {
  at::set_num_threads(1);
  for (bool nesterov : {false, true}) {
    auto refModel = makeMlp(7);
    torch::optim::SGD refOpt(
        refModel->parameters(),
        torch::optim::SGDOptions(0.05).momentum(0.9).nesterov(nesterov).weight_decay(0.01));
    for (int s = 0; s < kSteps; ++s) {
      auto batch = globalBatch(s, 2 * kMicro);
      refOpt.zero_grad();
      mseLoss(refModel, batch.x, batch.y).backward();
      refOpt.step();
    }
    std::vector<at::Tensor> reference;
    for (auto& p : refModel->parameters()) reference.push_back(p.detach().clone());

    auto group = inprocGroup(2);
    std::vector<std::vector<at::Tensor>> finals(2);
    std::vector<std::thread> threads;
    for (int r = 0; r < 2; ++r) {
      threads.emplace_back([&, r] {
        auto model = makeMlp(7 + r);
        torch::optim::SGD opt(model->parameters(), torch::optim::SGDOptions(0.05));
        auto options = withCodec("dgc", {{"momentum", 0.9}, {"nesterov", nesterov}},
                                 /*denseBelow=*/1u << 30);
        options.localMomentum = 0.9;
        options.localNesterov = nesterov;
        options.localWeightDecay = 0.01;
        Engine engine(*model, opt, group[r], options);
        for (int s = 0; s < kSteps; ++s) {
          auto batch = globalBatch(s, 2 * kMicro);
          engine.backward(mseLoss(model, batch.x.narrow(0, r * kMicro, kMicro),
                                  batch.y.narrow(0, r * kMicro, kMicro)));
          engine.step();
        }
        for (auto& p : model->parameters()) finals[r].push_back(p.detach().clone());
      });
    }
    for (auto& t : threads) t.join();
    EXPECT_LT(maxAbsDiff(finals[0], reference), 2e-5) << "nesterov " << nesterov;
  }
}

TEST(EngineCompression, SparseCodecSendsFarFewerBytes) {
  at::set_num_threads(1);
  auto group = inprocGroup(2);
  std::vector<EngineStats> stats(2);
  std::vector<std::thread> threads;
  for (int r = 0; r < 2; ++r) {
    threads.emplace_back([&, r] {
      auto params = std::vector<at::Tensor>{at::zeros({400, 250}).set_requires_grad(true)};
      torch::optim::SGD opt(params, torch::optim::SGDOptions(0.1));
      EngineOptions options =
          withCodec("dgc", {{"density", 0.001}, {"momentum", 0.0}, {"warmup_periods", 0}}, 1024);
      options.bucketCapMb = 25;
      Engine engine(params, {}, opt, group[r], options);
      for (int s = 0; s < 3; ++s) {
        engine.backward((params[0] * at::randn({400, 250})).sum());
        engine.step();
      }
      stats[r] = engine.stats();
    });
  }
  for (auto& t : threads) t.join();
  const double dense = 3.0 * 400 * 250 * 4;
  EXPECT_GT(stats[0].bytesReduced, 0u);
  EXPECT_GT(dense / double(stats[0].bytesReduced), 300.0);
}

TEST(EngineCompression, CodecThatOwnsMomentumRejectsMomentumOptimizer) {
  auto group = inprocGroup(1);
  auto p = at::zeros({64, 64}).set_requires_grad(true);
  torch::optim::SGD opt({p}, torch::optim::SGDOptions(0.1).momentum(0.9));
  EXPECT_THROW(Engine({p}, {}, opt, group[0], withCodec("dgc", {{"momentum", 0.9}})), ConfigError);
  EXPECT_THROW(Engine({p}, {}, opt, group[0], withCodec("dgc", {{"densty", 0.1}})), ConfigError);
}

}  // namespace
}  // namespace hearth::testing
