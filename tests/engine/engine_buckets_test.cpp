// Bucketing: mixed parameter sizes are averaged correctly, one collective per
// bucket per step, unused parameters do not hang, failures surface as errors.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/optim/sgd.h>

#include <chrono>
#include <thread>

#include "group_factories.h"
#include "hearth/runtime/engine.h"

namespace hearth::testing {
namespace {

// 1 parameter larger than a bucket, 120 tiny ones, a few medium ones.
std::vector<int64_t> mixedSizes() {
  std::vector<int64_t> sizes = {5000};
  for (int i = 0; i < 120; ++i) sizes.push_back(1 + i % 3);
  for (int i = 0; i < 5; ++i) sizes.push_back(300 + i);
  return sizes;
}

// Rank r's gradient for parameter j, element e: a rank-unique value.
float gradValue(int rank, std::size_t j, int64_t e, int step) {
  return float(rank + 1) * 0.5f + float(j) * 0.01f + float(e % 7) * 0.001f + float(step);
}

TEST(EngineBuckets, MixedSizesAveragedOneCollectivePerBucket) {
  at::set_num_threads(1);
  constexpr int kWorld = 3;
  constexpr int kSteps = 3;
  const auto sizes = mixedSizes();
  std::vector<std::shared_ptr<CountingCollectives>> counters;
  for (auto& c : inprocGroup(kWorld)) counters.push_back(std::make_shared<CountingCollectives>(c));
  std::vector<std::string> errors(kWorld);
  std::vector<int> buckets(kWorld);
  std::vector<std::thread> threads;
  for (int r = 0; r < kWorld; ++r) {
    threads.emplace_back([&, r] {
      try {
        std::vector<at::Tensor> params;
        for (auto n : sizes) params.push_back(at::zeros({n}).set_requires_grad(true));
        torch::optim::SGD opt(params, torch::optim::SGDOptions(0.0));
        EngineOptions options;
        options.bucketCapMb = 4096.0 / (1 << 20);  // 1024 floats per bucket
        Engine engine(params, {}, opt, counters[r], options);
        buckets[r] = engine.numBuckets();
        for (int s = 0; s < kSteps; ++s) {
          at::Tensor loss = at::zeros({});
          std::vector<at::Tensor> coefficients;
          for (std::size_t j = 0; j < params.size(); ++j) {
            auto c = at::empty({sizes[j]});
            for (int64_t e = 0; e < sizes[j]; ++e) c[e] = gradValue(r, j, e, s);
            loss = loss + (params[j] * c).sum();
          }
          engine.backward(loss);
          for (std::size_t j = 0; j < params.size(); ++j) {
            for (int64_t e = 0; e < sizes[j]; ++e) {
              float expected = 0;
              for (int q = 0; q < kWorld; ++q) expected += gradValue(q, j, e, s);
              expected /= kWorld;
              const float got = params[j].grad()[e].item<float>();
              if (std::abs(got - expected) > 1e-5f) {
                throw std::runtime_error("param " + std::to_string(j) + "[" + std::to_string(e) +
                                         "] = " + std::to_string(got) + ", expected " +
                                         std::to_string(expected));
              }
            }
          }
          engine.step();
        }
      } catch (const std::exception& e) {
        errors[r] = e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int r = 0; r < kWorld; ++r) EXPECT_EQ(errors[r], "") << "rank " << r;
  // 5000-float parameter alone, 5 x ~300 + 240 tiny ones fused around 1024.
  EXPECT_GE(buckets[0], 3);
  EXPECT_LT(buckets[0], 10) << "tiny tensors must be fused";
  for (int r = 0; r < kWorld; ++r) {
    EXPECT_EQ(counters[r]->allreduceCalls.load(), kSteps * buckets[0]) << "rank " << r;
  }
}

TEST(EngineBuckets, UnusedParameterDoesNotHang) {
  constexpr int kWorld = 2;
  auto group = inprocGroup(kWorld);
  std::vector<std::string> errors(kWorld);
  std::vector<std::thread> threads;
  for (int r = 0; r < kWorld; ++r) {
    threads.emplace_back([&, r] {
      try {
        auto used = at::ones({4}).set_requires_grad(true);
        auto unused = at::ones({3}).set_requires_grad(true);
        torch::optim::SGD opt({used, unused}, torch::optim::SGDOptions(0.1));
        EngineOptions options;
        options.timeout = Millis(5000);
        options.bucketCapMb = 12.0 / (1 << 20);  // 3 floats: separate buckets
        Engine engine({used, unused}, {}, opt, group[r], options);
        // Rank 1 uses the second parameter, rank 0 does not.
        auto loss = (used * float(r + 1)).sum();
        if (r == 1) loss = loss + unused.sum();
        engine.backward(loss);
        if (std::abs(used.grad()[0].item<float>() - 1.5f) > 1e-6f) throw std::runtime_error("used");
        if (std::abs(unused.grad()[0].item<float>() - 0.5f) > 1e-6f) {
          throw std::runtime_error("unused grad " + std::to_string(unused.grad()[0].item<float>()));
        }
      } catch (const std::exception& e) {
        errors[r] = e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int r = 0; r < kWorld; ++r) EXPECT_EQ(errors[r], "") << "rank " << r;
}

TEST(EngineBuckets, DeadPeerGivesTypedErrorWithinTimeout) {
  for (const std::string backend : {"inproc", "gloo"}) {
    auto group = makeGroup(backend, 2, Millis(1500));
    std::string error;
    double seconds = 0;
    std::thread rank1([&] {
      // Rank 1 joins construction (broadcast) and then dies silently.
      auto p = at::ones({8}).set_requires_grad(true);
      torch::optim::SGD opt({p}, torch::optim::SGDOptions(0.1));
      EngineOptions options;
      options.timeout = Millis(1500);
      Engine engine({p}, {}, opt, group[1], options);
    });
    auto p = at::ones({8}).set_requires_grad(true);
    torch::optim::SGD opt({p}, torch::optim::SGDOptions(0.1));
    EngineOptions options;
    options.timeout = Millis(1500);
    Engine engine({p}, {}, opt, group[0], options);
    rank1.join();
    const auto start = std::chrono::steady_clock::now();
    try {
      engine.backward(p.sum());
    } catch (const CollectiveError& e) {
      error = e.what();
    }
    seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EXPECT_FALSE(error.empty()) << backend;
    EXPECT_LT(seconds, 30.0) << backend;
    // The Engine stays failed: later calls rethrow instead of hanging.
    EXPECT_THROW(engine.backward(p.sum()), CollectiveError) << backend;
  }
}

TEST(EngineBuckets, DifferentModelsAreRejected) {
  auto group = inprocGroup(2);
  std::vector<std::string> errors(2);
  std::vector<std::thread> threads;
  for (int r = 0; r < 2; ++r) {
    threads.emplace_back([&, r] {
      auto p = at::ones({4 + r}).set_requires_grad(true);
      torch::optim::SGD opt({p}, torch::optim::SGDOptions(0.1));
      try {
        Engine engine({p}, {}, opt, group[r]);
      } catch (const std::exception& e) {
        errors[r] = e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int r = 0; r < 2; ++r) {
    EXPECT_NE(errors[r].find("different model"), std::string::npos) << errors[r];
  }
}

TEST(EngineBuckets, FailedBackwardPoisonsEngineAndPeerErrors) {
  auto group = inprocGroup(2);
  std::vector<std::string> errors(2);
  std::vector<std::thread> threads;
  for (int r = 0; r < 2; ++r) {
    threads.emplace_back([&, r] {
      auto p = at::ones({4}).set_requires_grad(true);
      torch::optim::SGD opt({p}, torch::optim::SGDOptions(0.1));
      EngineOptions options;
      options.timeout = Millis(3000);
      Engine engine({p}, {}, opt, group[r], options);
      try {
        // Rank 0 passes a non-scalar loss: autograd throws inside backward().
        engine.backward(r == 0 ? p * 2 : p.sum());
      } catch (const std::exception& e) {
        errors[r] = e.what();
      }
      if (r == 0) {
        try {
          engine.backward(p.sum());
          errors[r] += " | second backward did not throw";
        } catch (const CollectiveAborted&) {
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_NE(errors[0].find("scalar"), std::string::npos) << errors[0];
  EXPECT_EQ(errors[0].find("did not throw"), std::string::npos) << errors[0];
  EXPECT_FALSE(errors[1].empty()) << "the peer must get an error, not hang";
}

TEST(EngineBuckets, CommunicationOverlapsBackward) {
  // loss = sum(last * tanh(first * x)): autograd finishes last's gradient
  // before it reaches first. A hook on the intermediate's gradient runs in
  // between; by then the bucket holding `last` must already be in flight.
  constexpr int kWorld = 2;
  std::vector<std::shared_ptr<CountingCollectives>> counters;
  for (auto& c : inprocGroup(kWorld)) counters.push_back(std::make_shared<CountingCollectives>(c));
  std::vector<int> callsSeenMidBackward(kWorld, -1);
  std::vector<std::string> errors(kWorld);
  std::vector<std::thread> threads;
  for (int r = 0; r < kWorld; ++r) {
    threads.emplace_back([&, r] {
      try {
        auto first = at::ones({64}).set_requires_grad(true);
        auto last = at::ones({64}).set_requires_grad(true);
        torch::optim::SGD opt({first, last}, torch::optim::SGDOptions(0.1));
        EngineOptions options;
        options.bucketCapMb = 256.0 / (1 << 20);  // 64 floats: one parameter per bucket
        Engine engine({first, last}, {}, opt, counters[r], options);
        ASSERT_EQ(engine.numBuckets(), 2);
        auto hidden = at::tanh(first * at::full({64}, 0.5f));
        hidden.register_hook([&, r](const at::Tensor& grad) {
          for (int i = 0; i < 200 && counters[r]->allreduceCalls.load() == 0; ++i) {
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
          }
          callsSeenMidBackward[r] = counters[r]->allreduceCalls.load();
          return grad;
        });
        engine.backward((last * hidden).sum());
      } catch (const std::exception& e) {
        errors[r] = e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int r = 0; r < kWorld; ++r) {
    EXPECT_EQ(errors[r], "");
    EXPECT_EQ(callsSeenMidBackward[r], 1)
        << "rank " << r << ": bucket of `last` not launched early";
    EXPECT_EQ(counters[r]->allreduceCalls.load(), 2);
  }
}

}  // namespace
}  // namespace hearth::testing
