// One collective call's plumbing: deadline-bounded chunk receives, tracked
// non-blocking sends, float serialization.
#include "mesh_call.h"

#include <algorithm>
#include <cstring>
#include <string>

namespace hearth {
namespace mesh_detail {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "mesh collectives serialize floats by memcpy: little-endian hosts only");

namespace {
constexpr std::size_t kReapThreshold = 64;
}

Call::Call(Mesh& mesh, const char* op, MeshTag firstTag, Millis timeout,
           const MeshCollectivesOptions& options)
    : mesh_(mesh),
      op_(op),
      rank_(mesh.rank()),
      worldSize_(mesh.worldSize()),
      firstTag_(firstTag),
      chunkTimeout_(options.chunkTimeout),
      chunkBytes_(options.chunkBytes),
      maxItemBytes_(options.maxAllgatherItemBytes) {
  const Clock::time_point now = Clock::now();
  if (timeout < Millis(0)) timeout = Millis(0);
  // Avoid overflow for "no timeout" style values.
  if (timeout >= std::chrono::duration_cast<Millis>(Clock::time_point::max() - now)) {
    deadline_ = Clock::time_point::max();
  } else {
    deadline_ = now + timeout;
  }
}

Millis Call::waitBudget() const {
  Millis left = kMeshNoTimeout;
  if (deadline_ != Clock::time_point::max()) {
    left = std::max(Millis(0),
                    std::chrono::duration_cast<Millis>(deadline_ - Clock::now()) + Millis(1));
  }
  if (chunkTimeout_ > Millis(0)) left = std::min(left, chunkTimeout_);
  return left;
}

void Call::send(int peer, MeshTag tag, MeshBytes bytes) {
  track(mesh_.isend(peer, tag, std::move(bytes)));
}

void Call::track(std::unique_ptr<MeshRequest> send) {
  sends_.push_back(std::move(send));
  if (sends_.size() >= kReapThreshold) reapFinishedSends();
}

void Call::reapFinishedSends() {
  auto done =
      std::stable_partition(sends_.begin(), sends_.end(),
                            [](const std::unique_ptr<MeshRequest>& r) { return !r->test(); });
  for (auto it = done; it != sends_.end(); ++it) (*it)->wait(Millis(0));  // throws on failure
  sends_.erase(done, sends_.end());
}

void Call::sendFrom(int peer, MeshTag tag, const std::uint8_t* data, std::size_t size) {
  track(mesh_.isendFrom(peer, tag, data, size));
}

MeshBytes Call::recv(int peer, MeshTag tag) {
  return mesh_.recv(peer, tag, waitBudget());
}

std::unique_ptr<MeshRequest> Call::postRecvInto(int peer, MeshTag tag, std::uint8_t* into,
                                                std::size_t size) {
  return mesh_.irecvInto(peer, tag, into, size);
}

void Call::finishRecvInto(MeshRequest& request, std::uint8_t* into, std::size_t size) {
  mesh_.finishBlocking(request, waitBudget(), "recv from");
  MeshBytes msg = request.take();
  expectSize(*this, request.peer(), msg.size(), size);
  if (msg.data() != into && size > 0) std::memcpy(into, msg.data(), size);
}

void Call::finishSends() {
  for (auto& request : sends_) {
    if (!request->wait(waitBudget())) {
      request->cancel();
      throw MeshTimeout(request->peer(), mesh_.backendName() + " mesh rank " +
                                             std::to_string(rank_) + ": send to rank " +
                                             std::to_string(request->peer()) + " timed out");
    }
  }
  sends_.clear();
}

MeshBytes floatsToBytes(const float* data, std::size_t count) {
  // The range constructor copies straight into the new buffer (no zero fill).
  const auto* first = reinterpret_cast<const std::uint8_t*>(data);
  return MeshBytes(first, first + count * sizeof(float));
}

namespace {
// bytes[i] += own[i] for i < count (floats at any alignment in bytes); with
// StoreSum also own[i] = the sum, in the same pass.
// Own is float, or const float when !StoreSum.
template <bool StoreSum, typename Own>
void addFloats(Own* own, MeshBytes& bytes, std::size_t count) {
  std::uint8_t* at = bytes.data();
  constexpr std::size_t kBlock = 16;  // fixed-size inner loops: vectorized
  float sum[kBlock];
  std::size_t i = 0;
  for (; i + kBlock <= count; i += kBlock) {
    std::memcpy(sum, at + i * sizeof(float), sizeof sum);
    for (std::size_t j = 0; j < kBlock; ++j) sum[j] = sum[j] + own[i + j];
    std::memcpy(at + i * sizeof(float), sum, sizeof sum);
    if constexpr (StoreSum) std::memcpy(own + i, sum, sizeof sum);
  }
  for (; i < count; ++i) {
    std::memcpy(sum, at + i * sizeof(float), sizeof(float));
    sum[0] = sum[0] + own[i];
    std::memcpy(at + i * sizeof(float), sum, sizeof(float));
    if constexpr (StoreSum) own[i] = sum[0];
  }
}
}  // namespace

void addFloatsIntoBytes(const float* own, MeshBytes& bytes, std::size_t count) {
  addFloats<false>(own, bytes, count);
}

void addFloatsIntoBoth(float* own, MeshBytes& bytes, std::size_t count) {
  addFloats<true>(own, bytes, count);
}

std::vector<std::size_t> meshBounds(std::size_t n, int worldSize) {
  std::vector<std::size_t> bounds(static_cast<std::size_t>(worldSize) + 1, 0);
  for (int r = 0; r < worldSize; ++r) bounds[r + 1] = meshRange(n, worldSize, r).hi;
  return bounds;
}

void failUsage(const Call& call, const std::string& why) {
  throw CollectiveUsageError(std::string("mesh ") + call.op() + ": rank " +
                             std::to_string(call.rank()) + ": " + why);
}

void checkBounds(const Call& call, const std::vector<std::size_t>& bounds) {
  const std::string why = boundsProblem(bounds, call.worldSize());
  if (!why.empty()) failUsage(call, why);
}

void expectSize(const Call& call, int peer, std::size_t got, std::size_t want) {
  if (got == want) return;
  throw CollectiveUsageError(
      std::string("mesh ") + call.op() + ": rank " + std::to_string(call.rank()) + " got a " +
      std::to_string(got) + "-byte message from rank " + std::to_string(peer) + ", expected " +
      std::to_string(want) + " bytes (ranks passed different sizes or counts)");
}

}  // namespace mesh_detail
}  // namespace hearth
