#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "hearth/transport/inproc.h"

namespace hearth {
namespace {

constexpr Millis kTimeout{10000};

template <typename Body>
void runRanks(std::vector<std::unique_ptr<Collectives>>& group, Body body) {
  std::vector<std::thread> threads;
  for (auto& c : group) threads.emplace_back([&, ptr = c.get()] { body(*ptr); });
  for (auto& t : threads) t.join();
}

TEST(InprocCollectives, AllreduceBroadcastAllgatherForWorldSizes) {
  for (int world : {1, 2, 3, 5}) {
    auto group = makeInprocGroup(world);
    std::atomic<int> failures{0};
    runRanks(group, [&](Collectives& c) {
      std::vector<float> data(17);
      for (std::size_t i = 0; i < data.size(); ++i) data[i] = float(c.rank() * 100 + i);
      c.allreduceSum(data.data(), data.size(), kTimeout);
      for (std::size_t i = 0; i < data.size(); ++i) {
        const float expected = float(100 * world * (world - 1) / 2 + world * i);
        if (data[i] != expected) ++failures;
      }
      std::vector<std::uint8_t> bytes(5, std::uint8_t(c.rank()));
      c.broadcast(bytes.data(), bytes.size(), world - 1, kTimeout);
      for (auto b : bytes) {
        if (b != world - 1) ++failures;
      }
      auto all = c.allgatherBytes(std::vector<std::uint8_t>(c.rank(), 7), kTimeout);
      for (int r = 0; r < world; ++r) {
        if (all[r].size() != std::size_t(r)) ++failures;
      }
      c.barrier(kTimeout);
    });
    EXPECT_EQ(failures, 0) << "world " << world;
  }
}

TEST(InprocCollectives, MissingRankTimesOutAndPoisonsGroup) {
  auto group = makeInprocGroup(2);
  float x = 1;
  EXPECT_THROW(group[0]->allreduceSum(&x, 1, Millis(100)), CollectiveTimeout);
  EXPECT_THROW(group[1]->allreduceSum(&x, 1, Millis(100)), CollectiveAborted);
}

TEST(InprocCollectives, AbortWakesBlockedRank) {
  auto group = makeInprocGroup(2);
  std::thread waiter([&] { EXPECT_THROW(group[0]->barrier(Millis(20000)), CollectiveAborted); });
  std::this_thread::sleep_for(Millis(50));
  group[1]->abort();
  waiter.join();
}

TEST(InprocCollectives, SizeMismatchIsUsageError) {
  auto group = makeInprocGroup(2);
  std::atomic<int> usageErrors{0};
  runRanks(group, [&](Collectives& c) {
    std::vector<float> data(c.rank() + 1);
    try {
      c.allreduceSum(data.data(), data.size(), kTimeout);
    } catch (const CollectiveUsageError&) {
      ++usageErrors;
    } catch (const CollectiveAborted&) {
    }
  });
  EXPECT_GE(usageErrors, 1);
}

}  // namespace
}  // namespace hearth
