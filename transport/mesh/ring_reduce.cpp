// Ring reduce-scatter, ring allgather and their pipelined composition (ring
// allreduce) over float buffers split into segments by `bounds`; chunked: a
// chunk is forwarded as soon as it has been reduced (or received).
//
// Segment s is [bounds[s], bounds[s+1]) (possibly empty). In reduce-scatter
// step k (k = 0 .. W-2) rank r sends segment r-k-1 to r+1 and receives segment
// r-k-2 from r-1, adds its own values into the received chunk and forwards
// that buffer in step k+1. After the last step rank r holds the full sum of segment r, formed
// exactly once, in the order r+1, r+2, ..., r. The allgather circulates the
// finished segments (step k: send r-k, receive r-k-1), copying only; in an
// allreduce its step-0 sends are the chunks the last reduce step finished.
#include <algorithm>

#include "mesh_call.h"

namespace hearth {
namespace mesh_detail {
namespace {

struct Ring {
  Call& call;
  float* data;
  const std::vector<std::size_t>& bounds;
  int rank;
  int worldSize;
  int left;
  int right;
  std::size_t chunkElems;

  MeshRange segment(int s) const {
    const int at = ringRank(s, worldSize);
    return MeshRange{bounds[at], bounds[at + 1]};
  }
  void sendChunk(MeshTag tag, std::size_t lo, std::size_t n) {
    call.send(right, tag, floatsToBytes(data + lo, n));
  }
  // The next chunk of n floats from the left neighbour.
  MeshBytes recvChunk(MeshTag tag, std::size_t n) {
    MeshBytes msg = call.recv(left, tag);
    expectSize(call, left, msg.size(), n * sizeof(float));
    return msg;
  }
  void sendSegment(MeshTag tag, const MeshRange& seg) {
    for (std::size_t off = 0; off < seg.size(); off += chunkElems) {
      sendChunk(tag, seg.lo + off, std::min(chunkElems, seg.size() - off));
    }
  }

  // Reduce-scatter; with startGather every finished chunk also goes out on
  // gatherTag (the allgather's step 0).
  void reduceScatter(MeshTag reduceTag, bool startGather, MeshTag gatherTag) {
    sendSegment(reduceTag, segment(rank - 1));  // step 0: our own values
    for (int step = 0; step < worldSize - 1; ++step) {
      const MeshRange seg = segment(rank - step - 2);
      const bool last = step == worldSize - 2;
      for (std::size_t off = 0; off < seg.size(); off += chunkElems) {
        const std::size_t n = std::min(chunkElems, seg.size() - off);
        // The partial sum arrives in msg; adding our values into it lets the
        // same buffer travel on (the Mesh may hand over its receive buffer:
        // no copy, no allocation). Only the finished sum lands in data.
        MeshBytes msg = recvChunk(reduceTag, n);
        float* own = data + seg.lo + off;
        addFloatsIntoBytes(own, msg, n);
        if (!last) {
          call.send(right, reduceTag, std::move(msg));
          continue;
        }
        bytesToFloats(msg, own, n);
        if (startGather) call.send(right, gatherTag, std::move(msg));
      }
    }
  }

  // Allgather; step 0's sends (our own segment) already went out unless
  // sendOwn.
  void allgather(MeshTag gatherTag, bool sendOwn) {
    if (sendOwn) sendSegment(gatherTag, segment(rank));
    for (int step = 0; step < worldSize - 1; ++step) {
      const MeshRange seg = segment(rank - step - 1);
      const bool last = step == worldSize - 2;
      for (std::size_t off = 0; off < seg.size(); off += chunkElems) {
        const std::size_t n = std::min(chunkElems, seg.size() - off);
        MeshBytes msg = recvChunk(gatherTag, n);
        bytesToFloats(msg, data + seg.lo + off, n);
        if (!last) call.send(right, gatherTag, std::move(msg));
      }
    }
  }
};

}  // namespace

void ringCollective(Call& call, float* data, const std::vector<std::size_t>& bounds,
                    RingWork work) {
  const int worldSize = call.worldSize();
  const int rank = call.rank();
  if (worldSize == 1) return;
  Ring ring{call,
            data,
            bounds,
            rank,
            worldSize,
            ringRank(rank - 1, worldSize),
            ringRank(rank + 1, worldSize),
            std::max<std::size_t>(1, call.chunkBytes() / sizeof(float))};
  const MeshTag reduceTag = call.tag(0);
  const MeshTag gatherTag = call.tag(1);
  switch (work) {
    case RingWork::kReduceScatter:
      ring.reduceScatter(reduceTag, false, gatherTag);
      break;
    case RingWork::kAllgather:
      ring.allgather(gatherTag, true);
      break;
    case RingWork::kAllreduce:
      ring.reduceScatter(reduceTag, true, gatherTag);
      ring.allgather(gatherTag, false);
      break;
  }
  call.finishSends();
}

}  // namespace mesh_detail
}  // namespace hearth
