// Chained, pipelined broadcast: ranks form a chain root, root+1, ..., root-1;
// each chunk is forwarded down the chain as soon as it arrived, so a large
// payload costs about (bytes + (W-2) * chunk) / bandwidth.
#include <algorithm>
#include <cstring>

#include "mesh_call.h"

namespace hearth {
namespace mesh_detail {

void chainBroadcast(Call& call, std::uint8_t* data, std::size_t bytes, int root) {
  const int worldSize = call.worldSize();
  const int rank = call.rank();
  if (worldSize == 1) return;
  const int position = ringRank(rank - root, worldSize);  // 0 = root
  const int prev = ringRank(rank - 1, worldSize);
  const int next = ringRank(rank + 1, worldSize);
  const bool forwards = position < worldSize - 1;
  const MeshTag tag = call.tag(0);
  const std::size_t chunk = std::max<std::size_t>(1, call.chunkBytes());
  for (std::size_t off = 0; off < bytes; off += chunk) {
    const std::size_t n = std::min(chunk, bytes - off);
    if (position == 0) {
      call.send(next, tag, MeshBytes(data + off, data + off + n));
      continue;
    }
    MeshBytes msg = call.recv(prev, tag);
    expectSize(call, prev, msg.size(), n);
    std::memcpy(data + off, msg.data(), n);
    if (forwards) call.send(next, tag, std::move(msg));
  }
  call.finishSends();
}

}  // namespace mesh_detail
}  // namespace hearth
