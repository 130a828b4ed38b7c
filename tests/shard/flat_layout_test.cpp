// FlatLayout: offsets, padding to equal aligned shards, bounds, JSON round trip.
#include "hearth/shard/flat_layout.h"

#include <gtest/gtest.h>

namespace hearth {
namespace {

FlatLayout threeParams(int world) {
  return FlatLayout({"w", "b", "v"}, {{3, 5}, {7}, {2, 2, 2}}, world, 4);
}

TEST(FlatLayout, OffsetsAreBackToBack) {
  const FlatLayout layout = threeParams(3);
  ASSERT_EQ(layout.entries().size(), 3u);
  EXPECT_EQ(layout.entries()[0].offset, 0u);
  EXPECT_EQ(layout.entries()[1].offset, 15u);
  EXPECT_EQ(layout.entries()[2].offset, 22u);
  EXPECT_EQ(layout.numel(), 30u);
}

TEST(FlatLayout, PaddedToEqualAlignedShards) {
  for (int world = 1; world <= 8; ++world) {
    const FlatLayout layout = threeParams(world);
    EXPECT_GE(layout.paddedNumel(), layout.numel());
    EXPECT_EQ(layout.paddedNumel() % (static_cast<std::size_t>(world) * 4), 0u);
    EXPECT_LT(layout.paddedNumel() - layout.numel(), static_cast<std::size_t>(world) * 4);
    std::size_t covered = 0;
    for (int r = 0; r < world; ++r) {
      const FlatRange range = layout.shardRange(r);
      EXPECT_EQ(range.lo, covered);
      EXPECT_EQ(range.size(), layout.shardNumel());
      EXPECT_EQ(range.lo % 4, 0u);
      covered = range.hi;
      EXPECT_LE(layout.dataRange(r).hi, layout.numel());
    }
    EXPECT_EQ(covered, layout.paddedNumel());
  }
}

TEST(FlatLayout, BoundsWithinAWindowSplitByOwner) {
  const FlatLayout layout = threeParams(4);  // padded 32, shards of 8
  EXPECT_EQ(layout.shardBounds(), (std::vector<std::size_t>{0, 8, 16, 24, 32}));
  EXPECT_EQ(layout.shardBoundsWithin({5, 20}), (std::vector<std::size_t>{0, 3, 11, 15, 15}));
}

TEST(FlatLayout, JsonRoundTripAndValidation) {
  const FlatLayout layout = threeParams(3);
  const FlatLayout back = FlatLayout::fromJson(layout.toJson());
  EXPECT_TRUE(back.sameParameters(layout));
  EXPECT_EQ(back.paddedNumel(), layout.paddedNumel());
  nlohmann::json broken = layout.toJson();
  broken["numel"] = 31;
  EXPECT_THROW(FlatLayout::fromJson(broken), std::invalid_argument);
  broken = layout.toJson();
  broken.erase("parameters");
  EXPECT_THROW(FlatLayout::fromJson(broken), std::invalid_argument);
}

TEST(FlatLayout, ReshardKeepsTheGlobalIndexSpace) {
  const FlatLayout four = threeParams(4);
  const FlatLayout three = four.withWorldSize(3);
  EXPECT_TRUE(three.sameParameters(four));
  EXPECT_EQ(three.numel(), four.numel());
  EXPECT_EQ(three.worldSize(), 3);
}

TEST(FlatLayout, RejectsBadArguments) {
  EXPECT_THROW(FlatLayout({"a"}, {}, 2), std::invalid_argument);
  EXPECT_THROW(FlatLayout({"a"}, {{2}}, 0), std::invalid_argument);
  EXPECT_THROW(FlatLayout({"a"}, {{-1}}, 1), std::invalid_argument);
  EXPECT_THROW(threeParams(2).shardRange(2), std::invalid_argument);
}

}  // namespace
}  // namespace hearth
