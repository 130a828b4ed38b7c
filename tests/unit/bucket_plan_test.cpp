#include <gtest/gtest.h>

#include <numeric>

#include "hearth/runtime/bucket_plan.h"

namespace hearth {
namespace {

TEST(BucketPlan, EveryTensorInExactlyOneBucketContiguously) {
  const std::vector<std::size_t> numels = {3, 1000, 1, 1, 7, 50, 2, 2, 2, 999};
  const auto plan = planBuckets(numels, 64);
  std::vector<int> seen(numels.size(), 0);
  for (std::size_t b = 0; b < plan.buckets.size(); ++b) {
    std::size_t offset = 0;
    for (const auto& slot : plan.buckets[b].slots) {
      EXPECT_EQ(slot.offset, offset);
      EXPECT_EQ(slot.numel, numels[slot.tensorIndex]);
      EXPECT_EQ(plan.bucketOfTensor[slot.tensorIndex], b);
      offset += slot.numel;
      ++seen[slot.tensorIndex];
    }
    EXPECT_EQ(offset, plan.buckets[b].numel);
    // Only a bucket holding a single oversized tensor may exceed the cap.
    if (plan.buckets[b].numel > 64) EXPECT_EQ(plan.buckets[b].slots.size(), 1u);
  }
  for (int count : seen) EXPECT_EQ(count, 1);
}

TEST(BucketPlan, ReverseOrderAndFusion) {
  const auto plan = planBuckets({4, 4, 4, 4}, 8);
  ASSERT_EQ(plan.buckets.size(), 2u);
  EXPECT_EQ(plan.buckets[0].slots[0].tensorIndex, 3u);
  EXPECT_EQ(plan.buckets[0].slots[1].tensorIndex, 2u);
  EXPECT_EQ(plan.buckets[1].slots[0].tensorIndex, 1u);
}

TEST(BucketPlan, EmptyAndZeroSized) {
  EXPECT_TRUE(planBuckets({}, 10).buckets.empty());
  const auto plan = planBuckets({0, 5}, 10);
  ASSERT_EQ(plan.buckets.size(), 1u);
  EXPECT_EQ(plan.buckets[0].slots.size(), 2u);
  EXPECT_THROW(planBuckets({1}, 0), std::invalid_argument);
}

TEST(BucketPlan, GroupsNeverMixAndFollowReadyOrder) {
  // Tensors 0..5; odd ones are "dense" (group 1).
  const std::vector<std::size_t> numels = {10, 1, 10, 1, 10, 1};
  const std::vector<int> groups = {0, 1, 0, 1, 0, 1};
  const auto plan = planBuckets(numels, 100, groups);
  ASSERT_EQ(plan.buckets.size(), 2u);
  for (const auto& bucket : plan.buckets) {
    for (const auto& slot : bucket.slots) EXPECT_EQ(groups[slot.tensorIndex], bucket.group);
  }
  // Group 0's lowest tensor (0) is ready after group 1's lowest (1): group 1 first.
  EXPECT_EQ(plan.buckets[0].group, 1);
  const auto capped = planBuckets(numels, 15, groups);
  for (const auto& bucket : capped.buckets) {
    for (const auto& slot : bucket.slots) EXPECT_EQ(groups[slot.tensorIndex], bucket.group);
  }
  EXPECT_THROW(planBuckets(numels, 10, std::vector<int>{0}), std::invalid_argument);
}

}  // namespace
}  // namespace hearth
