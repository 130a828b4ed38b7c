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
#include <deque>
#include <memory>

#include "mesh_call.h"

namespace hearth {
namespace mesh_detail {
namespace {

// How many chunks of its own segment a rank sends ahead of what it has
// received in step 0: enough to keep every link busy, few enough that the
// bytes in flight (and the buffers behind them) stay a few chunks per link
// instead of the whole segment, so they are reused hot instead of faulted in.
constexpr std::size_t kOwnChunksAhead = 4;
// How many allgather receives wait posted ahead of the one being finished.
constexpr std::size_t kRecvsAhead = 16;

// Sends one segment of our own values chunk by chunk, at most
// kOwnChunksAhead chunks ahead of the receives that pace it. The chunks are
// lent, not copied (Call::sendFrom): the segment must stay unchanged until
// the Call's sends are finished.
class OwnSegmentSender {
 public:
  OwnSegmentSender(Call& call, const float* data, MeshRange seg, std::size_t chunkElems, int to,
                   MeshTag tag)
      : call_(call), data_(data), seg_(seg), chunkElems_(chunkElems), to_(to), tag_(tag) {}

  void start() { sendChunks(kOwnChunksAhead); }
  // One chunk received: one more may go.
  void paced() { sendChunks(1); }
  // Everything not sent yet.
  void finish() { sendChunks(chunkCount(seg_.size(), chunkElems_)); }

 private:
  void sendChunks(std::size_t count) {
    for (; count > 0 && next_ < seg_.size(); --count, next_ += chunkElems_) {
      const std::size_t n = std::min(chunkElems_, seg_.size() - next_);
      call_.sendFrom(to_, tag_, reinterpret_cast<const std::uint8_t*>(data_ + seg_.lo + next_),
                     n * sizeof(float));
    }
  }

  Call& call_;
  const float* data_;
  MeshRange seg_;
  std::size_t chunkElems_;
  int to_;
  MeshTag tag_;
  std::size_t next_ = 0;
};

// Step 0 of a ring phase (own values, paced) and the later steps (forwarded
// chunks) travel on different tags: both go to the same neighbour
// interleaved, and the receiver takes each in its own order.
struct StepTags {
  MeshTag first;
  MeshTag later;
  MeshTag of(int step) const { return step == 0 ? first : later; }
};

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
  OwnSegmentSender ownSender(MeshTag tag, int s) const {
    return OwnSegmentSender(call, data, segment(s), chunkElems, right, tag);
  }
  // The next chunk of n floats from the left neighbour.
  MeshBytes recvChunk(MeshTag tag, std::size_t n) {
    MeshBytes msg = call.recv(left, tag);
    expectSize(call, left, msg.size(), n * sizeof(float));
    return msg;
  }

  // Reduce-scatter; with startGather every finished chunk also goes out on
  // gather.first (the allgather's step 0).
  void reduceScatter(const StepTags& reduce, bool startGather, const StepTags& gather) {
    OwnSegmentSender own = ownSender(reduce.first, rank - 1);  // step 0: our own values
    own.start();
    for (int step = 0; step < worldSize - 1; ++step) {
      const MeshRange seg = segment(rank - step - 2);
      const bool last = step == worldSize - 2;
      for (std::size_t off = 0; off < seg.size(); off += chunkElems) {
        const std::size_t n = std::min(chunkElems, seg.size() - off);
        // The partial sum arrives in msg; adding our values into it lets the
        // same buffer travel on (the Mesh may hand over its receive buffer:
        // no copy, no allocation). Only the finished sum lands in data.
        MeshBytes msg = recvChunk(reduce.of(step), n);
        if (step == 0) own.paced();
        float* mine = data + seg.lo + off;
        if (!last) {
          addFloatsIntoBytes(mine, msg, n);
          call.send(right, reduce.later, std::move(msg));
          continue;
        }
        addFloatsIntoBoth(mine, msg, n);
        if (startGather) call.send(right, gather.first, std::move(msg));
      }
      if (step == 0) own.finish();
    }
  }

  // Allgather; step 0's sends (our own segment) already went out unless
  // sendOwn. Every chunk is received straight into place where the Mesh can
  // (Mesh::irecvInto), with receives posted kRecvsAhead chunks ahead so that
  // they wait before their chunks arrive; a chunk is forwarded from there.
  // Posting ahead is safe here: no allgather segment is read or written by
  // anything else once the reduce-scatter is done.
  void allgather(const StepTags& gather, bool sendOwn) {
    struct Chunk {
      MeshTag tag;
      std::uint8_t* at;
      std::size_t bytes;
      int step;
    };
    std::vector<Chunk> chunks;
    for (int step = 0; step < worldSize - 1; ++step) {
      const MeshRange seg = segment(rank - step - 1);
      for (std::size_t off = 0; off < seg.size(); off += chunkElems) {
        const std::size_t n = std::min(chunkElems, seg.size() - off);
        chunks.push_back(Chunk{gather.of(step),
                               reinterpret_cast<std::uint8_t*>(data + seg.lo + off),
                               n * sizeof(float), step});
      }
    }
    OwnSegmentSender own = ownSender(gather.first, rank);
    if (sendOwn) own.start();
    std::deque<std::unique_ptr<MeshRequest>> posted;
    std::size_t nextToPost = 0;
    for (std::size_t i = 0; i < chunks.size(); ++i) {
      for (; nextToPost < chunks.size() && nextToPost < i + kRecvsAhead; ++nextToPost) {
        const Chunk& c = chunks[nextToPost];
        posted.push_back(call.postRecvInto(left, c.tag, c.at, c.bytes));
      }
      const Chunk& c = chunks[i];
      call.finishRecvInto(*posted.front(), c.at, c.bytes);
      posted.pop_front();
      if (sendOwn && c.step == 0) own.paced();
      if (c.step < worldSize - 2) call.sendFrom(right, gather.later, c.at, c.bytes);
      const bool stepDone = i + 1 == chunks.size() || chunks[i + 1].step != c.step;
      if (sendOwn && c.step == 0 && stepDone) own.finish();
    }
    if (sendOwn) own.finish();  // no chunks to receive (empty segments)
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
  const StepTags reduce{call.tag(2), call.tag(0)};
  const StepTags gather{call.tag(3), call.tag(1)};
  switch (work) {
    case RingWork::kReduceScatter:
      ring.reduceScatter(reduce, false, gather);
      break;
    case RingWork::kAllgather:
      ring.allgather(gather, true);
      break;
    case RingWork::kAllreduce:
      ring.reduceScatter(reduce, true, gather);
      // The allgather writes the segment the reduce-scatter lent first.
      call.finishSends();
      ring.allgather(gather, false);
      break;
  }
  call.finishSends();
}

}  // namespace mesh_detail
}  // namespace hearth
