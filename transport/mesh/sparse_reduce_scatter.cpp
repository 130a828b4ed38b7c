// Sparse reduce-scatter: each rank sends every owner only its (index, value)
// pairs inside the owner's range [bounds[owner], bounds[owner+1]), as an
// 8-byte little-endian pair count followed by chunks of pairs (the index as a
// little-endian uint32 or uint64, then the f32 value). Each owner sums, per
// index, the values in rank order 0 .. W-1 and adds that sum to `owned`, so
// the result is deterministic. Volume per rank: 8 or 12 bytes per pair sent
// plus 8 bytes of header per peer. Scratch is O(pairs received), never
// O(range).
#include <algorithm>
#include <cstring>
#include <string>
#include <utility>

#include "mesh_call.h"

namespace hearth {
namespace mesh_detail {
namespace {

template <typename Index>
constexpr std::size_t kPairBytes = sizeof(Index) + sizeof(float);

template <typename Index>
MeshBytes encodePairs(const Index* indices, const float* values, std::size_t count) {
  MeshBytes bytes(count * kPairBytes<Index>);
  std::uint8_t* out = bytes.data();
  for (std::size_t i = 0; i < count; ++i, out += kPairBytes<Index>) {
    std::memcpy(out, &indices[i], sizeof(Index));
    std::memcpy(out + sizeof(Index), &values[i], sizeof(float));
  }
  return bytes;
}

template <typename Index>
using Pairs = std::vector<std::pair<Index, float>>;

}  // namespace

template <typename Index>
void sparseReduceScatterAdd(Call& call, const std::vector<Index>& indices,
                            const std::vector<float>& values,
                            const std::vector<std::size_t>& bounds, float* owned) {
  checkBounds(call, bounds);
  const std::string why = sparsePairsProblem(indices, values.size(), bounds.back());
  if (!why.empty()) failUsage(call, why);
  const int worldSize = call.worldSize();
  const int rank = call.rank();
  const MeshTag tag = call.tag(0);
  constexpr std::size_t pairBytes = kPairBytes<Index>;
  const std::size_t pairsPerChunk = std::max<std::size_t>(1, call.chunkBytes() / pairBytes);
  const MeshRange mine{bounds[rank], bounds[rank + 1]};

  std::size_t ownBegin = 0, ownEnd = 0;
  for (int step = 0; step < worldSize; ++step) {
    const int owner = ringRank(rank + step, worldSize);  // spread the senders over owners
    const std::size_t lo = bounds[owner], hi = bounds[owner + 1];
    const std::size_t begin =
        std::lower_bound(indices.begin(), indices.end(), lo) - indices.begin();
    const std::size_t end =
        std::lower_bound(indices.begin() + begin, indices.end(), hi) - indices.begin();
    if (owner == rank) {
      ownBegin = begin;
      ownEnd = end;
      continue;
    }
    const std::uint64_t count = end - begin;
    MeshBytes header(sizeof(count));
    std::memcpy(header.data(), &count, sizeof(count));
    call.send(owner, tag, std::move(header));
    for (std::size_t at = begin; at < end; at += pairsPerChunk) {
      const std::size_t m = std::min(pairsPerChunk, end - at);
      call.send(owner, tag, encodePairs(indices.data() + at, values.data() + at, m));
    }
  }

  Pairs<Index> pairs;
  for (int source = 0; source < worldSize; ++source) {
    if (source == rank) {
      for (std::size_t i = ownBegin; i < ownEnd; ++i) pairs.emplace_back(indices[i], values[i]);
      continue;
    }
    const MeshBytes header = call.recv(source, tag);
    expectSize(call, source, header.size(), sizeof(std::uint64_t));
    std::uint64_t count = 0;
    std::memcpy(&count, header.data(), sizeof(count));
    if (count > mine.size()) {
      throw CollectiveUsageError(std::string("mesh ") + call.op() + ": rank " +
                                 std::to_string(rank) + " was announced " + std::to_string(count) +
                                 " pairs by rank " + std::to_string(source) + " for a range of " +
                                 std::to_string(mine.size()) + " (ranks passed different bounds)");
    }
    for (std::uint64_t got = 0; got < count; got += pairsPerChunk) {
      const std::size_t m = std::min<std::uint64_t>(pairsPerChunk, count - got);
      const MeshBytes msg = call.recv(source, tag);
      expectSize(call, source, msg.size(), m * pairBytes);
      const std::uint8_t* in = msg.data();
      for (std::size_t i = 0; i < m; ++i, in += pairBytes) {
        Index index = 0;
        float value = 0;
        std::memcpy(&index, in, sizeof(index));
        std::memcpy(&value, in + sizeof(index), sizeof(value));
        if (index < mine.lo || index >= mine.hi) {
          throw CollectiveUsageError(std::string("mesh ") + call.op() + ": rank " +
                                     std::to_string(rank) + " got index " + std::to_string(index) +
                                     " outside its range from rank " + std::to_string(source) +
                                     " (ranks passed different bounds)");
        }
        pairs.emplace_back(index, value);
      }
    }
  }
  addRankOrderedSums(pairs, mine.lo, owned);
  call.finishSends();
}

template void sparseReduceScatterAdd<std::uint32_t>(Call&, const std::vector<std::uint32_t>&,
                                                    const std::vector<float>&,
                                                    const std::vector<std::size_t>&, float*);
template void sparseReduceScatterAdd<std::uint64_t>(Call&, const std::vector<std::uint64_t>&,
                                                    const std::vector<float>&,
                                                    const std::vector<std::size_t>&, float*);

}  // namespace mesh_detail
}  // namespace hearth
