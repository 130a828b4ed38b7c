// hearth/transport/mesh_collectives.h — hearth::Collectives implemented over any
// Mesh (inproc, zmq): ring allreduce, chained broadcast, ring allgather of
// variable-size byte strings, barrier, plus dense and sparse reduce-scatter.
// No torch dependency.
//
// Contract
// - One MeshCollectives object is one rank; it shares the Mesh with nobody who
//   uses tags in [options.tagBase, options.tagBase + 2^56) (see Tags below).
//   All ranks issue the same sequence of collective calls with matching sizes
//   (the Collectives contract); the object is used by one thread at a time,
//   except abort(), which may be called from any thread and never blocks.
// - Results are bitwise identical on every rank: each element of an allreduce
//   is summed exactly once, by the rank that owns its range, in a fixed ring
//   order, and then copied to everybody.
// - Ranges: reduceScatterSum/allgatherInPlace/sparseReduceScatterAdd take the
//   caller's `bounds` (collectives.h). allreduceSum and the two older
//   meshRange forms split a buffer of n elements over W ranks by meshRange(): rank r
//   owns [lo_r, hi_r) where the first n % W ranks get floor(n / W) + 1 elements
//   and the others floor(n / W). Ranges may be empty (n < W).
// - Chunking: payloads are cut into messages of at most options.chunkBytes
//   bytes; a chunk is forwarded as soon as it arrived (pipelining).
// - Timeouts: every call finishes within `timeout` or throws CollectiveTimeout.
//   Each single chunk wait is additionally bounded by options.chunkTimeout
//   (0 = only the call's timeout applies).
// - Tags: call number s of this object (s = 0, 1, ...) uses tags
//   tagBase + s * kMeshCollectiveTagsPerCall + phase, phase < 8. Messages of one
//   phase between one pair of ranks rely on the Mesh's per-(peer, tag) order.
// - Errors: MeshTimeout -> CollectiveTimeout; MeshAborted / MeshCancelled ->
//   CollectiveAborted; MeshPeerLost -> CollectivePeerLost (names the peer);
//   MeshUsageError and size mismatches -> CollectiveUsageError; any other
//   MeshError -> CollectiveError. what() names the operation, call number,
//   this rank and the peer. With options.abortMeshOnError (default) the first
//   error also aborts the Mesh, so that every other rank fails promptly (as a
//   lost peer, naming this rank) instead of waiting for its timeout. After any
//   error the object is unusable. abort() aborts the Mesh.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "hearth/transport/collectives.h"
#include "hearth/transport/mesh.h"

namespace hearth {

constexpr MeshTag kMeshCollectiveTagsPerCall = 8;

// A peer died, was dropped or aborted during a collective.
class CollectivePeerLost : public CollectiveError {
 public:
  CollectivePeerLost(int peer, const std::string& what) : CollectiveError(what), peer_(peer) {}
  int peer() const { return peer_; }

 private:
  int peer_;
};

struct MeshCollectivesOptions {
  // Largest message a collective sends; bigger payloads are chunked.
  std::size_t chunkBytes = std::size_t{1} << 20;
  // Bound on each single chunk wait; 0 = only the call's timeout applies.
  Millis chunkTimeout{0};
  // First tag used; see the tag scheme in the contract.
  MeshTag tagBase = MeshTag{0x48} << 56;
  // Abort the Mesh on the first error so that the other ranks fail fast.
  bool abortMeshOnError = true;
  // Largest item allgatherBytes accepts from a peer (its size header is
  // checked before any allocation); bigger announcements are a usage error.
  std::size_t maxAllgatherItemBytes = std::size_t{1} << 30;
};

// Half-open element range [lo, hi) owned by one rank.
struct MeshRange {
  std::size_t lo = 0;
  std::size_t hi = 0;
  std::size_t size() const { return hi - lo; }
};

// The split rule: the first n % worldSize ranks own floor(n / worldSize) + 1
// elements, the others floor(n / worldSize), in rank order.
MeshRange meshRange(std::size_t n, int worldSize, int rank);

namespace mesh_detail {
class Call;
}

class MeshCollectives final : public Collectives {
 public:
  // REQUIRES: mesh != nullptr, options.chunkBytes >= sizeof(float).
  MeshCollectives(std::shared_ptr<Mesh> mesh, MeshCollectivesOptions options);

  int rank() const override { return mesh_->rank(); }
  int worldSize() const override { return mesh_->worldSize(); }
  std::string backendName() const override { return "mesh-" + mesh_->backendName(); }

  // Ring allreduce: reduce-scatter then allgather, chunked and pipelined.
  void allreduceSum(float* data, std::size_t count, Millis timeout) override;
  // Chain from `root` along rank order, chunked and pipelined.
  void broadcast(void* data, std::size_t bytes, int root, Millis timeout) override;
  // Ring allgather; each item is a size header then its chunks.
  std::vector<std::vector<std::uint8_t>> allgatherBytes(const std::vector<std::uint8_t>& mine,
                                                        Millis timeout) override;
  // A ring allgather of empty items.
  void barrier(Millis timeout) override;
  void abort() override;

  // The Collectives contracts, over arbitrary `bounds`: ring reduce-scatter
  // and ring allgather (the two halves of allreduceSum), in place, chunked
  // and pipelined, with only chunk-sized temporaries; sparse pairs travel as
  // 8 bytes (u32 index, f32 value), summed per index in rank order.
  void reduceScatterSum(float* data, const std::vector<std::size_t>& bounds,
                        Millis timeout) override;
  void allgatherInPlace(float* data, const std::vector<std::size_t>& bounds,
                        Millis timeout) override;
  void sparseReduceScatterAdd(const std::vector<std::uint32_t>& indices,
                              const std::vector<float>& values,
                              const std::vector<std::size_t>& bounds, float* owned,
                              Millis timeout) override;

  // Dense reduce-scatter: every rank passes `count` floats; returns the sum
  // over all ranks of the elements of meshRange(count, W, rank()). A wrapper
  // of reduceScatterSum(bounds) on a copy of `data`.
  std::vector<float> reduceScatterSum(const float* data, std::size_t count, Millis timeout);

  // Sparse reduce-scatter over a dense length n: every rank passes pairs
  // (indices[i], values[i]) with strictly increasing indices < n (no
  // duplicates). Returns, as a dense vector over meshRange(n, W, rank()), the
  // sum over all ranks of the values whose index falls in that range (absent
  // entries count as 0; summed in rank order). Each rank sends each owner only
  // the pairs in the owner's range: 12 bytes per pair, O(k) per rank. The
  // same code as sparseReduceScatterAdd(), with 64-bit indices.
  std::vector<float> sparseReduceScatterSum(const std::vector<std::uint64_t>& indices,
                                            const std::vector<float>& values, std::size_t n,
                                            Millis timeout);

 private:
  void run(const char* op, Millis timeout, const std::function<void(mesh_detail::Call&)>& body);

  std::shared_ptr<Mesh> mesh_;
  MeshCollectivesOptions options_;
  std::uint64_t sequence_ = 0;
  std::atomic<bool> aborted_{false};
  bool failed_ = false;
};

std::unique_ptr<MeshCollectives> makeMeshCollectives(std::shared_ptr<Mesh> mesh,
                                                     MeshCollectivesOptions options = {});

}  // namespace hearth
