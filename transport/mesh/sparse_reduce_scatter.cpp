// Sparse reduce-scatter: each rank sends every owner only its (index, value)
// pairs inside the owner's meshRange, as an 8-byte little-endian pair count
// followed by chunks of 12-byte pairs (u64 index, f32 value). Each owner adds
// the pairs into a dense vector over its range, in rank order 0 .. W-1, so the
// result is deterministic. Volume per rank: 12 bytes per pair sent plus
// 8 bytes of header per peer.
#include <algorithm>
#include <cstring>
#include <string>

#include "mesh_call.h"

namespace hearth {
namespace mesh_detail {
namespace {

constexpr std::size_t kPairBytes = sizeof(std::uint64_t) + sizeof(float);

void validate(const Call& call, const std::vector<std::uint64_t>& indices,
              const std::vector<float>& values, std::size_t n) {
  auto fail = [&](const std::string& why) {
    throw CollectiveUsageError(std::string("mesh ") + call.op() + ": rank " +
                               std::to_string(call.rank()) + ": " + why);
  };
  if (indices.size() != values.size()) {
    fail(std::to_string(indices.size()) + " indices but " + std::to_string(values.size()) +
         " values");
  }
  for (std::size_t i = 0; i < indices.size(); ++i) {
    if (indices[i] >= n) {
      fail("index " + std::to_string(indices[i]) + " is outside [0, " + std::to_string(n) + ")");
    }
    if (i > 0 && indices[i] <= indices[i - 1]) {
      fail("indices are not strictly increasing at position " + std::to_string(i));
    }
  }
}

MeshBytes encodePairs(const std::uint64_t* indices, const float* values, std::size_t count) {
  MeshBytes bytes(count * kPairBytes);
  std::uint8_t* out = bytes.data();
  for (std::size_t i = 0; i < count; ++i, out += kPairBytes) {
    std::memcpy(out, &indices[i], sizeof(std::uint64_t));
    std::memcpy(out + sizeof(std::uint64_t), &values[i], sizeof(float));
  }
  return bytes;
}

}  // namespace

std::vector<float> sparseReduceScatter(Call& call, const std::vector<std::uint64_t>& indices,
                                       const std::vector<float>& values, std::size_t n) {
  validate(call, indices, values, n);
  const int worldSize = call.worldSize();
  const int rank = call.rank();
  const MeshTag tag = call.tag(0);
  const std::size_t pairsPerChunk = std::max<std::size_t>(1, call.chunkBytes() / kPairBytes);
  const MeshRange mine = meshRange(n, worldSize, rank);
  std::vector<float> out(mine.size(), 0.0f);

  std::size_t ownBegin = 0, ownEnd = 0;
  for (int step = 0; step < worldSize; ++step) {
    const int owner = ringRank(rank + step, worldSize);  // spread the senders over owners
    const MeshRange range = meshRange(n, worldSize, owner);
    const std::size_t begin =
        std::lower_bound(indices.begin(), indices.end(), range.lo) - indices.begin();
    const std::size_t end =
        std::lower_bound(indices.begin() + begin, indices.end(), range.hi) - indices.begin();
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

  for (int source = 0; source < worldSize; ++source) {
    if (source == rank) {
      for (std::size_t i = ownBegin; i < ownEnd; ++i) out[indices[i] - mine.lo] += values[i];
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
                                 std::to_string(mine.size()) + " (ranks passed different n)");
    }
    for (std::uint64_t got = 0; got < count; got += pairsPerChunk) {
      const std::size_t m = std::min<std::uint64_t>(pairsPerChunk, count - got);
      const MeshBytes msg = call.recv(source, tag);
      expectSize(call, source, msg.size(), m * kPairBytes);
      const std::uint8_t* in = msg.data();
      for (std::size_t i = 0; i < m; ++i, in += kPairBytes) {
        std::uint64_t index = 0;
        float value = 0;
        std::memcpy(&index, in, sizeof(index));
        std::memcpy(&value, in + sizeof(index), sizeof(value));
        if (index < mine.lo || index >= mine.hi) {
          throw CollectiveUsageError(std::string("mesh ") + call.op() + ": rank " +
                                     std::to_string(rank) + " got index " + std::to_string(index) +
                                     " outside its range from rank " + std::to_string(source) +
                                     " (ranks passed different n)");
        }
        out[index - mine.lo] += value;
      }
    }
  }
  call.finishSends();
  return out;
}

}  // namespace mesh_detail
}  // namespace hearth
