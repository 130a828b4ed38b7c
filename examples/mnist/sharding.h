// mnist/sharding.h — which training images each rank sees at each step.
//
// Every epoch the whole training set is shuffled with a permutation that
// depends only on (seed, epoch), so all ranks compute the same one. Step s of
// the epoch uses global batch s (microBatch x worldSize consecutive entries of
// the permutation) and rank r takes entries [r x microBatch, (r+1) x
// microBatch) of it: the ranks' shards are disjoint and together form the
// global batch, like a DistributedSampler. The tail that does not fill a whole
// global batch is dropped. Not thread-safe (caches the current permutation).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace mnist {

class ShardedSampler {
 public:
  ShardedSampler(std::int64_t datasetSize, std::int64_t microBatch, int rank, int worldSize,
                 std::uint64_t seed);
  // Whole global batches per epoch (0 when the dataset is smaller than one).
  std::int64_t stepsPerEpoch() const;
  // int64 [microBatch] indices of this rank's shard of batch `step` of `epoch`.
  at::Tensor shard(std::int64_t epoch, std::int64_t step);

 private:
  std::int64_t size_, microBatch_;
  int rank_, worldSize_;
  std::uint64_t seed_;
  std::int64_t cachedEpoch_ = -1;
  std::vector<std::int64_t> permutation_;
};

}  // namespace mnist
