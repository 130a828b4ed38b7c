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
//   u32 kLaneFrameMagic | u32 kind | u64 tag | u64 seq | u64 size
// DATA (kind 0) is followed by `size` payload bytes; the other kinds are
// below.
//
// Cross-memory reads (LaneOptions::crossMemory, a lane between two processes
// on this host; cross_memory.h says why). Set-up, once per direction, the
// reader R checking the sender S (both sides offer at once):
//   S -> R  OFFER       size 8:  u64 S's pid
//   R -> S  CHALLENGE   size 16: random bytes
//   S -> R  PROOF       size 8:  u64 the address where S keeps those bytes
//   R -> S  ACCEPT      size 0   (R read them from that pid and address)
// R sends CHALLENGE only for an OFFER from this host, and ACCEPT only when
// its read matched: a peer can never make R read another process than its
// own (the pid is proven, not claimed). Without ACCEPT, S sends bytes.
// After ACCEPT, S sends a body of kRemoteMinBytes or more as
//   REMOTE_DATA size = the body's size, then 24 bytes:
//               u64 body address | u64 fence address | u64 fence value
// R copies the body out of S's memory, then reads the fence word: if it no
// longer holds the value, S took the body back meanwhile and the lane fails
// (the frame goes again on another path). S keeps the body and its fence
// live until the frame is acknowledged, the lane ends, or the body's
// lender wants its memory back (detachLent).
//   ACK         size 0, seq = next: every frame below `next` was delivered
// (any lane, cross-memory or not, carries its link's ACKs once up).
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
#include <utility>
#include <vector>

#include "buffer_pool.h"
#include "cross_memory.h"
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

// A frame's kind (the header's second word; see the wire above).
enum class LaneKind : std::uint32_t {
  kData = 0,
  kRemoteData = 1,
  kOffer = 2,
  kChallenge = 3,
  kProof = 4,
  kAccept = 5,
  kAck = 6,
};
// Bodies from this size on go by cross-memory read where the peer accepted.
constexpr std::size_t kRemoteMinBytes = std::size_t{64} << 10;
// Bodies one lane keeps described (and their fences live) at once; more go
// as bytes.
constexpr std::size_t kFenceSlots = 512;
constexpr std::size_t kChallengeBytes = kKeyBytes;

struct LaneOptions {
  // A lane to this same host (a loopback address or one of ours) whose
  // congestion control would pace by itself (BBR) uses one that does not
  // (cubic, else reno), chosen before the connection starts (BBR, once
  // started, leaves the socket paced even after a switch). On one host there
  // is no bottleneck queue to pace for, and BBR's pacing costs a timer
  // interrupt per burst (an 8-rank allreduce bench: ~67,000 pacing timers per
  // run, ~600 unpaced; docs/benchmarks.md). Over a home uplink pacing is what
  // BBR is for: lanes to other hosts keep the system's choice. (dial and
  // LaneListener::open; an accepted lane inherits the listener's.)
  bool unpaceLocal = false;
  // Offer and accept cross-memory reads with a peer on this host.
  bool crossMemory = false;
};

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
  bool remote = false;  // its body was read out of the sender's memory
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
  // An ACK: the peer delivered every frame below `next`.
  virtual void acknowledged(std::uint64_t next) { (void)next; }
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
    bool peerOnThisHost;  // for BulkLane::adopt
  };

  // Listens on host:port (port 0: the kernel picks one). nullptr and why
  // on failure. unpaceLocal: see LaneOptions; lanes from other hosts keep
  // the system's choice.
  static std::unique_ptr<LaneListener> open(const std::string& host, std::string* why,
                                            bool unpaceLocal = false, int port = 0);
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
    bool peerOnThisHost;
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
  static std::unique_ptr<BulkLane> dial(const std::string& host, int port, int myRank,
                                        const LaneKey& key, std::int64_t maxFrameBytes,
                                        std::shared_ptr<BufferPool> pool, std::string* why,
                                        LaneOptions options = {});
  // Acceptor: a connection from LaneListener::service (hello already read;
  // peerOnThisHost from its Arrival). Of options only crossMemory applies.
  static std::unique_ptr<BulkLane> adopt(int fd, std::int64_t maxFrameBytes,
                                         std::shared_ptr<BufferPool> pool, LaneOptions options = {},
                                         bool peerOnThisHost = false);
  ~BulkLane();
  BulkLane(const BulkLane&) = delete;
  BulkLane& operator=(const BulkLane&) = delete;

  int fd() const { return fd_; }
  // False while a dialer's connect is in progress (frames must not be
  // queued yet); true once connected (the hello is queued first).
  bool connected() const { return connected_; }
  // Whether to poll for writability too: a connect or bytes in progress.
  bool wantsWrite() const { return !connected_ || !out_.empty(); }

  // Queues one frame; body stays referenced until written, or, when it goes
  // by cross-memory read (the return value), until acknowledged (or the
  // lane ends, or detachLent). `lent`: the body is memory lent by its owner
  // (detachLent() may copy it). REQUIRES: connected().
  bool enqueue(MeshTag tag, std::uint64_t seq, zmq::message_t body, bool lent = false);
  // Queues an ACK (every frame below `next` delivered). REQUIRES: connected().
  void enqueueAck(std::uint64_t next);
  // The peer delivered every frame below `next`: bodies described to it
  // below `next` are let go. (readFrames does this for ACKs on the lane.)
  void acknowledged(std::uint64_t next);
  // Cross-memory reads: this side's bodies go by them (the peer accepted),
  // and this side reads the peer's.
  bool sendsRemote() const { return sendsRemote_; }
  bool readsRemote() const { return readsRemote_; }
  // Bodies described and not yet acknowledged or taken back.
  std::size_t describedBodies() const { return remote_.size(); }
  // A line about the cross-memory set-up once (why it is off, or that it is
  // on), then "".
  std::string takeNote() { return std::exchange(note_, std::string()); }
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
  // back; the frames still go out unchanged); lent bodies described to the
  // peer are taken back (their fences revoked: a read the peer makes now
  // fails, and the frame goes again on another path).
  void detachLent();

 private:
  struct Outgoing {
    std::array<std::uint8_t, kFrameHeaderBytes> header;
    std::size_t headerBytes;  // kFrameHeaderBytes, or kHelloBytes for the hello
    zmq::message_t body;
    std::size_t written = 0;  // of headerBytes + body.size()
    bool lent = false;
  };
  // A body described to the peer (REMOTE_DATA), kept until let go.
  struct Described {
    std::uint64_t seq;
    std::size_t fenceSlot;
    zmq::message_t body;
    bool lent;
  };
  BulkLane(int fd, bool connected, std::int64_t maxFrameBytes, std::shared_ptr<BufferPool> pool)
      : fd_(fd), connected_(connected), maxFrameBytes_(maxFrameBytes), pool_(std::move(pool)) {}
  // Cross-memory set-up for a lane to `peer` (this host?), OFFER queued.
  void offerCrossMemory(const LaneOptions& options, bool peerOnThisHost);
  void enqueueControl(LaneKind kind, std::uint64_t seq, const std::uint8_t* body, std::size_t size);
  bool finishConnect(std::string* why);
  bool startFrame(LaneSink& sink, std::string* why);
  void startBody(LaneSink& sink);
  void finishBody(LaneSink& sink);
  bool finishControl(LaneSink& sink, std::size_t* read, std::string* why);
  bool readDescribed(LaneSink& sink, std::string* why);
  // Revokes the fence of a described body and lets the body go.
  std::deque<Described>::iterator letGo(std::deque<Described>::iterator it);

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
  // Reading a frame of another kind: its (small) body.
  bool inControl_ = false;
  LaneKind controlKind_ = LaneKind::kData;
  std::array<std::uint8_t, 24> control_{};
  std::size_t controlSize_ = 0;
  std::size_t controlHave_ = 0;
  // Cross-memory reads. Reader side: the peer's claimed pid, the challenge.
  bool crossMemory_ = false;  // offered (a same-host peer, the option on)
  bool offerSeen_ = false;
  std::int64_t peerPid_ = 0;
  std::array<std::uint8_t, kChallengeBytes> challenge_{};
  bool challengeSent_ = false;
  bool readsRemote_ = false;
  // Sender side: the peer's challenge kept where PROOF says, the fences.
  std::unique_ptr<std::array<std::uint8_t, kChallengeBytes>> proof_;
  bool sendsRemote_ = false;
  std::unique_ptr<FenceTable> fences_;
  std::deque<Described> remote_;
  std::string note_;
};

}  // namespace zmqlane
}  // namespace hearth
