// hearth/runtime/bucket_plan.h — assigns gradient tensors to fixed-size buckets.
//
// Tensors are taken in reverse registration order (the order autograd usually
// finishes their gradients), and packed into a bucket until adding the next
// one would exceed capElements; a tensor larger than the cap gets a bucket of
// its own. Every tensor lands in exactly one bucket at an offset; buckets are
// contiguous and offsets are in elements. Pure function; thread-safe.
#pragma once

#include <cstddef>
#include <vector>

namespace hearth {

struct BucketSlot {
  std::size_t tensorIndex;  // index into the input sizes
  std::size_t offset;       // element offset inside the bucket
  std::size_t numel;
};

struct Bucket {
  std::vector<BucketSlot> slots;
  std::size_t numel = 0;
  int group = 0;  // buckets never mix groups
};

struct BucketPlan {
  std::vector<Bucket> buckets;
  std::vector<std::size_t> bucketOfTensor;  // tensor index -> bucket index
};

// REQUIRES: capElements >= 1.
BucketPlan planBuckets(const std::vector<std::size_t>& tensorNumels, std::size_t capElements);

// Same, with tensors split into groups (e.g. compressed vs dense): one open
// bucket per group; buckets are numbered in the order they close, which
// follows the reverse registration order. REQUIRES: groups.size() ==
// tensorNumels.size().
BucketPlan planBuckets(const std::vector<std::size_t>& tensorNumels, std::size_t capElements,
                       const std::vector<int>& groups);

}  // namespace hearth
