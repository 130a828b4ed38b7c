// ZeRO stages 1-3 train to the same parameters as one process on the whole
// batch (plain data parallel), for SGD with momentum, Adam and AdamW, on 2,
// 3 and 4 ranks, with an uneven parameter count, with accumulation.
#include <gtest/gtest.h>

#include "zero_harness.h"

namespace hearth::testing {
namespace {

struct Case {
  int stage;
  int world;
  std::string optimizer;
  int accumulation;
};

std::string caseName(const ::testing::TestParamInfo<Case>& info) {
  return "stage" + std::to_string(info.param.stage) + "_world" + std::to_string(info.param.world) +
         "_" + info.param.optimizer + "_k" + std::to_string(info.param.accumulation);
}

class ZeroEquivalence : public ::testing::TestWithParam<Case> {};

TEST_P(ZeroEquivalence, MatchesSingleProcessOn20Steps) {
  const Case c = GetParam();
  const int steps = 20;
  const int micro = 3;
  const auto reference = trainReference(c.optimizer, steps, c.world * micro * c.accumulation);
  ZeroOptions options;
  options.stage = c.stage;
  options.gradientAccumulationSteps = c.accumulation;
  options.persistBelowNumel = 64;
  options.bucketCapMb = 0.004;  // ~1000 floats: several buckets per group
  std::vector<std::vector<at::Tensor>> finals(static_cast<std::size_t>(c.world));
  runRanks(c.world, [&](int rank, std::shared_ptr<Collectives> comm) {
    finals[static_cast<std::size_t>(rank)] =
        trainRank(std::move(comm), c.optimizer, steps, micro, options);
  });
  for (int r = 0; r < c.world; ++r) {
    const auto& got = finals[static_cast<std::size_t>(r)];
    ASSERT_EQ(got.size(), reference.size());
    EXPECT_LT(maxAbsDiff(got, reference), 2e-5) << "rank " << r;
    // All ranks hold bitwise the same parameters.
    EXPECT_EQ(maxAbsDiff(got, finals[0]), 0.0) << "rank " << r;
  }
}

INSTANTIATE_TEST_SUITE_P(Stages, ZeroEquivalence,
                         ::testing::Values(Case{1, 2, "sgd", 1}, Case{1, 4, "adam", 1},
                                           Case{2, 2, "sgd", 1}, Case{2, 4, "adam", 1},
                                           Case{2, 3, "adamw", 2}, Case{3, 2, "sgd", 1},
                                           Case{3, 4, "adam", 1}, Case{3, 3, "adamw", 2},
                                           Case{1, 3, "sgd", 2}, Case{3, 4, "sgd", 1},
                                           Case{2, 4, "sgd", 1}, Case{3, 2, "adam", 1}),
                         caseName);

}  // namespace
}  // namespace hearth::testing
