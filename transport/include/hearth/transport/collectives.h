// hearth/transport/collectives.h — the collective-communication interface every
// backend implements (Gloo via c10d, inproc threads, and later hearth-over-ZeroMQ).
//
// Contract
// - One Collectives object belongs to one rank of one group. All ranks of the
//   group must issue the same sequence of collective calls with matching sizes;
//   that is the caller's obligation (the Engine issues them in bucket order).
// - Buffers are plain host memory. This layer knows nothing of torch.
// - Thread-safety: a Collectives object is used by one thread at a time. The
//   Engine calls it from its communication thread only.
// - Blocking: every call blocks until the collective finished on this rank or
//   `timeout` elapsed; then it throws CollectiveTimeout. A dead or aborted
//   peer raises CollectiveError (or a subclass) naming what failed. After any
//   error the group is unusable: the caller reports the error and stops.
// - abort() may be called from any thread; it makes pending and future calls
//   on this rank fail promptly with CollectiveAborted. It never blocks.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace hearth {

using Millis = std::chrono::milliseconds;

// Base of every communication failure. what() names the operation and, where
// known, the peer or rank involved.
class CollectiveError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A collective did not finish within its timeout (a peer stalled or died).
class CollectiveTimeout : public CollectiveError {
 public:
  using CollectiveError::CollectiveError;
};

// abort() was called on this rank, or the group was torn down.
class CollectiveAborted : public CollectiveError {
 public:
  using CollectiveError::CollectiveError;
};

// Bad arguments from the caller (sizes that differ across ranks, bad root).
class CollectiveUsageError : public CollectiveError {
 public:
  using CollectiveError::CollectiveError;
};

class Collectives {
 public:
  virtual ~Collectives() = default;

  virtual int rank() const = 0;
  virtual int worldSize() const = 0;
  // Short backend name for logs and metrics: "gloo", "inproc", ...
  virtual std::string backendName() const = 0;

  // In-place elementwise sum of `count` floats across all ranks.
  // REQUIRES: every rank passes the same count.
  virtual void allreduceSum(float* data, std::size_t count, Millis timeout) = 0;

  // Copies `bytes` bytes from `root`'s buffer into every other rank's buffer.
  // REQUIRES: 0 <= root < worldSize(); every rank passes the same byte count.
  virtual void broadcast(void* data, std::size_t bytes, int root, Millis timeout) = 0;

  // Every rank contributes one byte string (sizes may differ); every rank
  // receives all of them, indexed by rank.
  virtual std::vector<std::vector<std::uint8_t>> allgatherBytes(
      const std::vector<std::uint8_t>& mine, Millis timeout) = 0;

  // Dense in-place reduce-scatter over consecutive ranges (ZeRO-2/3).
  // `bounds` has worldSize()+1 non-decreasing offsets, bounds[0] == 0 and
  // bounds.back() == count of elements in `data`; rank r owns
  // [bounds[r], bounds[r+1]) (ranges may be empty). Every rank passes the same
  // bounds. On return data[bounds[rank()], bounds[rank()+1]) holds the sum over
  // all ranks of that range; the other elements of `data` are unspecified
  // (implementations use them as scratch). With a ring, each rank sends the
  // elements outside its own range once ((W-1)/W x count for even bounds),
  // never a full allreduce.
  virtual void reduceScatterSum(float* /*data*/, const std::vector<std::size_t>& /*bounds*/,
                                Millis /*timeout*/) {
    unsupported("reduceScatterSum");
  }

  // Dense in-place allgather over the same kind of `bounds`: every rank
  // contributes data[bounds[rank()], bounds[rank()+1]); on return every rank's
  // `data` holds all ranges. Each rank receives (W-1)/W x count floats.
  virtual void allgatherInPlace(float* /*data*/, const std::vector<std::size_t>& /*bounds*/,
                                Millis /*timeout*/) {
    unsupported("allgatherInPlace");
  }

  // Sparse reduce-scatter over a dense index space split by `bounds` (as
  // above): every rank passes pairs (indices[i], values[i]) with strictly
  // increasing indices < bounds.back(). On return `owned` (which must hold
  // bounds[rank()+1] - bounds[rank()] floats) has ADDED to it, per owned
  // element, the sum over all ranks (in rank order) of the values at that
  // index. Each rank sends each owner only the pairs in the owner's range
  // (index + value), so the volume per rank stays O(k) as W grows.
  virtual void sparseReduceScatterAdd(const std::vector<std::uint32_t>& /*indices*/,
                                      const std::vector<float>& /*values*/,
                                      const std::vector<std::size_t>& /*bounds*/, float* /*owned*/,
                                      Millis /*timeout*/) {
    unsupported("sparseReduceScatterAdd");
  }

  // Returns once every rank has entered the barrier.
  virtual void barrier(Millis timeout) = 0;

  // Makes pending and future calls on this rank fail with CollectiveAborted.
  virtual void abort() = 0;

 protected:
  // For backends that do not implement an optional collective.
  [[noreturn]] void unsupported(const char* op) const {
    throw CollectiveUsageError(op + std::string(" is not supported by the ") + backendName() +
                               " backend");
  }
};

// Argument checks shared by every backend's bounds-based and sparse
// collectives (one wording for all). Each returns "" when the arguments are
// fine, else why not; the backend throws CollectiveUsageError with it.

// `bounds` must be worldSize+1 non-decreasing offsets starting at 0.
inline std::string boundsProblem(const std::vector<std::size_t>& bounds, int worldSize) {
  const std::size_t want = static_cast<std::size_t>(worldSize) + 1;
  if (bounds.size() != want) {
    return "bad bounds: " + std::to_string(bounds.size()) + " offsets for a group of " +
           std::to_string(worldSize) + " (need " + std::to_string(want) + ")";
  }
  if (bounds[0] != 0) return "bad bounds: bounds[0] is " + std::to_string(bounds[0]) + ", not 0";
  for (std::size_t i = 1; i < bounds.size(); ++i) {
    if (bounds[i] < bounds[i - 1]) {
      return "bad bounds: they decrease at offset " + std::to_string(i);
    }
  }
  return "";
}

// Sparse pairs: as many values as indices, indices strictly increasing and
// below n.
template <class Index>
std::string sparsePairsProblem(const std::vector<Index>& indices, std::size_t valueCount,
                               std::size_t n) {
  if (indices.size() != valueCount) {
    return std::to_string(indices.size()) + " indices but " + std::to_string(valueCount) +
           " values";
  }
  for (std::size_t i = 0; i < indices.size(); ++i) {
    if (indices[i] >= n) {
      return "index " + std::to_string(indices[i]) + " is outside [0, " + std::to_string(n) + ")";
    }
    if (i > 0 && indices[i] <= indices[i - 1]) {
      return "indices are not strictly increasing at position " + std::to_string(i);
    }
  }
  return "";
}

// The sparse reduce-scatter's sum, shared so that every backend adds in the
// same order (bitwise equal results): per index, the values of `pairs` in
// their order, then that sum added to owned[index - lo]. REQUIRES: pairs
// hold each source's (index, value) pairs, sources in rank order, and every
// index is in [lo, lo + size of owned). Sorts `pairs` (stable) by index.
template <class Index>
void addRankOrderedSums(std::vector<std::pair<Index, float>>& pairs, std::size_t lo, float* owned) {
  std::stable_sort(pairs.begin(), pairs.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  for (std::size_t i = 0; i < pairs.size();) {
    float sum = pairs[i].second;
    std::size_t j = i + 1;
    for (; j < pairs.size() && pairs[j].first == pairs[i].first; ++j) sum += pairs[j].second;
    owned[pairs[i].first - lo] += sum;
    i = j;
  }
}

}  // namespace hearth
