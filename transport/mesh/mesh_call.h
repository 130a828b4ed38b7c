// Internal to transport/mesh: the state of one collective call (its tags,
// deadline, chunking and outstanding sends) and the algorithms that run on it.
//
// Contract
// - A Call belongs to one collective call on one rank; it is used by one thread.
// - recv() waits at most min(chunk timeout, time left to the deadline) and
//   throws MeshTimeout past it; send() is non-blocking (isend) and keeps the
//   request; finishSends() waits for every outstanding send (until the deadline).
// - Algorithms throw MeshError subclasses (mapped by MeshCollectives::run) or
//   CollectiveUsageError for inconsistent sizes across ranks.
// - Floats are serialized as little-endian IEEE-754 (memcpy on this host).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "hearth/transport/mesh.h"
#include "hearth/transport/mesh_collectives.h"

namespace hearth {
namespace mesh_detail {

using Clock = std::chrono::steady_clock;

class Call {
 public:
  Call(Mesh& mesh, const char* op, MeshTag firstTag, Millis timeout,
       const MeshCollectivesOptions& options);

  Mesh& mesh() { return mesh_; }
  const char* op() const { return op_; }
  int rank() const { return rank_; }
  int worldSize() const { return worldSize_; }
  std::size_t chunkBytes() const { return chunkBytes_; }
  std::size_t maxItemBytes() const { return maxItemBytes_; }
  MeshTag tag(int phase) const { return firstTag_ + static_cast<MeshTag>(phase); }

  void send(int peer, MeshTag tag, MeshBytes bytes);
  // Sends `size` bytes at `data` without copying where the Mesh can
  // (Mesh::isendFrom): they must stay unchanged until finishSends().
  void sendFrom(int peer, MeshTag tag, const std::uint8_t* data, std::size_t size);
  MeshBytes recv(int peer, MeshTag tag);
  // Receives the next message from peer with tag into `into` (exactly
  // `size` bytes, else CollectiveUsageError), straight where the Mesh can:
  // postRecvInto posts it (Mesh::irecvInto), finishRecvInto waits for it
  // (chunk timeout) and copies it into place if the Mesh did not.
  std::unique_ptr<MeshRequest> postRecvInto(int peer, MeshTag tag, std::uint8_t* into,
                                            std::size_t size);
  void finishRecvInto(MeshRequest& request, std::uint8_t* into, std::size_t size);
  void finishSends();

 private:
  Millis waitBudget() const;
  // Keeps a send until finishSends(), reaping finished ones now and then.
  void track(std::unique_ptr<MeshRequest> send);
  void reapFinishedSends();

  Mesh& mesh_;
  const char* op_;
  int rank_;
  int worldSize_;
  MeshTag firstTag_;
  Clock::time_point deadline_;
  Millis chunkTimeout_;
  std::size_t chunkBytes_;
  std::size_t maxItemBytes_;
  std::vector<std::unique_ptr<MeshRequest>> sends_;
};

// (x mod worldSize) for possibly negative x.
inline int ringRank(int x, int worldSize) {
  return ((x % worldSize) + worldSize) % worldSize;
}

// Number of chunks of `chunkElems` elements covering `elems` elements.
inline std::size_t chunkCount(std::size_t elems, std::size_t chunkElems) {
  return (elems + chunkElems - 1) / chunkElems;
}

MeshBytes floatsToBytes(const float* data, std::size_t count);
// The float f at bytes[4i] becomes f + own[i] for i < count, in place in the
// message (any alignment). REQUIRES: bytes.size() >= count * sizeof(float).
void addFloatsIntoBytes(const float* own, MeshBytes& bytes, std::size_t count);
// The same sums, also stored into own[0, count) in the same pass.
void addFloatsIntoBoth(float* own, MeshBytes& bytes, std::size_t count);
// Throws CollectiveUsageError naming the call unless got == want.
void expectSize(const Call& call, int peer, std::size_t got, std::size_t want);

// Offsets bounds[0..W] of the meshRange() split of n elements.
std::vector<std::size_t> meshBounds(std::size_t n, int worldSize);

// Throws CollectiveUsageError naming the call unless `bounds` has W + 1
// non-decreasing offsets starting at 0 (see Collectives::reduceScatterSum).
void checkBounds(const Call& call, const std::vector<std::size_t>& bounds);
// Throws CollectiveUsageError("mesh <op>: rank R: <why>").
[[noreturn]] void failUsage(const Call& call, const std::string& why);

// What ringCollective does over the segments [bounds[s], bounds[s+1]).
enum class RingWork {
  kReduceScatter,  // data[segment rank] ends as the sum over all ranks
  kAllgather,      // every rank ends with every rank's own segment
  kAllreduce,      // both, pipelined: a finished chunk is gathered at once
};

// Ring reduce-scatter and/or allgather over data[0, bounds.back()), in place,
// chunked and pipelined; only chunk-sized temporaries. REQUIRES: checkBounds.
// Uses phases 0 and 2 (reduce: later steps, step 0) and 1 and 3 (gather).
void ringCollective(Call& call, float* data, const std::vector<std::size_t>& bounds, RingWork work);

// Chain broadcast of data[0, bytes) from root. Uses phase 0.
void chainBroadcast(Call& call, std::uint8_t* data, std::size_t bytes, int root);

// Ring allgather of variable-size items. Uses phase 0.
std::vector<std::vector<std::uint8_t>> ringAllgather(Call& call,
                                                     const std::vector<std::uint8_t>& mine);

// Sparse reduce-scatter over [0, bounds.back()) (see
// Collectives::sparseReduceScatterAdd): adds to owned[0, range of rank) the
// rank-ordered sum of every rank's values in that range. Index is uint32_t
// (8-byte pairs on the wire) or uint64_t (12-byte pairs). Validates its
// arguments (CollectiveUsageError). Uses phase 0.
template <typename Index>
void sparseReduceScatterAdd(Call& call, const std::vector<Index>& indices,
                            const std::vector<float>& values,
                            const std::vector<std::size_t>& bounds, float* owned);

}  // namespace mesh_detail
}  // namespace hearth
