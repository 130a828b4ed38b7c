// Ring allgather of variable-size byte strings. Item of rank q travels
// q -> q+1 -> ... -> q-1 as one 8-byte little-endian size header followed by
// ceil(size / chunkBytes) chunks; every message is forwarded on arrival.
#include <algorithm>
#include <cstring>

#include "mesh_call.h"

namespace hearth {
namespace mesh_detail {
namespace {

MeshBytes sizeHeader(std::uint64_t size) {
  MeshBytes header(sizeof(size));
  std::memcpy(header.data(), &size, sizeof(size));  // little-endian host (see mesh_call.cpp)
  return header;
}

}  // namespace

std::vector<std::vector<std::uint8_t>> ringAllgather(Call& call,
                                                     const std::vector<std::uint8_t>& mine) {
  const int worldSize = call.worldSize();
  const int rank = call.rank();
  std::vector<std::vector<std::uint8_t>> all(worldSize);
  all[rank] = mine;
  if (worldSize == 1) return all;
  const int left = ringRank(rank - 1, worldSize);
  const int right = ringRank(rank + 1, worldSize);
  const MeshTag tag = call.tag(0);
  const std::size_t chunk = std::max<std::size_t>(1, call.chunkBytes());

  call.send(right, tag, sizeHeader(mine.size()));
  for (std::size_t off = 0; off < mine.size(); off += chunk) {
    const std::size_t n = std::min(chunk, mine.size() - off);
    call.send(right, tag, MeshBytes(mine.begin() + off, mine.begin() + off + n));
  }
  for (int step = 0; step < worldSize - 1; ++step) {
    const int source = ringRank(rank - step - 1, worldSize);
    const bool forwards = step < worldSize - 2;
    MeshBytes header = call.recv(left, tag);
    expectSize(call, left, header.size(), sizeof(std::uint64_t));
    std::uint64_t size = 0;
    std::memcpy(&size, header.data(), sizeof(size));
    if (size > call.maxItemBytes()) {
      throw CollectiveUsageError(
          std::string("mesh ") + call.op() + ": rank " + std::to_string(call.rank()) +
          " was told by rank " + std::to_string(left) + " to expect a " + std::to_string(size) +
          "-byte item, more than the limit of " + std::to_string(call.maxItemBytes()));
    }
    if (forwards) call.send(right, tag, std::move(header));
    std::vector<std::uint8_t>& item = all[source];
    item.resize(size);
    for (std::size_t off = 0; off < size; off += chunk) {
      const std::size_t n = std::min<std::size_t>(chunk, size - off);
      MeshBytes msg = call.recv(left, tag);
      expectSize(call, left, msg.size(), n);
      std::memcpy(item.data() + off, msg.data(), n);
      if (forwards) call.send(right, tag, std::move(msg));
    }
  }
  call.finishSends();
  return all;
}

}  // namespace mesh_detail
}  // namespace hearth
