// Internal to transport/zmq: a direct link's bulk lane, a plain TCP
// connection next to the link's ZeroMQ socket that carries the pair's DATA
// frames (docs/transport_protocol.md "Bulk lanes").
//
// Why: libzmq receives every message into a buffer it allocates on its own
// I/O thread and passes it on through a queue and a wake-up to the thread
// that reads the socket; on a lane the mesh's I/O thread reads and writes the
// kernel socket itself, one thread hop and one allocator fewer per frame.
//
// Wire (little-endian). The dialer opens the connection and first sends a
// 32-byte hello:
//   "hearthL1" | i32 dialer rank | u32 0 | 16-byte key (from LANE_OFFER)
// Then each direction carries frames: a 32-byte header
//   u32 kLaneFrameMagic | u32 0 | u64 tag | u64 seq | u64 size
// followed by `size` payload bytes.
//
// Contract
// - Not thread-safe: one thread (the mesh's I/O thread) owns each object.
// - Never blocks: sockets are non-blocking; the owner polls fd() (for
//   writing too while wantsWrite()) and then calls flush()/readFrames().
// - Errors are returned (false and a reason), never thrown; after an error
//   the lane is dead and its owner drops it. Destruction closes the socket.
// - Hosts are numeric only (IPv4 or IPv6 literals): resolving a name could
//   block the I/O thread. numericHostOf() says whether an endpoint qualifies.
#pragma once

#include <zmq.hpp>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "buffer_pool.h"
#include "hearth/transport/mesh.h"
#include "zmq_wire.h"

namespace hearth {
namespace zmqlane {

using Clock = std::chrono::steady_clock;

constexpr std::size_t kKeyBytes = zmqwire::kLaneKeyBytes;
using LaneKey = std::array<std::uint8_t, kKeyBytes>;
constexpr std::size_t kHelloBytes = 32;
constexpr std::size_t kFrameHeaderBytes = 32;
constexpr std::uint32_t kLaneFrameMagic = 0x3146'4c48;  // "HLF1"

// A fresh random key (the listener's secret for one offered lane).
LaneKey randomKey();

// The numeric host of "tcp://HOST:PORT" ("[v6]" brackets removed), or ""
// when HOST is not an IPv4/IPv6 literal.
std::string numericHostOf(const std::string& endpoint);

// A frame read from a lane. `placed`: its body went where the placer said
// (bytes is then empty).
struct LaneFrame {
  MeshTag tag;
  std::uint64_t seq;
  MeshBytes bytes;
  bool placed = false;
};

// Where a lane's frames go, one at a time, in order.
class LaneSink {
 public:
  virtual ~LaneSink() = default;
  // A frame's header is in: where its body of `size` bytes goes, or nullptr
  // for a pool buffer.
  virtual std::uint8_t* place(MeshTag tag, std::uint64_t seq, std::size_t size) {
    (void)tag;
    (void)seq;
    (void)size;
    return nullptr;
  }
  // A complete frame (called before the next frame's place()).
  virtual void deliver(LaneFrame frame) = 0;
};

// The accepting side: a listening socket on the direct-link listener's host
// (port chosen by the kernel) and the connections whose hello is not in yet.
class LaneListener {
 public:
  // A connection that sent a well-formed hello; the caller checks rank and
  // key and either adopts fd (BulkLane::adopt) or closes it.
  struct Arrival {
    int rank;
    LaneKey key;
    int fd;
  };

  // Listens on host:0. nullptr and why on failure. unpaceLocal: see
  // BulkLane::dial; lanes from other hosts keep the system's choice.
  static std::unique_ptr<LaneListener> open(const std::string& host, std::string* why,
                                            bool unpaceLocal = false);
  ~LaneListener();
  LaneListener(const LaneListener&) = delete;
  LaneListener& operator=(const LaneListener&) = delete;

  int port() const { return port_; }
  // The fds to poll for POLLIN: the listening socket and pending hellos.
  void pollFds(std::vector<int>* fds) const;
  // Accepts what is waiting, reads hellos, and returns the complete ones.
  // Connections with a malformed hello, or none within helloTimeout of
  // their accept, are closed (counted in `refused`), and so is every
  // connection beyond kMaxPendingHellos waiting at once (a stranger opening
  // connections by the thousand costs this node no more than that).
  static constexpr std::size_t kMaxPendingHellos = 64;
  std::vector<Arrival> service(std::chrono::milliseconds helloTimeout);
  int refused() const { return refused_; }

 private:
  struct Pending {
    int fd;
    Clock::time_point since;
    std::array<std::uint8_t, kHelloBytes> hello;
    std::size_t have = 0;
  };
  LaneListener(int fd, int port, std::string remoteCongestionControl)
      : fd_(fd), port_(port), remoteCongestionControl_(std::move(remoteCongestionControl)) {}
  int fd_;
  int port_;
  // Non-empty when the listening socket was unpaced: what a connection from
  // another host gets back (the system's congestion control).
  std::string remoteCongestionControl_;
  std::vector<Pending> pending_;
  int refused_ = 0;
};

// One connected (or, on the dialing side, connecting) lane.
class BulkLane {
 public:
  // Dialer: starts a non-blocking connect to host:port whose hello carries
  // myRank and key. nullptr and why when it fails at once.
  // unpaceLocal: a lane to this same host (a loopback address or one of
  // ours) whose congestion control would pace by itself (BBR) uses one that
  // does not (cubic, else reno), chosen before the connection starts (BBR,
  // once started, leaves the socket paced even after a switch). On one host
  // there is no bottleneck queue to pace for, and BBR's pacing costs a timer
  // interrupt per burst (an 8-rank allreduce bench: ~67,000 pacing timers
  // per run, ~600 unpaced; docs/benchmarks.md). Over a home uplink pacing is
  // what BBR is for: lanes to other hosts keep the system's choice.
  static std::unique_ptr<BulkLane> dial(const std::string& host, int port, int myRank,
                                        const LaneKey& key, std::int64_t maxFrameBytes,
                                        std::shared_ptr<BufferPool> pool, std::string* why,
                                        bool unpaceLocal = false);
  // Acceptor: a connection from LaneListener::service (hello already read).
  static std::unique_ptr<BulkLane> adopt(int fd, std::int64_t maxFrameBytes,
                                         std::shared_ptr<BufferPool> pool);
  ~BulkLane();
  BulkLane(const BulkLane&) = delete;
  BulkLane& operator=(const BulkLane&) = delete;

  int fd() const { return fd_; }
  // False while a dialer's connect is in progress (frames must not be
  // queued yet); true once connected (the hello is queued first).
  bool connected() const { return connected_; }
  // Whether to poll for writability too: a connect or bytes in progress.
  bool wantsWrite() const { return !connected_ || !out_.empty(); }

  // Queues one frame; body stays referenced until written. `lent`: the body
  // is memory lent by its owner (detachLent() may copy it). REQUIRES:
  // connected().
  void enqueue(MeshTag tag, std::uint64_t seq, zmq::message_t body, bool lent = false);
  // Dialer: finishes the connect when it completed. Then writes queued
  // bytes until the socket is full. False and why on failure.
  bool flush(std::string* why);
  // Reads frames until the socket is empty or about maxBytes were read,
  // handing each to `sink` as it completes. False and why on EOF, a socket
  // error or a malformed header (frames before it were delivered).
  bool readFrames(LaneSink& sink, std::size_t maxBytes, std::string* why);
  // Whether the body being read goes to a placer's destination.
  bool placingBody() const { return inBody_ && placedAt_ != nullptr; }
  // The body being read goes to a pool buffer from now on (what was read
  // into the placer's destination so far is copied there).
  void unplaceBody();
  // Queued lent bodies are replaced by copies (their owners want the memory
  // back; the frames still go out unchanged).
  void detachLent();

 private:
  struct Outgoing {
    std::array<std::uint8_t, kFrameHeaderBytes> header;
    std::size_t headerBytes;  // kFrameHeaderBytes, or kHelloBytes for the hello
    zmq::message_t body;
    std::size_t written = 0;  // of headerBytes + body.size()
    bool lent = false;
  };
  BulkLane(int fd, bool connected, std::int64_t maxFrameBytes, std::shared_ptr<BufferPool> pool)
      : fd_(fd), connected_(connected), maxFrameBytes_(maxFrameBytes), pool_(std::move(pool)) {}
  bool finishConnect(std::string* why);
  bool startBody(LaneSink& sink, std::string* why);
  void finishBody(LaneSink& sink);

  int fd_;
  bool connected_;
  std::int64_t maxFrameBytes_;
  std::shared_ptr<BufferPool> pool_;  // where received bodies go
  std::deque<Outgoing> out_;
  // Reading: the header of the frame in progress, then its body.
  std::array<std::uint8_t, kFrameHeaderBytes> header_{};
  std::size_t headerHave_ = 0;
  bool inBody_ = false;
  MeshTag tag_ = 0;
  std::uint64_t seq_ = 0;
  MeshBytes body_;
  std::uint8_t* placedAt_ = nullptr;  // the body's destination when placed
  std::size_t bodySize_ = 0;
  std::size_t bodyHave_ = 0;
};

}  // namespace zmqlane
}  // namespace hearth
