// Tests of MeshBytes: vector-backed and adopted buffers, moves that keep the
// address, deep copies, truncation and conversion back to a vector.
#include <gtest/gtest.h>

#include <memory>
#include <stdexcept>
#include <vector>

#include "hearth/transport/mesh_bytes.h"

namespace hearth {
namespace {

TEST(MeshBytes, BuildsLikeAVector) {
  EXPECT_TRUE(MeshBytes().empty());
  EXPECT_EQ(MeshBytes(3), (MeshBytes{0, 0, 0}));
  EXPECT_EQ(MeshBytes(2, 7), (MeshBytes{7, 7}));
  const std::vector<std::uint8_t> v{1, 2, 3};
  EXPECT_EQ(MeshBytes(v.begin() + 1, v.end()), (MeshBytes{2, 3}));
  EXPECT_NE(MeshBytes{1}, (MeshBytes{1, 0}));
  MeshBytes b{4, 5};
  b[1] = 6;
  EXPECT_EQ(b.at(1), 6);
  EXPECT_THROW(b.at(2), std::out_of_range);
}

TEST(MeshBytes, AdoptsAVectorAndMovesWithoutCopying) {
  std::vector<std::uint8_t> v(1000, 9);
  const std::uint8_t* buffer = v.data();
  MeshBytes b(std::move(v));
  EXPECT_EQ(b.data(), buffer);
  MeshBytes moved(std::move(b));
  EXPECT_EQ(moved.data(), buffer);
  EXPECT_EQ(moved.size(), 1000u);
  EXPECT_TRUE(b.empty());  // NOLINT(bugprone-use-after-move): the moved-from state is specified
  EXPECT_EQ(b.data(), nullptr);
  std::vector<std::uint8_t> back = std::move(moved).toVector();
  EXPECT_EQ(back.data(), buffer);  // handed back, not copied
}

TEST(MeshBytes, AdoptedBlockIsReleasedWithTheLastHolder) {
  auto block = std::make_shared<std::vector<std::uint8_t>>(64, 1);
  std::weak_ptr<std::vector<std::uint8_t>> watch = block;
  std::uint8_t* data = block->data();
  const std::size_t size = block->size();
  MeshBytes b = MeshBytes::adopt(data, size, std::move(block));
  EXPECT_TRUE(b.adopted());
  EXPECT_EQ(b.data(), data);
  b[0] = 42;           // adopted bytes are writable
  MeshBytes copy = b;  // deep copy into a vector of its own
  EXPECT_FALSE(copy.adopted());
  EXPECT_NE(copy.data(), data);
  EXPECT_EQ(copy, b);
  MeshBytes moved = std::move(b);
  EXPECT_FALSE(watch.expired());
  EXPECT_EQ(moved.data(), data);
  moved.truncate(10);
  EXPECT_EQ(moved.size(), 10u);
  const std::vector<std::uint8_t> v = std::move(moved).toVector();
  EXPECT_EQ(v.size(), 10u);
  EXPECT_EQ(v[0], 42);
  EXPECT_TRUE(watch.expired());  // toVector copied and let the block go
}

}  // namespace
}  // namespace hearth
