// Ring reduce-scatter (and, continued, ring allreduce) over float buffers,
// chunked and pipelined: a chunk is forwarded as soon as it has been reduced.
//
// Segment s of the buffer is meshRange(count, W, s). In reduce-scatter step k
// (k = 0 .. W-2) rank r sends segment r-k-1 to r+1 and receives segment r-k-2
// from r-1, adds its own values and forwards that same chunk in step k+1. After
// the last step rank r holds the full sum of segment r, formed exactly once,
// in the order r+1, r+2, ..., r. The allgather phase then circulates the
// finished segments (step k: send r-k, receive r-k-1), copying only.
#include <algorithm>

#include "mesh_call.h"

namespace hearth {
namespace mesh_detail {

void ringReduce(Call& call, float* data, std::size_t count, bool thenAllgather) {
  const int worldSize = call.worldSize();
  const int rank = call.rank();
  if (worldSize == 1) return;
  const int left = ringRank(rank - 1, worldSize);
  const int right = ringRank(rank + 1, worldSize);
  const std::size_t chunkElems = std::max<std::size_t>(1, call.chunkBytes() / sizeof(float));
  const MeshTag reduceTag = call.tag(0);
  const MeshTag gatherTag = call.tag(1);
  auto segment = [&](int s) { return meshRange(count, worldSize, ringRank(s, worldSize)); };
  auto sendChunk = [&](MeshTag tag, std::size_t lo, std::size_t n) {
    call.send(right, tag, floatsToBytes(data + lo, n));
  };

  // Reduce-scatter step 0: our own values of segment rank-1.
  const MeshRange first = segment(rank - 1);
  for (std::size_t off = 0; off < first.size(); off += chunkElems) {
    sendChunk(reduceTag, first.lo + off, std::min(chunkElems, first.size() - off));
  }
  std::vector<float> incoming(std::min(chunkElems, count));
  for (int step = 0; step < worldSize - 1; ++step) {
    const MeshRange seg = segment(rank - step - 2);
    const bool last = step == worldSize - 2;
    for (std::size_t off = 0; off < seg.size(); off += chunkElems) {
      const std::size_t n = std::min(chunkElems, seg.size() - off);
      const MeshBytes msg = call.recv(left, reduceTag);
      expectSize(call, left, msg.size(), n * sizeof(float));
      bytesToFloats(msg, incoming.data(), n);
      float* dst = data + seg.lo + off;
      for (std::size_t i = 0; i < n; ++i) dst[i] = incoming[i] + dst[i];
      if (!last) {
        sendChunk(reduceTag, seg.lo + off, n);
      } else if (thenAllgather) {
        sendChunk(gatherTag, seg.lo + off, n);  // allgather step 0: our finished segment
      }
    }
  }

  if (thenAllgather) {
    for (int step = 0; step < worldSize - 1; ++step) {
      const MeshRange seg = segment(rank - step - 1);
      const bool last = step == worldSize - 2;
      for (std::size_t off = 0; off < seg.size(); off += chunkElems) {
        const std::size_t n = std::min(chunkElems, seg.size() - off);
        MeshBytes msg = call.recv(left, gatherTag);
        expectSize(call, left, msg.size(), n * sizeof(float));
        bytesToFloats(msg, data + seg.lo + off, n);
        if (!last) call.send(right, gatherTag, std::move(msg));
      }
    }
  }
  call.finishSends();
}

}  // namespace mesh_detail
}  // namespace hearth
