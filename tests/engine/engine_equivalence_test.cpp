// N ranks (threads) with batch B and averaged gradients must match one process
// training on the concatenated N*B batch, for SGD+momentum and Adam.
#include <gtest/gtest.h>

#include <ATen/Parallel.h>

#include <tuple>

#include "dp_harness.h"
#include "group_factories.h"

namespace hearth::testing {
namespace {

constexpr int kSteps = 20;
constexpr int kMicro = 4;

EngineOptions smallBuckets(int accumulation = 1) {
  EngineOptions options;
  options.bucketCapMb = 1.0 / 1024;  // 256 floats: several buckets for the MLP
  options.gradientAccumulationSteps = accumulation;
  options.timeout = Millis(30000);
  return options;
}

class Equivalence : public ::testing::TestWithParam<std::tuple<std::string, std::string, int>> {};

TEST_P(Equivalence, MatchesSingleProcessOnConcatenatedBatch) {
  at::set_num_threads(1);
  const auto& [backend, optimizer, world] = GetParam();
  const auto reference = trainReference(optimizer, kSteps, world * kMicro);
  const auto finals =
      trainDataParallel(makeGroup(backend, world), optimizer, kSteps, kMicro, smallBuckets());
  for (int r = 0; r < world; ++r) {
    EXPECT_LT(maxAbsDiff(finals[r], reference), 2e-5) << "rank " << r;
    EXPECT_EQ(maxAbsDiff(finals[r], finals[0]), 0.0) << "ranks diverged: rank " << r;
  }
  // And training actually moved the parameters.
  EXPECT_GT(maxAbsDiff(reference, trainReference(optimizer, 0, 1)), 1e-3);
}

INSTANTIATE_TEST_SUITE_P(Backends, Equivalence,
                         ::testing::Combine(::testing::Values("inproc", "gloo"),
                                            ::testing::Values("sgd", "adam"),
                                            ::testing::Values(2, 4)),
                         [](const auto& info) {
                           return std::get<0>(info.param) + "_" + std::get<1>(info.param) +
                                  "_world" + std::to_string(std::get<2>(info.param));
                         });

TEST(GradientAccumulation, KMicroBatchesEqualOneBigBatchAndCommunicateOnce) {
  at::set_num_threads(1);
  constexpr int kWorld = 2;
  constexpr int kAccumulation = 4;
  std::vector<std::shared_ptr<CountingCollectives>> counters;
  std::vector<std::shared_ptr<Collectives>> group;
  for (auto& c : inprocGroup(kWorld)) {
    counters.push_back(std::make_shared<CountingCollectives>(c));
    group.push_back(counters.back());
  }
  const auto reference = trainReference("sgd", kSteps, kWorld * kMicro * kAccumulation);
  const auto finals = trainDataParallel(group, "sgd", kSteps, kMicro, smallBuckets(kAccumulation));
  EXPECT_LT(maxAbsDiff(finals[0], reference), 2e-5);

  // Count buckets the same way the Engine does.
  auto probeModel = makeMlp(1);
  auto probeOpt = makeOptimizer("sgd", probeModel->parameters());
  Engine probe(*probeModel, *probeOpt, inprocGroup(1)[0], smallBuckets());
  ASSERT_GT(probe.numBuckets(), 1);
  for (auto& counter : counters) {
    EXPECT_EQ(counter->allreduceCalls.load(), kSteps * probe.numBuckets());
  }
}

}  // namespace
}  // namespace hearth::testing
