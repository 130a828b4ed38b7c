// libFuzzer target for the bulk-lane frame reader (transport/zmq/bulk_lane.h:
// BulkLane::readFrames with its frame kinds, control frames and size
// checks). The input is what a peer writes into a lane, up to its end; the
// reader must deliver complete frames only, in order, each no larger than
// the lane's limit and never more payload than the input held, and end
// with a reason: never crash, hang, read out of bounds or allocate without
// bound. (The peer is on a local socket, not "this host" over TCP, so
// cross-memory reads stay off: a REMOTE_DATA frame must be refused.)
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "bulk_lane.h"

using namespace hearth;
using namespace hearth::zmqlane;

namespace {

constexpr std::int64_t kMaxFrame = 4096;

class CheckingSink : public LaneSink {
 public:
  void deliver(LaneFrame frame) override {
    if (frame.bytes.size() > static_cast<std::size_t>(kMaxFrame)) std::abort();
    if (frame.remote || frame.placed) std::abort();
    payload += frame.bytes.size();
  }
  void acknowledged(std::uint64_t next) override { (void)next; }
  std::size_t payload = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) return 0;
  auto lane = BulkLane::adopt(fds[0], kMaxFrame, BufferPool::create(0), LaneOptions{false, true});
  std::size_t written = 0;
  while (written < size) {
    const ssize_t n = ::send(fds[1], data + written, size - written, 0);
    if (n <= 0) break;
    written += static_cast<std::size_t>(n);
  }
  ::close(fds[1]);  // the peer is done: the reader must end with a reason
  CheckingSink sink;
  std::string why;
  bool ok = true;
  for (int round = 0; ok && round < 100000; ++round) ok = lane->readFrames(sink, 1 << 16, &why);
  if (ok || why.empty()) std::abort();
  if (sink.payload > written) std::abort();
  if (lane->readsRemote() || lane->sendsRemote()) std::abort();
  return 0;
}
