// hearth/shard/flat_layout.h — where each parameter of a group lives in the
// group's flat buffer, and which range of that buffer each rank owns.
//
// This is the contract shared by ZeRO (zero.h), the sharded checkpoint files
// (shard_checkpoint.h) and the consolidation tool:
// - Parameters are laid out back to back in the given order (no gaps), each
//   in row-major order: entry i occupies [offset_i, offset_i + numel_i) of the
//   "global index space" [0, numel()).
// - The buffer is padded with zeros to paddedNumel(), the smallest multiple of
//   worldSize x alignElements that holds numel(), so that it splits into
//   worldSize equal shards of shardNumel() elements, each starting on an
//   alignElements boundary. Rank r owns [r*S, (r+1)*S), S = shardNumel().
// - Padding never holds data: checkpoints store only the part of a shard that
//   falls below numel(), which is what makes resharding to another world size
//   a matter of re-slicing the same global index space.
// No torch dependency; cheap to copy.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace hearth {

struct FlatEntry {
  std::string name;
  std::vector<std::int64_t> shape;
  std::size_t offset = 0;
  std::size_t numel = 0;
};

// Half-open element range [lo, hi).
struct FlatRange {
  std::size_t lo = 0;
  std::size_t hi = 0;
  std::size_t size() const { return hi > lo ? hi - lo : 0; }
  bool empty() const { return hi <= lo; }
  // Intersection; when disjoint an empty range at the smaller of the two ends.
  FlatRange intersect(FlatRange other) const;
};

class FlatLayout {
 public:
  FlatLayout() = default;
  // REQUIRES: names.size() == shapes.size(); worldSize >= 1; alignElements >= 1;
  // every dimension >= 0. Throws std::invalid_argument otherwise.
  FlatLayout(const std::vector<std::string>& names,
             const std::vector<std::vector<std::int64_t>>& shapes, int worldSize,
             std::size_t alignElements = 16);

  const std::vector<FlatEntry>& entries() const { return entries_; }
  int worldSize() const { return worldSize_; }
  std::size_t alignElements() const { return align_; }
  std::size_t numel() const { return numel_; }
  std::size_t paddedNumel() const { return padded_; }
  std::size_t shardNumel() const { return padded_ / static_cast<std::size_t>(worldSize_); }

  // The padded range rank `rank` owns: [rank*S, (rank+1)*S).
  FlatRange shardRange(int rank) const;
  // The part of shardRange(rank) that holds data (below numel()).
  FlatRange dataRange(int rank) const;
  // worldSize()+1 offsets r*S, for Collectives::reduceScatterSum and friends.
  std::vector<std::size_t> shardBounds() const;
  // Bounds that split the sub-range `window` of the flat buffer by owner,
  // relative to window.lo (for per-bucket reduce-scatter).
  std::vector<std::size_t> shardBoundsWithin(FlatRange window) const;

  // The same parameters laid out for another world size (same order).
  FlatLayout withWorldSize(int worldSize) const;

  // Round-trips through JSON (for checkpoint headers). fromJson validates
  // every field and throws std::invalid_argument naming the problem.
  nlohmann::json toJson() const;
  static FlatLayout fromJson(const nlohmann::json& json);

  bool sameParameters(const FlatLayout& other) const;

 private:
  std::vector<FlatEntry> entries_;
  int worldSize_ = 1;
  std::size_t align_ = 1;
  std::size_t numel_ = 0;
  std::size_t padded_ = 0;
};

}  // namespace hearth
