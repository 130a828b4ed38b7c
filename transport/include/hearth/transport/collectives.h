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

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
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

  // Returns once every rank has entered the barrier.
  virtual void barrier(Millis timeout) = 0;

  // Makes pending and future calls on this rank fail with CollectiveAborted.
  virtual void abort() = 0;
};

}  // namespace hearth
