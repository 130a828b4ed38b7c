// Epoch permutation (Fisher-Yates with SplitMix64) and per-rank shards.
#include "mnist/sharding.h"

#include <ATen/ops/from_blob.h>

#include <numeric>
#include <utility>

namespace mnist {
namespace {

std::uint64_t splitMix(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

}  // namespace

ShardedSampler::ShardedSampler(std::int64_t datasetSize, std::int64_t microBatch, int rank,
                               int worldSize, std::uint64_t seed)
    : size_(datasetSize),
      microBatch_(microBatch),
      rank_(rank),
      worldSize_(worldSize),
      seed_(seed) {}

std::int64_t ShardedSampler::stepsPerEpoch() const {
  return size_ / (microBatch_ * worldSize_);
}

at::Tensor ShardedSampler::shard(std::int64_t epoch, std::int64_t step) {
  if (epoch != cachedEpoch_) {
    permutation_.resize(static_cast<std::size_t>(size_));
    std::iota(permutation_.begin(), permutation_.end(), std::int64_t{0});
    std::uint64_t state = seed_ * 1000003ULL + static_cast<std::uint64_t>(epoch);
    for (std::int64_t i = size_ - 1; i > 0; --i) {
      const auto j = static_cast<std::int64_t>(splitMix(state) % static_cast<std::uint64_t>(i + 1));
      std::swap(permutation_[static_cast<std::size_t>(i)],
                permutation_[static_cast<std::size_t>(j)]);
    }
    cachedEpoch_ = epoch;
  }
  const std::int64_t begin = (step * worldSize_ + rank_) * microBatch_;
  return at::from_blob(permutation_.data() + begin, {microBatch_}, at::kLong).clone();
}

}  // namespace mnist
