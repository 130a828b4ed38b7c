// Tests of DGC's warm-up density schedule (steps, epochs, explicit list) and
// of the selection count, each against values computed here.
#include <gtest/gtest.h>

#include <cmath>

#include "dgc_schedule.h"
#include "dgc_sparsifier.h"
#include "dgc_test_util.h"

namespace hearth::compress {
namespace {

TEST(DgcSchedule, DefaultExponentialWarmupMatchesThePaper) {
  const auto w = DensitySchedule::exponentialWarmup(0.001, 4);
  ASSERT_EQ(w.size(), 4u);
  const double paper[4] = {0.25, 0.0625, 0.015625, 0.0039};
  for (int p = 0; p < 4; ++p) {
    EXPECT_DOUBLE_EQ(w[p], std::pow(0.001, (p + 1) / 5.0));
    EXPECT_NEAR(w[p] / paper[p], 1.0, 0.03) << p;  // the paper rounds to powers of 1/4
  }
  EXPECT_TRUE(DensitySchedule::exponentialWarmup(0.01, 0).empty());
}

TEST(DgcSchedule, EpochUnit) {
  DensitySchedule s(0.001, WarmupUnit::kEpochs, 1.0, DensitySchedule::exponentialWarmup(0.001, 4));
  const std::int64_t anyStep = 123456;
  EXPECT_DOUBLE_EQ(s.densityAt(anyStep, 0.0), std::pow(0.001, 0.2));
  EXPECT_DOUBLE_EQ(s.densityAt(anyStep, 0.99), std::pow(0.001, 0.2));
  EXPECT_DOUBLE_EQ(s.densityAt(anyStep, 1.0), std::pow(0.001, 0.4));
  EXPECT_DOUBLE_EQ(s.densityAt(anyStep, 2.5), std::pow(0.001, 0.6));
  EXPECT_DOUBLE_EQ(s.densityAt(anyStep, 3.999), std::pow(0.001, 0.8));
  EXPECT_DOUBLE_EQ(s.densityAt(anyStep, 4.0), 0.001);
  EXPECT_DOUBLE_EQ(s.densityAt(anyStep, 1e9), 0.001);
  EXPECT_DOUBLE_EQ(s.densityAt(anyStep, -1.0), std::pow(0.001, 0.2));
}

TEST(DgcSchedule, StepUnitWithPeriodLengthAndExplicitList) {
  DensitySchedule s(0.01, WarmupUnit::kSteps, 100.0, {0.5, 0.2});
  const double anyEpoch = 7.0;
  EXPECT_DOUBLE_EQ(s.densityAt(0, anyEpoch), 0.5);
  EXPECT_DOUBLE_EQ(s.densityAt(99, anyEpoch), 0.5);
  EXPECT_DOUBLE_EQ(s.densityAt(100, anyEpoch), 0.2);
  EXPECT_DOUBLE_EQ(s.densityAt(199, anyEpoch), 0.2);
  EXPECT_DOUBLE_EQ(s.densityAt(200, anyEpoch), 0.01);
  EXPECT_EQ(s.periodAt(250, anyEpoch), 2);
}

TEST(DgcSchedule, RejectsBadValues) {
  EXPECT_THROW(DensitySchedule(0.0, WarmupUnit::kSteps, 1.0, {}), std::invalid_argument);
  EXPECT_THROW(DensitySchedule(1.5, WarmupUnit::kSteps, 1.0, {}), std::invalid_argument);
  EXPECT_THROW(DensitySchedule(0.1, WarmupUnit::kSteps, 0.0, {}), std::invalid_argument);
  EXPECT_THROW(DensitySchedule(0.1, WarmupUnit::kSteps, 1.0, {0.5, 0.0}), std::invalid_argument);
}

TEST(DgcSchedule, SelectionCount) {
  EXPECT_EQ(selectionCount(0.001, 1000), 1u);  // the product must not round up to 2
  EXPECT_EQ(selectionCount(0.001, 1001), 2u);
  EXPECT_EQ(selectionCount(0.001, 1), 1u);
  EXPECT_EQ(selectionCount(1.0, 7), 7u);
  EXPECT_EQ(selectionCount(0.25, 10), 3u);
  EXPECT_EQ(selectionCount(0.5, 0), 0u);
  EXPECT_EQ(selectionCount(0.001, std::size_t{64} << 20), 67109u);
}

TEST(DgcSchedule, SparsifierFollowsTheScheduleInStepsAndEpochs) {
  auto options = testing::plainOptions(0.001);
  options.warmupPeriods = 4;
  options.warmupUnit = WarmupUnit::kSteps;
  options.warmupPeriod = 2;
  const std::size_t n = 100000;
  DgcSparsifier bySteps(options, n);
  options.warmupUnit = WarmupUnit::kEpochs;
  options.warmupPeriod = 1;
  DgcSparsifier byEpochs(options, n);
  options.warmupDensities = {0.3, 0.03};
  DgcSparsifier byList(options, n);
  const auto g = testing::makeData(testing::Dist::kNormal, n, 1);
  for (int step = 0; step < 12; ++step) {
    StepInfo info;
    info.step = step;
    info.epoch = step * 0.5;
    bySteps.step(testing::view(g), info);
    byEpochs.step(testing::view(g), info);
    byList.step(testing::view(g), info);
    const int stepPeriod = step / 2;
    const int epochPeriod = static_cast<int>(std::floor(step * 0.5));
    const double expectSteps = stepPeriod < 4 ? std::pow(0.001, (stepPeriod + 1) / 5.0) : 0.001;
    const double expectEpochs = epochPeriod < 4 ? std::pow(0.001, (epochPeriod + 1) / 5.0) : 0.001;
    const double expectList = epochPeriod == 0 ? 0.3 : epochPeriod == 1 ? 0.03 : 0.001;
    EXPECT_DOUBLE_EQ(bySteps.currentDensity(), expectSteps) << step;
    EXPECT_DOUBLE_EQ(byEpochs.currentDensity(), expectEpochs) << step;
    EXPECT_DOUBLE_EQ(byList.currentDensity(), expectList) << step;
    EXPECT_EQ(bySteps.lastTarget(), selectionCount(expectSteps, n));
  }
}

}  // namespace
}  // namespace hearth::compress
