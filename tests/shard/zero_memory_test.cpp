// ZeRO memory: per-rank model-state bytes per stage follow the layouts, the
// steady state allocates nothing new per step, and misuse fails clearly.
#include <gtest/gtest.h>

#include "hearth/shard/alloc_counter.h"
#include "zero_harness.h"

namespace hearth::testing {
namespace {

ZeroOptions optionsFor(int stage) {
  ZeroOptions options;
  options.stage = stage;
  options.persistBelowNumel = 64;
  options.bucketCapMb = 0.004;
  return options;
}

TEST(ZeroMemory, ModelStateBytesPerStageFollowTheShards) {
  const int world = 4;
  std::vector<ZeroMemory> memory(4);
  std::vector<std::vector<FlatLayout>> layouts(4);
  for (int stage = 1; stage <= 3; ++stage) {
    runRanks(world, [&](int rank, std::shared_ptr<Collectives> comm) {
      trainRank(std::move(comm), "adam", 2, 2, optionsFor(stage), [&](ZeroEngine& zero, int) {
        if (rank == 0) {
          memory[static_cast<std::size_t>(stage)] = zero.memory();
          layouts[static_cast<std::size_t>(stage)] = zero.layouts();
        }
      });
    });
  }
  const std::size_t psi = 3406;
  // Stage 1: full parameters and gradients, Adam state (2 floats) for a shard.
  const FlatLayout& one = layouts[1].at(0);
  EXPECT_EQ(one.numel(), psi);
  EXPECT_EQ(memory[1].parameterBytes, one.paddedNumel() * 4);
  EXPECT_EQ(memory[1].gradientBytes, one.paddedNumel() * 4);
  EXPECT_EQ(memory[1].optimizerStateBytes, one.shardNumel() * 8);
  // Stage 2: gradients sharded too.
  EXPECT_EQ(memory[2].parameterBytes, one.paddedNumel() * 4);
  EXPECT_EQ(memory[2].gradientBytes, one.shardNumel() * 4);
  EXPECT_EQ(memory[2].optimizerStateBytes, one.shardNumel() * 8);
  // Stage 3: the unit weights are sharded; the rest (outer layers, biases)
  // stays whole in group 0.
  ASSERT_EQ(layouts[3].size(), 3u);
  std::size_t expectedParams = layouts[3][0].paddedNumel() * 4;
  std::size_t shards = layouts[3][0].shardNumel();
  for (std::size_t g = 1; g < 3; ++g) {
    EXPECT_EQ(layouts[3][g].numel(), 37u * 37u);
    expectedParams += layouts[3][g].shardNumel() * 4;
    shards += layouts[3][g].shardNumel();
  }
  EXPECT_EQ(memory[3].parameterBytes, expectedParams);
  EXPECT_EQ(memory[3].gradientBytes, shards * 4);
  EXPECT_EQ(memory[3].optimizerStateBytes, shards * 8);
  EXPECT_LT(memory[3].modelStateBytes(), memory[2].modelStateBytes());
  EXPECT_LT(memory[2].modelStateBytes(), memory[1].modelStateBytes());
  EXPECT_GT(memory[3].gatherPoolBytes, 0u);
}

// After warm-up every step makes exactly the same number of allocations
// (torch's own temporaries: activations, autograd, optimizer arithmetic),
// live memory returns to the same level after every step, and hearth's
// buffer pools never grow. The counters are process-wide, so both ranks
// stand in a barrier while rank 0 samples them.
// Allocations one plain (unsharded) training step of one rank's micro-batch
// makes: forward, backward, Adam over every parameter tensor.
std::uint64_t plainStepAllocations() {
  Net net = makeNet(5);
  auto opt = makeOptimizer("adam", net->parameters());
  std::vector<std::uint64_t> counts;
  for (int s = 0; s < 6; ++s) {
    Batch batch = globalBatch(s, 2);
    const auto before = AllocationCounter::instance().snapshot().allocations;
    opt->zero_grad();
    loss(net, batch.x, batch.y).backward();
    opt->step();
    counts.push_back(AllocationCounter::instance().snapshot().allocations - before);
  }
  return counts.back();
}

TEST(ZeroMemory, SteadyStateAllocatesNothingNewPerStep) {
  AllocationCounter::instance().install();
  const std::uint64_t plain = plainStepAllocations();
  for (int stage = 1; stage <= 3; ++stage) {
    SCOPED_TRACE("stage " + std::to_string(stage));
    std::vector<std::uint64_t> allocations;
    std::vector<std::int64_t> live;
    std::uint64_t growths = 0;
    runRanks(2, [&](int rank, std::shared_ptr<Collectives> comm) {
      Collectives* group = comm.get();
      trainRank(std::move(comm), "adam", 12, 2, optionsFor(stage), [&](ZeroEngine& zero, int) {
        group->barrier(Millis(10000));
        if (rank == 0) {
          const auto snap = AllocationCounter::instance().snapshot();
          allocations.push_back(snap.allocations);
          live.push_back(snap.liveBytes);
          growths = zero.stats().poolGrowths;
        }
        group->barrier(Millis(10000));
      });
    });
    EXPECT_EQ(growths, 0u);
    ASSERT_EQ(allocations.size(), 12u);
    const std::uint64_t perStep = allocations[4] - allocations[3];
    for (std::size_t s = 5; s < allocations.size(); ++s) {
      EXPECT_EQ(allocations[s] - allocations[s - 1], perStep) << "step " << s;
      EXPECT_EQ(live[s], live[4]) << "step " << s;
    }
    // Two ranks' steps together allocate no more than two plain steps: the
    // sharded optimizer makes fewer temporaries than Adam over every tensor,
    // and hearth's buckets and gather buffers are reused.
    EXPECT_LE(perStep, 2 * plain) << "plain step: " << plain;
  }
}

TEST(ZeroErrors, RejectsAnOptimizerOverOtherParameters) {
  runRanks(1, [&](int, std::shared_ptr<Collectives> comm) {
    Net net = makeNet(1);
    Net other = makeNet(2);
    auto opt = makeOptimizer("adam", other->parameters());
    try {
      ZeroEngine zero(*net, *opt, comm, optionsFor(2));
      FAIL() << "expected an error";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("exactly the model's trainable parameters"),
                std::string::npos)
          << e.what();
    }
  });
}

TEST(ZeroErrors, RejectsBadStage) {
  runRanks(1, [&](int, std::shared_ptr<Collectives> comm) {
    Net net = makeNet(1);
    auto opt = makeOptimizer("sgd", net->parameters());
    EXPECT_THROW(ZeroEngine(*net, *opt, comm, optionsFor(4)), std::invalid_argument);
  });
}

// A rank that stops taking part makes the others fail within the timeout
// instead of hanging.
TEST(ZeroErrors, DeadPeerFailsTheOthersWithinTheTimeout) {
  for (int stage = 1; stage <= 3; ++stage) {
    SCOPED_TRACE("stage " + std::to_string(stage));
    ZeroOptions options = optionsFor(stage);
    options.timeout = Millis(1500);
    std::vector<std::string> errors(3);
    auto group = makeInprocGroup(3);
    std::vector<std::thread> threads;
    const auto start = std::chrono::steady_clock::now();
    for (int r = 0; r < 3; ++r) {
      std::shared_ptr<Collectives> comm = std::move(group[static_cast<std::size_t>(r)]);
      threads.emplace_back([&, r, comm] {
        try {
          Net net = makeNet(3);
          auto opt = makeOptimizer("sgd", net->parameters());
          ZeroEngine zero(*net, *opt, comm, options);
          for (int s = 0; s < 5; ++s) {
            if (r == 2 && s == 2) {
              comm->abort();  // this rank dies
              return;
            }
            Batch batch = globalBatch(s, 6);
            zero.backward(loss(net, batch.x, batch.y));
            zero.step();
          }
        } catch (const std::exception& e) {
          errors[static_cast<std::size_t>(r)] = e.what();
        }
      });
    }
    for (auto& t : threads) t.join();
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EXPECT_FALSE(errors[0].empty());
    EXPECT_FALSE(errors[1].empty());
    EXPECT_LT(seconds, 10.0);
  }
}

}  // namespace
}  // namespace hearth::testing
