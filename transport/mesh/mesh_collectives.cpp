// MeshCollectives: the Collectives front end over a Mesh. Gives each call its
// tag range, runs the algorithm (ring_reduce.cpp, chain_broadcast.cpp,
// ring_allgather.cpp, sparse_reduce_scatter.cpp) and maps Mesh errors to
// Collective errors.
#include "hearth/transport/mesh_collectives.h"

#include <algorithm>
#include <string>

#include "mesh_call.h"

namespace hearth {

MeshRange meshRange(std::size_t n, int worldSize, int rank) {
  const std::size_t w = static_cast<std::size_t>(worldSize);
  const std::size_t r = static_cast<std::size_t>(rank);
  const std::size_t base = n / w;
  const std::size_t extra = n % w;
  MeshRange range;
  range.lo = r * base + std::min(r, extra);
  range.hi = range.lo + base + (r < extra ? 1 : 0);
  return range;
}

MeshCollectives::MeshCollectives(std::shared_ptr<Mesh> mesh, MeshCollectivesOptions options)
    : mesh_(std::move(mesh)), options_(options) {
  if (!mesh_) throw CollectiveUsageError("makeMeshCollectives: null mesh");
  if (options_.chunkBytes < sizeof(float)) {
    throw CollectiveUsageError("makeMeshCollectives: chunkBytes must be at least 4");
  }
}

void MeshCollectives::run(const char* op, Millis timeout,
                          const std::function<void(mesh_detail::Call&)>& body) {
  const std::uint64_t sequence = sequence_++;
  const std::string where = std::string("mesh ") + op + " #" + std::to_string(sequence) +
                            " on rank " + std::to_string(rank()) + " of " +
                            std::to_string(worldSize());
  if (aborted_.load()) throw CollectiveAborted(where + ": aborted");
  if (failed_) {
    throw CollectiveAborted(where + ": an earlier collective failed; the group is unusable");
  }
  mesh_detail::Call call(*mesh_, op, options_.tagBase + sequence * kMeshCollectiveTagsPerCall,
                         timeout, options_);
  auto giveUp = [&] {
    failed_ = true;
    if (options_.abortMeshOnError) mesh_->abort();
  };
  try {
    body(call);
  } catch (const MeshError& e) {
    giveUp();
    const std::string peer = " rank " + std::to_string(e.peer());
    if (aborted_.load()) throw CollectiveAborted(where + ": aborted (" + e.what() + ")");
    switch (e.kind()) {
      case MeshErrorKind::kTimeout:
        throw CollectiveTimeout(where + ": timed out waiting for" + peer + " (" + e.what() + ")");
      case MeshErrorKind::kPeerLost:
        throw CollectivePeerLost(e.peer(), where + ": lost" + peer + " (" + e.what() + ")");
      case MeshErrorKind::kAborted:
      case MeshErrorKind::kCancelled:
        throw CollectiveAborted(where + ": mesh aborted (" + e.what() + ")");
      case MeshErrorKind::kUsage:
        throw CollectiveUsageError(where + ": " + e.what());
      default:
        throw CollectiveError(where + ": " + meshErrorKindName(e.kind()) + " with" + peer + " (" +
                              e.what() + ")");
    }
  } catch (const CollectiveError&) {
    giveUp();
    throw;
  }
}

void MeshCollectives::allreduceSum(float* data, std::size_t count, Millis timeout) {
  run("allreduceSum", timeout, [&](mesh_detail::Call& call) {
    mesh_detail::ringCollective(call, data, mesh_detail::meshBounds(count, worldSize()),
                                mesh_detail::RingWork::kAllreduce);
  });
}

void MeshCollectives::reduceScatterSum(float* data, const std::vector<std::size_t>& bounds,
                                       Millis timeout) {
  run("reduceScatterSum", timeout, [&](mesh_detail::Call& call) {
    mesh_detail::checkBounds(call, bounds);
    mesh_detail::ringCollective(call, data, bounds, mesh_detail::RingWork::kReduceScatter);
  });
}

void MeshCollectives::allgatherInPlace(float* data, const std::vector<std::size_t>& bounds,
                                       Millis timeout) {
  run("allgatherInPlace", timeout, [&](mesh_detail::Call& call) {
    mesh_detail::checkBounds(call, bounds);
    mesh_detail::ringCollective(call, data, bounds, mesh_detail::RingWork::kAllgather);
  });
}

void MeshCollectives::sparseReduceScatterAdd(const std::vector<std::uint32_t>& indices,
                                             const std::vector<float>& values,
                                             const std::vector<std::size_t>& bounds, float* owned,
                                             Millis timeout) {
  run("sparseReduceScatterAdd", timeout, [&](mesh_detail::Call& call) {
    mesh_detail::sparseReduceScatterAdd(call, indices, values, bounds, owned);
  });
}

void MeshCollectives::broadcast(void* data, std::size_t bytes, int root, Millis timeout) {
  run("broadcast", timeout, [&](mesh_detail::Call& call) {
    if (root < 0 || root >= worldSize()) {
      throw CollectiveUsageError("mesh broadcast: root " + std::to_string(root) +
                                 " is not a rank of a group of " + std::to_string(worldSize()));
    }
    mesh_detail::chainBroadcast(call, static_cast<std::uint8_t*>(data), bytes, root);
  });
}

std::vector<std::vector<std::uint8_t>> MeshCollectives::allgatherBytes(
    const std::vector<std::uint8_t>& mine, Millis timeout) {
  std::vector<std::vector<std::uint8_t>> all;
  run("allgatherBytes", timeout,
      [&](mesh_detail::Call& call) { all = mesh_detail::ringAllgather(call, mine); });
  return all;
}

void MeshCollectives::barrier(Millis timeout) {
  run("barrier", timeout, [&](mesh_detail::Call& call) { mesh_detail::ringAllgather(call, {}); });
}

void MeshCollectives::abort() {
  aborted_.store(true);
  mesh_->abort();
}

// The two meshRange-split forms below wrap the general ones above.
std::vector<float> MeshCollectives::reduceScatterSum(const float* data, std::size_t count,
                                                     Millis timeout) {
  std::vector<float> work(data, data + count);  // `data` is const: a working copy
  reduceScatterSum(work.data(), mesh_detail::meshBounds(count, worldSize()), timeout);
  const MeshRange mine = meshRange(count, worldSize(), rank());
  return std::vector<float>(work.begin() + mine.lo, work.begin() + mine.hi);
}

std::vector<float> MeshCollectives::sparseReduceScatterSum(
    const std::vector<std::uint64_t>& indices, const std::vector<float>& values, std::size_t n,
    Millis timeout) {
  std::vector<float> out(meshRange(n, worldSize(), rank()).size(), 0.0f);
  run("sparseReduceScatterSum", timeout, [&](mesh_detail::Call& call) {
    mesh_detail::sparseReduceScatterAdd(call, indices, values,
                                        mesh_detail::meshBounds(n, worldSize()), out.data());
  });
  return out;
}

std::unique_ptr<MeshCollectives> makeMeshCollectives(std::shared_ptr<Mesh> mesh,
                                                     MeshCollectivesOptions options) {
  return std::make_unique<MeshCollectives>(std::move(mesh), options);
}

}  // namespace hearth
