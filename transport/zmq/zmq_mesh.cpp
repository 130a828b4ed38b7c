// ZeroMQ Mesh backend: relayed path plus direct links. One Core per rank
// holds the matching state (mailboxes, posted recvs, the outbox, per-peer
// receive sequencing) under one mutex; one I/O thread owns the context and
// every socket (the DEALER to the relay, the optional direct-link ROUTER
// listener, one DEALER per dialed direct link, socket monitors, the listener's
// ZAP handler), drains the outbox when the eventfd is signalled, routes each
// frame over the direct link to its peer when that is up or through the
// relay otherwise, delivers incoming DATA in per-sender sequence order,
// heartbeats, and watches the relay and the links.
#include "hearth/transport/zmq_mesh.h"

#include <pthread.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <exception>
#include <functional>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

#include "../common/mesh_core.h"
#include "bulk_lane.h"
#include "hearth/transport/curve_keys.h"
#include "message_buffer_malloc.h"
#include "same_host.h"
#include "zmq_monitor.h"
#include "zmq_wire.h"

namespace hearth {
namespace {

using Clock = std::chrono::steady_clock;
using Key = std::pair<int, MeshTag>;  // (peer, tag)
using meshcore::describe;
using meshcore::failLocked;
using meshcore::Status;
using zmqwire::HeaderReader;
using zmqwire::HeaderWriter;
using zmqwire::Type;

// Payloads at least this big are handed to libzmq without a copy.
constexpr std::size_t kZeroCopyBytes = 4096;
// Received payloads at least this big stay in libzmq's buffer (payloadBytes).
constexpr std::size_t kAdoptReceivedBytes = 64 * 1024;
// How long a LEAVE may take to leave the socket on close.
constexpr int kLeaveLingerMs = 200;
// How long a leaving node waits at least for its peers to acknowledge what it
// sent (at least a heartbeatInterval; then it leaves anyway).
constexpr Millis kLeaveDrain{200};
// A receiver acknowledges a peer's stream at least this often while there is
// something to acknowledge (or every heartbeatInterval if that is shorter).
constexpr Millis kAckDelay{20};
// Frames from one sender that may wait for an earlier sequence number.
constexpr std::size_t kMaxEarlyFrames = std::size_t{1} << 16;
// A receiver acknowledges a peer's stream at least every this many frames.
constexpr std::uint64_t kAckEveryFrames = 8;
// How often a lent send waiting for the ACK of a cross-memory read looks
// whether its peer is still alive.
constexpr Millis kRemoteReleaseSlice{100};
// Bytes one I/O round reads from one bulk lane before it turns to the rest.
constexpr std::size_t kLaneReadBudget = std::size_t{8} << 20;
// Free receive buffers the bulk lanes of one node keep for reuse.
constexpr std::size_t kLanePoolBytes = std::size_t{64} << 20;
// How long a caller waits for the I/O thread before saying so in the log.
constexpr Millis kIoThreadPatience{10000};
// DIRECT_HELLOs held until the directory is known.
constexpr std::size_t kMaxHeldHellos = 256;
constexpr char kDirectZapDomain[] = "hearth-direct";

// kLinking: MEMBERSHIP arrived, direct links are being set up.
enum class JoinState { kJoining, kWelcomed, kLinking, kJoined, kFailed };
enum class Terminal { kNone, kAborted, kBroken };
// The test hooks' kinds of network failure (zmqtesting::breakDirectLinks,
// dropDirectConnections).
enum class LinkBreak { kNone, kLinksOnly, kLinksAndListener };

// A request's state: the shared one, plus where an irecvInto's message may
// be read straight into. While `placing`, the I/O thread writes into it (the
// request is off the posted queue); `unplaceWanted` asks it to stop.
struct RequestState : meshcore::RequestState {
  std::uint8_t* into = nullptr;
  std::size_t intoSize = 0;
  bool placing = false;
  bool unplaceWanted = false;
};

// Memory an isendFrom lends the mesh. `released` once no frame references it
// any more (acknowledged, or copied by a detach); guarded by its own mutex
// (the last reference may go while Core's mutex is held).
struct Borrow {
  std::mutex mu;
  std::condition_variable cv;
  bool released = false;
  // A bulk lane described the bytes to the peer for a cross-memory read:
  // they are released by its ACK (or when taken back by a detach).
  bool remote = false;
};

struct Outgoing {
  int dst;
  MeshTag tag;
  MeshBytes bytes;
  std::shared_ptr<RequestState> st;
  std::shared_ptr<Borrow> borrow;  // isendFrom: bytes are the caller's
};

// An irecvInto whose message the I/O thread is reading straight into the
// caller's buffer: DATA `seq` from one peer.
struct Placement {
  std::uint64_t seq;
  std::shared_ptr<RequestState> st;
  std::optional<MeshBytes> copy;  // the same frame through another path meanwhile
};

// What a WireFrame carries: a payload (DATA), "every frame below seq was
// sent" (FENCE), or "every frame below seq from you was delivered" (ACK).
enum class FrameKind { kData, kFence, kAck };

// A frame on its way out; the header is built per path at send time.
struct WireFrame {
  int dst;
  MeshTag tag;
  std::uint64_t seq;  // DATA: its sequence number; FENCE, ACK: the next one
  FrameKind kind;
  zmq::message_t payload;
  std::uint64_t incarnation = 0;  // the destination's when the frame was issued
  // The payload is caller memory lent by isendFrom: it may go to a bulk lane
  // as it is, never to libzmq (which could hold it past the loan).
  bool borrowed = false;

  // A second frame with the same payload (libzmq shares large payloads by
  // reference count: no copy of the bytes).
  WireFrame duplicate() {
    WireFrame copy{dst, tag, seq, kind, zmq::message_t(), incarnation, borrowed};
    copy.payload.copy(payload);
    return copy;
  }
  // The payload copied into a buffer of its own (ends a loan).
  void ownPayload() {
    if (!borrowed) return;
    payload = zmq::message_t(payload.data(), payload.size());
    borrowed = false;
  }
};

// Control frames (no payload) for `dst`.
WireFrame fenceFrame(int dst, std::uint64_t next, std::uint64_t incarnation) {
  return WireFrame{dst, 0, next, FrameKind::kFence, zmq::message_t(), incarnation};
}
WireFrame ackFrame(int dst, std::uint64_t next, std::uint64_t incarnation) {
  return WireFrame{dst, 0, next, FrameKind::kAck, zmq::message_t(), incarnation};
}

zmq::message_t payloadMessage(MeshBytes bytes) {
  if (bytes.size() < kZeroCopyBytes) return zmq::message_t(bytes.data(), bytes.size());
  auto owned = std::make_unique<MeshBytes>(std::move(bytes));
  void* data = owned->data();
  const std::size_t size = owned->size();
  zmq::message_t msg(
      data, size, [](void*, void* hint) { delete static_cast<MeshBytes*>(hint); }, owned.get());
  owned.release();  // libzmq owns it now and frees it through the callback above
  return msg;
}

// A received payload as MeshBytes: small ones are copied, large ones keep
// libzmq's buffer (the message moves into a shared owner; no copy, no
// allocation of the payload's size). Large messages have a buffer of their
// own in libzmq (only messages below its 8 KiB read batch share one), so
// the bytes are the receiver's to write.
MeshBytes payloadBytes(zmq::message_t& msg) {
  if (msg.size() < kAdoptReceivedBytes) {
    const auto* data = static_cast<const std::uint8_t*>(msg.data());
    return MeshBytes(data, data + msg.size());
  }
  auto owner = std::make_shared<zmq::message_t>(std::move(msg));
  auto* data = static_cast<std::uint8_t*>(owner->data());
  const std::size_t size = owner->size();
  return MeshBytes::adopt(data, size, std::move(owner));
}

// Who opens the direct link of a pair.
enum class LinkRole { kNone, kDial, kAccept };
// kConnecting: not resolved yet (dialing, or waiting for the dialer); kIdle:
// resolved without a link (relayed; an acceptor still takes a late dialer);
// kDown: failed or closed, relayed until the dialer dials again (retryAt).
enum class LinkState { kIdle, kConnecting, kUp, kDown };

// What carries a link's DATA (zmqLaneTo).
enum class LaneUse { kUnknown, kNone, kBytes, kCrossMemory };
const char* laneUseName(LaneUse use) {
  switch (use) {
    case LaneUse::kBytes:
      return "bytes";
    case LaneUse::kCrossMemory:
      return "cross-memory";
    case LaneUse::kUnknown:
    case LaneUse::kNone:
      break;
  }
  return "none";
}

struct Link {
  LinkRole role = LinkRole::kNone;
  LinkState state = LinkState::kIdle;
  std::unique_ptr<zmq::socket_t> socket;            // dialer: our DEALER
  std::unique_ptr<zmqwire::SocketMonitor> monitor;  // dialer: its events
  std::string identity;                             // acceptor: the dialer's identity
  int fd = -1;                                      // acceptor: the connection's fd
  Clock::time_point deadline, lastHeard, nextPing;
  std::deque<WireFrame> stalled;  // dialer: frames libzmq did not take yet, in order
  // Dialer of a link that went down: when to dial again, and the wait after
  // the next failure (kFirstRedial doubling up to kMaxRedial; reset when the
  // link comes up).
  std::optional<Clock::time_point> retryAt;
  Millis redialAfter{0};
  // The link's bulk lane (bulk_lane.h): DATA goes there once it is
  // connected. Acceptor: the key of the lane it offered, until the dialer's
  // connection arrives. Dialer: when to give up connecting it.
  std::unique_ptr<zmqlane::BulkLane> lane;
  std::optional<zmqlane::LaneKey> laneKey;
  Clock::time_point laneDeadline;
  std::string endpoint;  // dialer: what it dials (the peer's advertised or same-host one)
  // What Core::laneTo_ says of this peer, so that it is updated, under the
  // lock, only when it changes.
  LaneUse laneUse = LaneUse::kUnknown;
};

// A dialer dials a failed link again after kFirstRedial, then after twice the
// previous wait after each failed attempt, at most kMaxRedial.
constexpr Millis kFirstRedial{1000};
constexpr Millis kMaxRedial{30000};

// Everything only the I/O thread touches. Declared after the context in
// ioLoop, so its sockets are closed before the context terminates.
struct Io {
  explicit Io(zmq::context_t& c) : context(c), relay(c, zmq::socket_type::dealer) {}
  zmq::context_t& context;
  zmq::socket_t relay;  // replaced by a fresh socket for each reconnect
  zmqwire::SocketMonitor relayMonitor;
  int relayConnections = 0;
  std::string advertised;  // the endpoint sent in HELLO ("" without a listener)
  std::string sameHost;    // where members on this host may dial (HELLO; "" without)
  std::unique_ptr<zmq::socket_t> listener;  // ROUTER for direct links (optional)
  std::unique_ptr<zmqwire::SocketMonitor> listenerMonitor;
  std::unique_ptr<zmq::socket_t> zap;                   // the listener's ZAP handler (CURVE only)
  std::unique_ptr<zmqlane::LaneListener> laneListener;  // bulk lanes (plaintext links only)
  std::shared_ptr<zmqlane::BufferPool> lanePool = zmqlane::BufferPool::create(kLanePoolBytes);
  std::vector<Link> links;  // per peer rank
  std::map<std::string, int> byIdentity;
  std::vector<std::uint64_t> sendSeq;      // next DATA sequence number per destination
  std::vector<std::uint64_t> incarnation;  // per rank, mirrors Core::incarnation_
  std::uint64_t selfIncarnation = 0;
  std::deque<WireFrame> relayStalled;  // frames for the relay libzmq did not take yet
  // Per destination: DATA frames sent (on any path) that its ACKs have not
  // covered yet, in sequence order; resent after a relay restart or a failed
  // direct link, when libzmq may have dropped them with the connection.
  std::vector<std::deque<WireFrame>> unacked;
  std::vector<std::uint64_t> ackSent;  // per source: the last `next` acknowledged to it
  std::vector<Clock::time_point> ackSentAt;
  std::vector<std::vector<zmq::message_t>> heldHellos;
  bool linksSetUp = false;
  bool listenerDrained = true;  // the last read of the listener found it empty
};

// Per sender: the next sequence number to deliver and frames that came early.
struct Inbound {
  std::uint64_t next = 0;
  std::uint64_t fence = 0;  // the sender said it sent every frame below this
  std::map<std::uint64_t, std::pair<MeshTag, MeshBytes>> early;
  std::optional<Clock::time_point> gapSince;
};

class Core {
 public:
  Core(ZmqMeshOptions options, CurveKeyPair nodeKeys)
      : options_(std::move(options)), nodeKeys_(std::move(nodeKeys)) {
    if (options_.sameHostLinks) {
      hostIdentity_ =
          options_.hostIdentity.empty() ? zmqhost::thisHostIdentity() : options_.hostIdentity;
    }
    eventFd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (eventFd_ < 0) throw MeshAborted(-1, "zmq mesh: eventfd failed");
  }
  ~Core() { ::close(eventFd_); }

  const ZmqMeshOptions& options() const { return options_; }
  int rank() const { return rank_; }
  int worldSize() const { return worldSize_; }

  void checkRank(int peer, const char* what) const {
    meshcore::checkRankInRange(peer, worldSize_, "zmq mesh rank " + std::to_string(rank_), what);
  }

  std::uint64_t epoch() {
    std::lock_guard<std::mutex> lock(mu_);
    return epoch_;
  }
  bool isAlive(int peer) {
    std::lock_guard<std::mutex> lock(mu_);
    return alive_[peer];
  }
  std::string pathTo(int peer) {
    std::lock_guard<std::mutex> lock(mu_);
    if (peer == rank_) return "self";
    return directUp_[peer] ? "direct" : "relay";
  }
  // zmqLaneTo (zmq_mesh.h).
  std::string laneTo(int peer) {
    std::lock_guard<std::mutex> lock(mu_);
    const auto it = laneTo_.find(peer);
    return laneUseName(it == laneTo_.end() ? LaneUse::kNone : it->second);
  }

  // ---- test hooks (zmq_mesh.h, namespace zmqtesting) ----

  void breakDirectLinks(LinkBreak how) {
    std::lock_guard<std::mutex> lock(mu_);
    breakLinks_ = how;
    wake();
  }
  void skipSequence(int peer) {
    std::lock_guard<std::mutex> lock(mu_);
    ++skipSeq_[peer];
    wake();
  }

  // ---- caller side ----

  std::shared_ptr<RequestState> isend(int peer, MeshTag tag, MeshBytes bytes,
                                      std::shared_ptr<Borrow> borrow = nullptr) {
    auto st = makeState(false, peer, tag);
    std::lock_guard<std::mutex> lock(mu_);
    if (failIfUnusableLocked(*st)) return st;
    if (peer == rank_) {
      deliverLocked(peer, tag, std::move(bytes));
      st->status = Status::kDone;
      return st;
    }
    outbox_.push_back(Outgoing{peer, tag, std::move(bytes), st, std::move(borrow)});
    wake();
    return st;
  }

  // isendFrom: the frame references [data, data + size) until the loan ends
  // (Borrow::released). Small messages and messages to self are copied.
  std::pair<std::shared_ptr<RequestState>, std::shared_ptr<Borrow>> isendFrom(
      int peer, MeshTag tag, const std::uint8_t* data, std::size_t size) {
    if (peer == rank_ || size < kZeroCopyBytes) {
      return {isend(peer, tag, MeshBytes(data, data + size)), nullptr};
    }
    auto borrow = std::make_shared<Borrow>();
    std::shared_ptr<void> loan(static_cast<void*>(nullptr), [borrow](void*) {
      std::lock_guard<std::mutex> lock(borrow->mu);
      borrow->released = true;
      borrow->cv.notify_all();
    });
    MeshBytes bytes = MeshBytes::adopt(const_cast<std::uint8_t*>(data), size, std::move(loan));
    auto st = isend(peer, tag, std::move(bytes), borrow);
    return {st, borrow};
  }

  // Ends every loan still running on this mesh: each frame that references
  // lent bytes gets a copy of its own (the caller's part here, the I/O
  // thread's in detachLoans); the frames still go out. All of them at once:
  // at the end of a collective the unacknowledged tail of its sends is lent,
  // and one round trip to the I/O thread frees all of it.
  void endLoans() {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& o : outbox_) {
      if (!o.borrow) continue;
      o.bytes = MeshBytes(o.bytes.begin(), o.bytes.end());
      o.borrow.reset();
    }
    endLoansWanted_.store(true);
    wake();
  }

  void detachLoans(Io& io) {
    if (!endLoansWanted_.exchange(false)) return;  // every I/O round: no lock for nothing
    for (auto& queue : io.unacked) {
      for (auto& f : queue) f.ownPayload();
    }
    for (auto& link : io.links) {
      if (link.lane) link.lane->detachLent();
    }
  }

  std::shared_ptr<RequestState> irecv(int peer, MeshTag tag, std::uint8_t* into = nullptr,
                                      std::size_t intoSize = 0) {
    auto st = makeState(true, peer, tag);
    st->into = into;
    st->intoSize = intoSize;
    std::lock_guard<std::mutex> lock(mu_);
    if (terminal_ != Terminal::kNone) {
      failLocked(*st, terminalErrorLocked(*st));
      return st;
    }
    if (mailbox_.takeQueuedLocked(Key{peer, tag}, *st)) return st;
    if (failIfUnusableLocked(*st)) return st;
    mailbox_.postLocked(Key{peer, tag}, st);
    return st;
  }

  // Waits until done() for something only the I/O thread can finish (it
  // stops using a caller's buffer). Not a wait on the network: the I/O thread
  // does it within one round of its loop (at most ~100 ms), and if it has
  // stopped, everything it used is gone already (ioLoop). Should that ever
  // take longer, one line says what is waiting every 10 s.
  template <class Lock, class Done>
  void waitForIoThread(Lock& lock, std::condition_variable& cv, Done done, const char* what) {
    while (!cv.wait_for(lock, kIoThreadPatience, done)) {
      log(std::string(what) + " still waits for the I/O thread to release the caller's memory");
    }
  }

  void log(const std::string& line) {
    const std::string full = "hearth zmq mesh rank " + std::to_string(rank_) + ": " + line;
    if (options_.log) {
      options_.log(full);
    } else {
      std::cerr << full << std::endl;
    }
  }

  // The mutex guarding every RequestState of this core.
  std::mutex& mutex() { return mu_; }

  bool cancel(RequestState& st) {
    std::unique_lock<std::mutex> lock(mu_);
    if (st.status != Status::kPending) return false;
    if (st.placing) {
      // The I/O thread is reading into the caller's buffer: it stops first
      // (serviceLanes), then the request is cancelled here.
      st.unplaceWanted = true;
      wake();
      waitForIoThread(
          lock, st.cv, [&] { return !st.placing; }, "a cancelled receive");
      if (st.status != Status::kPending) return false;
    }
    if (st.isRecv) {
      mailbox_.unpostLocked(Key{st.peer, st.tag}, st);
    } else {
      outbox_.erase(std::remove_if(outbox_.begin(), outbox_.end(),
                                   [&](const Outgoing& o) { return o.st.get() == &st; }),
                    outbox_.end());
    }
    meshcore::failCancelledLocked(st);
    return true;
  }

  void abort(const std::string& reason) {
    std::lock_guard<std::mutex> lock(mu_);
    stopRequested_ = true;
    if (terminal_ == Terminal::kNone) setTerminalLocked(Terminal::kAborted, reason);
    joinCv_.notify_all();
    wake();
  }

  // Blocks until joined; throws on rejection, failure or timeout.
  void waitJoined() {
    std::unique_lock<std::mutex> lock(mu_);
    const bool done = joinCv_.wait_for(lock, options_.joinTimeout, [&] {
      return joinState_ == JoinState::kJoined || joinState_ == JoinState::kFailed;
    });
    if (joinState_ == JoinState::kJoined) return;
    if (!done) {
      std::string stage = "no answer from the relay";
      if (joinState_ == JoinState::kWelcomed) {
        stage = "admitted as rank " + std::to_string(rank_) + ", waiting for the world to complete";
      } else if (joinState_ == JoinState::kLinking) {
        stage = "setting up direct links";
      }
      throw MeshTimeout(-1, "zmq mesh: joining run '" + options_.runId + "' at " +
                                options_.relayEndpoint + ": timed out after " +
                                std::to_string(options_.joinTimeout.count()) + " ms (" + stage +
                                ")");
    }
    std::rethrow_exception(joinError_);
  }

  // ---- I/O thread ----

  void ioLoop() {
    pthread_setname_np(pthread_self(), "hearth-mesh-io");  // for top, perf, gdb
    try {
      zmq::context_t context(1);
      Io io(context);
      if (setUp(io)) serve(io);
    } catch (const std::exception& e) {
      log(std::string("I/O thread failed: ") + e.what());
      std::lock_guard<std::mutex> lock(mu_);
      failJoinLocked(std::make_exception_ptr(
          MeshAborted(-1, std::string("zmq mesh: I/O thread failed: ") + e.what())));
      if (terminal_ == Terminal::kNone) {
        setTerminalLocked(Terminal::kAborted, std::string("I/O thread failed: ") + e.what());
      }
    }
    // The lanes are closed now: recvs they were reading into can fail.
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& placement : placing_) {
      if (!placement) continue;
      RequestState& st = *placement->st;
      st.placing = false;
      failLocked(st, std::make_exception_ptr(MeshAborted(
                         -1, describe(st) + ": the mesh stopped while receiving into it")));
      placement.reset();
    }
  }

 private:
  bool curve() const { return !options_.relayPublicKey.empty(); }

  void setSocketDefaults(zmq::socket_t& socket) {
    socket.set(zmq::sockopt::sndhwm, 0);
    socket.set(zmq::sockopt::rcvhwm, 0);
    socket.set(zmq::sockopt::linger, 0);
    socket.set(zmq::sockopt::maxmsgsize, options_.maxMessageBytes);
  }

  // ZMTP heartbeats on a direct-link socket, so that a dead connection is
  // noticed by libzmq too (the link's own PINGs are the other half).
  void setHeartbeats(zmq::socket_t& socket) {
    socket.set(zmq::sockopt::heartbeat_ivl, static_cast<int>(options_.heartbeatInterval.count()));
    socket.set(zmq::sockopt::heartbeat_timeout,
               static_cast<int>(options_.heartbeatTimeout.count()));
  }

  // Creates the sockets and sends HELLO. False (join failed) when the
  // listener cannot be set up.
  bool setUp(Io& io) {
    if (!options_.listenEndpoint.empty()) {
      std::string why;
      if (!setUpListener(io, options_.listenEndpoint, &io.advertised, &why)) {
        std::lock_guard<std::mutex> lock(mu_);
        failJoinLocked(std::make_exception_ptr(MeshUsageError(-1, "zmq mesh: " + why)));
        if (terminal_ == Terminal::kNone) setTerminalLocked(Terminal::kAborted, why);
        return false;
      }
    } else if (!hostIdentity_.empty()) {
      // No listener asked for: one on loopback, for members on this host
      // only (not advertised, not probed).
      std::string why;
      if (!setUpListener(io, zmqhost::kSameHostListen, nullptr, &why)) {
        log("no direct links with members on this host (" + why + ")");
      }
    }
    connectRelay(io, options_.requestedRank, zmqwire::kNewNode);
    return true;
  }

  // A fresh DEALER to the relay (nothing stale queued on it), its monitor,
  // and HELLO as its first message. libzmq reconnects it with backoff
  // (100 ms doubling up to 2 s) while the relay is unreachable.
  void connectRelay(Io& io, int requestedRank, std::uint64_t resume) {
    io.relayMonitor = zmqwire::SocketMonitor();
    io.relay = zmq::socket_t(io.context, zmq::socket_type::dealer);
    setSocketDefaults(io.relay);
    io.relay.set(zmq::sockopt::reconnect_ivl, 100);
    io.relay.set(zmq::sockopt::reconnect_ivl_max, 2000);
    if (curve()) {
      io.relay.set(zmq::sockopt::curve_serverkey, options_.relayPublicKey);
      io.relay.set(zmq::sockopt::curve_publickey, nodeKeys_.publicKey);
      io.relay.set(zmq::sockopt::curve_secretkey, nodeKeys_.secretKey);
    }
    // Handshake outcomes: a refused or mismatched CURVE key is reported
    // here (libzmq would otherwise retry silently) and becomes MeshRejected.
    io.relayMonitor = zmqwire::SocketMonitor(
        io.context, io.relay, "relay-" + std::to_string(io.relayConnections++),
        ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
            ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_SUCCEEDED |
            ZMQ_EVENT_DISCONNECTED);
    io.relay.connect(options_.relayEndpoint);
    const std::string key = curve() ? zmqwire::keyOfZ85(nodeKeys_.publicKey) : std::string();
    std::vector<zmq::message_t> hello;
    hello.push_back(HeaderWriter(Type::kHello).i32(requestedRank).u64(resume).message());
    hello.emplace_back(options_.runId.data(), options_.runId.size());
    hello.emplace_back(options_.joinToken.data(), options_.joinToken.size());
    hello.emplace_back(io.advertised.data(), io.advertised.size());
    hello.emplace_back(key.data(), key.size());
    hello.emplace_back(io.sameHost.data(), io.sameHost.size());
    hello.emplace_back(hostIdentity_.data(), hostIdentity_.size());
    zmq::send_multipart(io.relay, hello, zmq::send_flags::dontwait);  // queued until connected
  }

  // ---- relay restarts ----

  // The relay connection is gone while joined: keep the rank, the peers and
  // the direct links, and re-HELLO (requestedRank = this rank) to whatever
  // relay answers at the same endpoint, for up to relayReconnectTimeout.
  // Frames for the relay wait meanwhile (sends still complete at once).
  void startRejoin(Io& io, const std::string& why) {
    const auto now = Clock::now();
    {
      std::lock_guard<std::mutex> lock(mu_);
      rejoining_ = true;
      rejoinWelcomed_ = false;
    }
    log("lost the relay at " + options_.relayEndpoint + " (" + why + "); reconnecting for up to " +
        std::to_string(options_.relayReconnectTimeout.count()) + " ms");
    rejoinDeadline_ = now + options_.relayReconnectTimeout;
    rejoinAttemptDeadline_ = now + options_.heartbeatTimeout;
    connectRelay(io, rank_, io.selfIncarnation);
  }

  // Called every loop while rejoining. Returns true when the attempt ended
  // in failure (the relay is then lost for good).
  bool continueRejoin(Io& io) {
    const auto now = Clock::now();
    bool welcomed;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!rejoining_) return false;
      welcomed = rejoinWelcomed_;
    }
    if (now >= rejoinDeadline_) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        rejoining_ = false;
      }
      log("the relay did not come back within " +
          std::to_string(options_.relayReconnectTimeout.count()) + " ms");
      return true;
    }
    if (!welcomed && now >= rejoinAttemptDeadline_) {
      // No WELCOME on this connection: start over on a fresh one.
      rejoinAttemptDeadline_ = now + options_.heartbeatTimeout;
      connectRelay(io, rank_, io.selfIncarnation);
    }
    return false;
  }

  // After the restarted relay's MEMBERSHIP: resend to every relayed peer
  // what it has not acknowledged (frames handed to the old relay connection
  // may be gone; the peer drops the copies it already has), then tell it how
  // many frames were sent, so that anything still missing shows up as a gap
  // (a typed error), not as silence.
  void finishRejoin(Io& io) {
    std::vector<bool> resent(io.links.size(), false);
    for (int p = 0; p < static_cast<int>(io.links.size()); ++p) {
      resent[p] = p != rank_ && io.links[p].state != LinkState::kUp;
    }
    requeueUnackedViaRelay(io, resent);
    for (int p = 0; p < static_cast<int>(io.links.size()); ++p) {
      if (!resent[p] || io.sendSeq[p] == 0) continue;
      io.relayStalled.push_back(fenceFrame(p, io.sendSeq[p], io.incarnation[p]));
    }
    log("rejoined the relay at " + options_.relayEndpoint + " as rank " + std::to_string(rank_));
  }

  // Replaces the relay queue's DATA for the peers marked in `peers` with
  // copies of every frame they have not acknowledged (which includes the
  // queued ones), keeping the per-destination order.
  void requeueUnackedViaRelay(Io& io, const std::vector<bool>& peers) {
    std::deque<WireFrame> kept;
    for (auto& f : io.relayStalled) {
      if (!(f.kind == FrameKind::kData && peers[f.dst])) kept.push_back(std::move(f));
    }
    io.relayStalled.clear();
    for (int p = 0; p < static_cast<int>(peers.size()); ++p) {
      if (!peers[p]) continue;
      for (auto& f : io.unacked[p]) {
        io.relayStalled.push_back(f.duplicate());
        io.relayStalled.back().ownPayload();
      }
    }
    for (auto& f : kept) io.relayStalled.push_back(std::move(f));
  }

  // True when every live peer has acknowledged every frame sent to it.
  bool allAcknowledgedLocked(const Io& io) const {
    for (int p = 0; p < static_cast<int>(io.unacked.size()); ++p) {
      if (p < static_cast<int>(alive_.size()) && alive_[p] && !io.unacked[p].empty()) {
        return false;
      }
    }
    return io.relayStalled.empty();
  }

  // An ACK from `src`: frames below `next` arrived; stop keeping them.
  void acknowledged(Io& io, int src, std::uint64_t next) {
    if (src < 0 || src >= static_cast<int>(io.unacked.size())) return;
    auto& queue = io.unacked[src];
    while (!queue.empty() && queue.front().seq < next) queue.pop_front();
    if (const auto& lane = io.links[src].lane) lane->acknowledged(next);
  }

  // Acknowledges p's frames now if any is owed; true if an ACK went out.
  bool ackNow(Io& io, int p) {
    std::uint64_t next;
    {
      std::lock_guard<std::mutex> lock(mu_);
      next = inbound_[p].next;
      if (!alive_[p] || next <= io.ackSent[p]) return false;
    }
    io.ackSent[p] = next;
    io.ackSentAt[p] = Clock::now();
    route(io, ackFrame(p, next, io.incarnation[p]));
    return true;
  }

  // Acknowledges what each peer's stream delivered: after every
  // kAckEveryFrames frames, and otherwise every min(kAckDelay,
  // heartbeatInterval) while something is owed; over the peer's direct link
  // when it is up, else through the relay. Also stops keeping the frames of
  // peers that are gone. Returns true when an ACK is still owed (to be sent
  // within kAckDelay).
  bool sendAcks(Io& io) {
    const auto now = Clock::now();
    std::vector<WireFrame> acks;
    bool owed = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (int p = 0; p < worldSize_; ++p) {
        if (!alive_[p]) {
          io.unacked[p].clear();
          continue;
        }
        const std::uint64_t next = inbound_[p].next;
        if (p == rank_ || next <= io.ackSent[p]) continue;
        if (next - io.ackSent[p] < kAckEveryFrames &&
            now - io.ackSentAt[p] < std::min<Millis>(kAckDelay, options_.heartbeatInterval)) {
          owed = true;
          continue;
        }
        acks.push_back(ackFrame(p, next, io.incarnation[p]));
        io.ackSent[p] = next;
        io.ackSentAt[p] = now;
      }
    }
    for (auto& ack : acks) route(io, std::move(ack));  // route may take mu_ (a link down)
    return owed;
  }

  // Binds the direct-link ROUTER (a CURVE server with this node's keypair
  // when CURVE is on, with a ZAP handler that records each client's key) and
  // resolves the endpoint to advertise.
  // `advertised` nullptr: a listener for members on this host only. On
  // failure nothing of it is left open.
  bool setUpListener(Io& io, const std::string& bindTo, std::string* advertised, std::string* why) {
    if (openListener(io, bindTo, advertised, why)) return true;
    io.laneListener.reset();
    io.listenerMonitor.reset();
    io.listener.reset();
    io.zap.reset();
    io.sameHost.clear();
    return false;
  }
  bool openListener(Io& io, const std::string& bindTo, std::string* advertised, std::string* why) {
    if (curve()) {
      // Bound before the listener: libzmq asks it about every CURVE handshake.
      io.zap = std::make_unique<zmq::socket_t>(io.context, zmq::socket_type::rep);
      io.zap->set(zmq::sockopt::linger, 0);
      io.zap->bind("inproc://zeromq.zap.01");
    }
    io.listener = std::make_unique<zmq::socket_t>(io.context, zmq::socket_type::router);
    auto& l = *io.listener;
    setSocketDefaults(l);
    l.set(zmq::sockopt::router_mandatory, 1);
    setHeartbeats(l);
    if (curve()) {
      l.set(zmq::sockopt::curve_server, 1);
      l.set(zmq::sockopt::curve_secretkey, nodeKeys_.secretKey);
      l.set(zmq::sockopt::zap_domain, kDirectZapDomain);
    }
    io.listenerMonitor =
        std::make_unique<zmqwire::SocketMonitor>(io.context, l, "listener", ZMQ_EVENT_DISCONNECTED);
    try {
      l.bind(bindTo);
    } catch (const zmq::error_t& e) {
      *why = "cannot listen for direct links on " + bindTo + ": " + e.what();
      return false;
    }
    const std::string bound = l.get(zmq::sockopt::last_endpoint);
    if (!hostIdentity_.empty()) io.sameHost = zmqhost::sameHostEndpointOf(bound);
    if (advertised == nullptr) {
      openLaneListener(io, bound);
      return true;
    }
    *advertised = options_.advertiseEndpoint.empty() ? bound : options_.advertiseEndpoint;
    if (!zmqwire::isDialableEndpoint(*advertised)) {
      *why = "the endpoint to advertise for direct links, '" + *advertised +
             "', is not a dialable tcp://HOST:PORT (set advertiseEndpoint / HEARTH_ADVERTISE)";
      return false;
    }
    openLaneListener(io, l.get(zmq::sockopt::last_endpoint));
    return true;
  }

  // ---- bulk lanes (bulk_lane.h) ----

  bool lanesOn() const { return options_.bulkLanes && !curve(); }

  // Listens for bulk lanes on the host the direct-link listener is bound to.
  // Without one (CURVE, turned off, a host name, a failure) links carry
  // everything over ZeroMQ.
  void openLaneListener(Io& io, const std::string& bound) {
    if (!lanesOn()) return;
    const std::string host = zmqlane::numericHostOf(bound);
    std::string why = "the listener's host in " + bound + " is not numeric";
    if (!host.empty())
      io.laneListener =
          zmqlane::LaneListener::open(host, &why, options_.unpacedLocalLanes, options_.lanePort);
    if (!io.laneListener) log("no bulk lanes (" + why + "): direct links carry DATA over ZeroMQ");
  }

  // Acceptor of a link that just came up: offers the dialer a bulk lane.
  void offerLane(Io& io, int p) {
    Link& link = io.links[p];
    if (!io.laneListener) return;
    link.laneKey = zmqlane::randomKey();
    std::array<zmq::message_t, 3> offer{
        zmq::message_t(link.identity.data(), link.identity.size()),
        HeaderWriter(Type::kLaneOffer).i32(io.laneListener->port()).message(),
        zmq::message_t(link.laneKey->data(), link.laneKey->size())};
    try {
      zmq::send_multipart(*io.listener, offer, zmq::send_flags::dontwait);
    } catch (const zmq::error_t&) {
      link.laneKey.reset();  // the connection is gone: the link goes down by itself
    }
  }

  // Dialer: LANE_OFFER from p. Connects in the background; DATA moves to
  // the lane once it is connected (an offer that cannot be taken up leaves
  // the link as it is).
  void takeLaneOffer(Io& io, int p, HeaderReader& reader, const zmq::message_t& keyFrame) {
    Link& link = io.links[p];
    const int port = reader.i32();
    if (keyFrame.size() != zmqlane::kKeyBytes) {
      directViolation(io, p, "LANE_OFFER with a " + std::to_string(keyFrame.size()) + "-byte key");
      return;
    }
    if (!lanesOn() || link.lane) return;
    zmqlane::LaneKey key;
    std::memcpy(key.data(), keyFrame.data(), key.size());
    const std::string host = zmqlane::numericHostOf(link.endpoint);
    std::string why = "the host of " + link.endpoint + " is not numeric";
    if (!host.empty()) {
      link.lane = zmqlane::BulkLane::dial(host, port, rank_, key, options_.maxMessageBytes,
                                          io.lanePool, &why, laneOptions());
    }
    if (!link.lane) {
      log("no bulk lane to rank " + std::to_string(p) + " (" + why + ")");
      return;
    }
    link.laneDeadline = Clock::now() + options_.directConnectTimeout;
    if (link.lane->connected()) laneUp(p, "dialed");
  }

  zmqlane::LaneOptions laneOptions() const {
    return zmqlane::LaneOptions{options_.unpacedLocalLanes, options_.crossMemoryLanes};
  }

  void laneUp(int p, const char* how) {
    log("bulk lane to rank " + std::to_string(p) + " up (" + how + ")");
  }

  // Acceptor: lane connections whose hello arrived; each must match the
  // offer made on that rank's link.
  void acceptLanes(Io& io) {
    for (const auto& a : io.laneListener->service(options_.directConnectTimeout)) {
      const bool known = a.rank >= 0 && a.rank < worldSize_ && a.rank != rank_;
      Link* link = known ? &io.links[a.rank] : nullptr;
      if (link == nullptr || link->state != LinkState::kUp || !link->laneKey ||
          *link->laneKey != a.key) {
        ::close(a.fd);
        log("refused a bulk lane connection claiming rank " + std::to_string(a.rank) +
            " (no matching offer)");
        continue;
      }
      link->lane = zmqlane::BulkLane::adopt(a.fd, options_.maxMessageBytes, io.lanePool,
                                            laneOptions(), a.peerOnThisHost);
      link->laneKey.reset();  // one lane per offer
      laneUp(a.rank, "accepted");
    }
  }

  // What carries DATA to p now, for laneTo(): kept under mu_ when it changes.
  void noteLaneKind(Io& io, int p) {
    Link& link = io.links[p];
    const LaneUse use = !link.lane || !link.lane->connected() ? LaneUse::kNone
                        : link.lane->sendsRemote()            ? LaneUse::kCrossMemory
                                                              : LaneUse::kBytes;
    if (link.laneUse == use) return;
    link.laneUse = use;
    std::lock_guard<std::mutex> lock(mu_);
    laneTo_[p] = use;
  }

  // Connects, writes and reads every lane; a lane that fails takes its
  // link down with it (its frames go through the relay), except a dialer's
  // lane that never connected: then the link just keeps using ZeroMQ.
  void serviceLanes(Io& io) {
    if (io.laneListener) acceptLanes(io);
    for (int p = 0; p < static_cast<int>(io.links.size()); ++p) {
      Link& link = io.links[p];
      noteLaneKind(io, p);
      if (!link.lane) continue;
      std::string why;
      if (!link.lane->connected()) {
        if (!link.lane->flush(&why) || Clock::now() >= link.laneDeadline) {
          if (why.empty()) why = "not connected in time";
          log("no bulk lane to rank " + std::to_string(p) + " (" + why + ")");
          link.lane.reset();
        } else if (link.lane->connected()) {
          laneUp(p, "dialed");
        }
        continue;
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (placing_[p] && placing_[p]->st->unplaceWanted) {
          link.lane->unplaceBody();
          unplaceLocked(p);
        }
      }
      LaneDelivery sink(*this, io, p);
      bool ok = link.lane->flush(&why) && link.lane->readFrames(sink, kLaneReadBudget, &why);
      if (sink.any) link.lastHeard = Clock::now();
      if (ok) {
        if (std::string note = link.lane->takeNote(); !note.empty()) {
          log("bulk lane to rank " + std::to_string(p) + ": " + note);
        }
        // A sender waits for the ACK of what it lent to a cross-memory read
        // (ZmqLentSendRequest): acknowledged at once, not after 8 frames.
        if (sink.remote && ackNow(io, p)) ok = link.lane->flush(&why);
      }
      if (!ok) linkDown(io, p, "bulk lane: " + why);
    }
  }

  std::shared_ptr<RequestState> makeState(bool isRecv, int peer, MeshTag tag) {
    return meshcore::makeRequest<RequestState>("zmq", isRecv, rank_, peer, tag);
  }

  void wake() {
    const std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(eventFd_, &one, sizeof(one));
  }

  std::exception_ptr terminalErrorLocked(const RequestState& st) {
    if (terminal_ == Terminal::kBroken) {
      return std::make_exception_ptr(
          MeshProtocolError(-1, describe(st) + ": protocol violation (" + terminalReason_ + ")"));
    }
    return std::make_exception_ptr(
        MeshAborted(-1, describe(st) + ": aborted (" + terminalReason_ + ")"));
  }

  bool failIfUnusableLocked(RequestState& st) {
    if (terminal_ != Terminal::kNone) {
      failLocked(st, terminalErrorLocked(st));
      return true;
    }
    if (!alive_[st.peer]) {
      failLocked(st, std::make_exception_ptr(MeshPeerLost(
                         st.peer, describe(st) + ": peer lost (rank " + std::to_string(st.peer) +
                                      ": " + lostReason_[st.peer] + ")")));
      return true;
    }
    return false;
  }

  void deliverLocked(int from, MeshTag tag, MeshBytes bytes) {
    mailbox_.deliverLocked(Key{from, tag}, std::move(bytes));
  }

  // True while frames below a known sequence number are missing from `in`.
  static bool hasGap(const Inbound& in) { return !in.early.empty() || in.fence > in.next; }

  // Delivers DATA `seq` from `src` in sequence order: early frames wait (at
  // most kMaxEarlyFrames) for the missing ones; see checkGapsLocked.
  void deliverOrderedLocked(int src, MeshTag tag, std::uint64_t seq, MeshBytes bytes) {
    if (terminal_ != Terminal::kNone || !alive_[src]) return;
    Inbound& in = inbound_[src];
    // A copy resent after a relay restart or a failed direct link (the
    // sender cannot know which of its frames made it): already here.
    if (seq < in.next || in.early.count(seq) != 0) return;
    if (placing_[src] && placing_[src]->seq == seq) {
      placing_[src]->copy = std::move(bytes);  // used if the lane fails mid-frame
      return;
    }
    if (seq > in.next) {
      if (in.early.size() >= kMaxEarlyFrames) {
        peerBrokenLocked(src, "more than " + std::to_string(kMaxEarlyFrames) +
                                  " frames from rank " + std::to_string(src) + " wait for frame " +
                                  std::to_string(in.next));
        return;
      }
      if (!in.gapSince) in.gapSince = Clock::now();
      in.early.emplace(seq, std::make_pair(tag, std::move(bytes)));
      return;
    }
    deliverLocked(src, tag, std::move(bytes));
    advanceLocked(src);
  }

  // Frame in.next from src was delivered: so are the early ones after it.
  void advanceLocked(int src) {
    Inbound& in = inbound_[src];
    ++in.next;
    while (!in.early.empty() && in.early.begin()->first == in.next) {
      auto& [earlyTag, earlyBytes] = in.early.begin()->second;
      deliverLocked(src, earlyTag, std::move(earlyBytes));
      in.early.erase(in.early.begin());
      ++in.next;
    }
    if (hasGap(in)) {
      in.gapSince = Clock::now();  // progress: the wait for the rest starts again
    } else {
      in.gapSince.reset();
    }
  }

  void fenceLocked(int src, std::uint64_t next) {
    if (!alive_[src]) return;
    Inbound& in = inbound_[src];
    in.fence = std::max(in.fence, next);
    if (hasGap(in) && !in.gapSince) in.gapSince = Clock::now();
  }

  // A gap that stays open for heartbeatTimeout means frames were lost with a
  // failed direct link: the stream from that peer cannot continue in order.
  void checkGapsLocked() {
    const auto now = Clock::now();
    for (int p = 0; p < worldSize_; ++p) {
      Inbound& in = inbound_[p];
      if (!alive_[p] || !in.gapSince || now - *in.gapSince <= options_.heartbeatTimeout) continue;
      const std::uint64_t upTo = in.early.empty() ? in.fence : in.early.begin()->first;
      peerBrokenLocked(p, "frames " + std::to_string(in.next) + ".." + std::to_string(upTo - 1) +
                              " from rank " + std::to_string(p) + " never arrived within " +
                              std::to_string(options_.heartbeatTimeout.count()) + " ms");
    }
  }

  // The ordered stream from `peer` cannot go on: it is lost for this rank.
  void peerBrokenLocked(int peer, const std::string& reason) {
    if (!alive_[peer]) return;
    log(reason);
    peerLostLocked(peer, reason);
    ++epoch_;
  }

  // Fails every pending call involving `peer` (or every call when peer < 0).
  void failPendingLocked(int peer, const std::function<std::exception_ptr(RequestState&)>& why) {
    mailbox_.failPostedLocked([&](const Key& key) { return peer < 0 || key.first == peer; },
                              [&](const Key&, RequestState& st) { failLocked(st, why(st)); });
    for (auto it = outbox_.begin(); it != outbox_.end();) {
      if (peer >= 0 && it->dst != peer) {
        ++it;
        continue;
      }
      failLocked(*it->st, why(*it->st));
      it = outbox_.erase(it);
    }
    // A recv the I/O thread is reading into fails once it has stopped
    // (serviceLanes, linkDown or the end of ioLoop).
    for (int q = 0; q < static_cast<int>(placing_.size()); ++q) {
      if (placing_[q] && (peer < 0 || q == peer)) {
        placing_[q]->st->unplaceWanted = true;
        wake();
      }
    }
  }

  // ---- reading straight into irecvInto buffers (bulk lanes) ----

  // Delivers one peer's bulk-lane frames in order, reading a frame straight
  // into a waiting irecvInto's buffer when it is the next frame from that
  // peer and the oldest recv for its tag wants exactly its size.
  class LaneDelivery : public zmqlane::LaneSink {
   public:
    LaneDelivery(Core& core, Io& io, int peer) : core_(core), io_(io), peer_(peer) {}
    std::uint8_t* place(MeshTag tag, std::uint64_t seq, std::size_t size) override {
      std::lock_guard<std::mutex> lock(core_.mu_);
      return core_.placeLocked(io_, peer_, tag, seq, size);
    }
    void deliver(zmqlane::LaneFrame frame) override {
      any = true;
      remote = remote || frame.remote;
      std::lock_guard<std::mutex> lock(core_.mu_);
      if (frame.placed) {
        core_.placedLocked(peer_);
      } else if (io_.incarnation[peer_] == core_.incarnation_[peer_]) {  // else: replaced
        core_.deliverOrderedLocked(peer_, frame.tag, frame.seq, std::move(frame.bytes));
      }
    }
    void acknowledged(std::uint64_t next) override {
      any = true;
      {
        std::lock_guard<std::mutex> lock(core_.mu_);
        if (io_.incarnation[peer_] != core_.incarnation_[peer_]) return;  // replaced
      }
      core_.acknowledged(io_, peer_, next);
    }
    bool any = false;     // a frame arrived
    bool remote = false;  // one read out of the sender's memory

   private:
    Core& core_;
    Io& io_;
    int peer_;
  };

  std::uint8_t* placeLocked(Io& io, int p, MeshTag tag, std::uint64_t seq, std::size_t size) {
    if (terminal_ != Terminal::kNone || !alive_[p] || placing_[p] || seq != inbound_[p].next ||
        io.incarnation[p] != incarnation_[p]) {
      return nullptr;
    }
    auto st = mailbox_.claimIntoLocked(Key{p, tag}, size);
    if (!st) return nullptr;
    st->placing = true;
    placing_[p] = Placement{seq, st, std::nullopt};
    return st->into;
  }

  // The placed frame is complete: its recv finishes with a view of its buffer.
  void placedLocked(int p) {
    Placement placement = std::move(*placing_[p]);
    placing_[p].reset();
    RequestState& st = *placement.st;
    st.placing = false;
    st.payload = MeshBytes::adopt(st.into, st.intoSize, nullptr);
    finishLocked(st);
    advanceLocked(p);
  }

  // The lane stopped writing into p's placed recv before its frame was
  // complete. With `requeue` (the lane is gone) the recv waits again as the
  // oldest for its tag, for the frame's copy through the relay; else (its
  // caller cancels it, or it fails) it is let go.
  void unplaceLocked(int p, bool requeue = false) {
    Placement placement = std::move(*placing_[p]);
    placing_[p].reset();
    auto st = placement.st;
    st->placing = false;
    if (!failIfUnusableLocked(*st) && requeue && !st->unplaceWanted) {
      mailbox_.repostFrontLocked(Key{p, st->tag}, st);
    }
    // The frame itself is still due, in order: its copy, if one came.
    if (placement.copy) deliverOrderedLocked(p, st->tag, placement.seq, std::move(*placement.copy));
    st->cv.notify_all();
  }

  void setTerminalLocked(Terminal kind, const std::string& reason) {
    terminal_ = kind;
    terminalReason_ = reason;
    failPendingLocked(-1, [this](RequestState& st) { return terminalErrorLocked(st); });
  }

  void peerLostLocked(int peer, const std::string& reason) {
    if (!alive_[peer] || peer == rank_) return;
    alive_[peer] = false;
    lostReason_[peer] = reason;
    inbound_[peer].early.clear();
    inbound_[peer].gapSince.reset();
    failPendingLocked(peer, [&](RequestState& st) {
      return std::make_exception_ptr(MeshPeerLost(
          peer, describe(st) + ": peer lost (rank " + std::to_string(peer) + ": " + reason + ")"));
    });
  }

  void failJoinLocked(std::exception_ptr error) {
    if (joinState_ == JoinState::kJoined || joinState_ == JoinState::kFailed) return;
    joinState_ = JoinState::kFailed;
    joinError_ = std::move(error);
    joinCv_.notify_all();
  }

  void protocolErrorLocked(const std::string& why) {
    failJoinLocked(std::make_exception_ptr(MeshProtocolError(
        -1, "zmq mesh: relay at " + options_.relayEndpoint + " violated the protocol: " + why)));
    if (terminal_ == Terminal::kNone) {
      setTerminalLocked(Terminal::kBroken,
                        "from the relay at " + options_.relayEndpoint + ": " + why);
    }
    stopRequested_ = true;
  }

  // A handshake with the relay failed or succeeded. While joining, a failure
  // ends the join with MeshRejected: retrying cannot fix a wrong key.
  void relayHandshakeEvent(const zmqwire::MonitorEvent& event) {
    std::lock_guard<std::mutex> lock(mu_);
    if (event.event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
      relayHandshakeOk_ = true;
      return;
    }
    std::string why = zmqwire::handshakeFailure(event);
    // Without CURVE an unexplained failure is a transport hiccup, not a verdict.
    if (event.event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL && !curve()) why.clear();
    if (why.empty() && event.event == ZMQ_EVENT_DISCONNECTED && !relayHandshakeOk_ && curve() &&
        ++relayDropsInHandshake_ >= 2) {
      // A CURVE server that cannot open our HELLO (we hold the wrong server
      // key) closes the connection without telling why.
      why =
          "the relay closed the connection during the CURVE handshake twice: the relay public "
          "key is probably wrong";
    }
    if (why.empty() || joinState_ != JoinState::kJoining) return;
    if (curve()) {
      why +=
          " (check the relay public key, HEARTH_RELAY_PUBLIC_KEY: " + options_.relayPublicKey + ")";
    }
    failJoinLocked(std::make_exception_ptr(MeshRejected(
        -1,
        "zmq mesh: the relay at " + options_.relayEndpoint + " refused the connection: " + why)));
    if (terminal_ == Terminal::kNone) setTerminalLocked(Terminal::kAborted, "rejected: " + why);
    stopRequested_ = true;
  }

  // ---- sending ----

  // Through the relay: the destination's rank and incarnation; on a direct
  // link: this node's rank and incarnation.
  zmq::message_t dataHeader(const WireFrame& f, int peerField, std::uint64_t incarnation) {
    if (f.kind != FrameKind::kData) {
      const Type type = f.kind == FrameKind::kFence ? Type::kFence : Type::kAck;
      return HeaderWriter(type).i32(peerField).u64(f.seq).u64(incarnation).message();
    }
    return HeaderWriter(Type::kData)
        .i32(peerField)
        .u64(f.tag)
        .u64(f.seq)
        .u64(incarnation)
        .message();
  }

  // Sends f through the relay now if libzmq takes it. False: try again later.
  bool sendViaRelay(Io& io, WireFrame& f) {
    std::array<zmq::message_t, 2> parts{dataHeader(f, f.dst, f.incarnation), zmq::message_t()};
    if (f.kind != FrameKind::kData) {
      return zmq::send_multipart(io.relay, std::array<zmq::message_t, 1>{std::move(parts[0])},
                                 zmq::send_flags::dontwait)
          .has_value();
    }
    std::array<zmq::message_t*, 2> ptrs{&parts[0], &f.payload};
    return sendParts(io.relay, ptrs.data(), 2);
  }

  // Sends parts as one multipart message without waiting; on EAGAIN nothing
  // was sent and the parts are intact. Throws zmq::error_t otherwise.
  static bool sendParts(zmq::socket_t& socket, zmq::message_t** parts, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
      const auto flags = i + 1 < n ? zmq::send_flags::sndmore | zmq::send_flags::dontwait
                                   : zmq::send_flags::dontwait;
      if (!socket.send(*parts[i], flags)) return false;  // only the first part can fail
    }
    return true;
  }

  // How many of `withPayload` parts (ending in the payload) f sends: control
  // frames have no payload part.
  static std::size_t partsOf(const WireFrame& f, std::size_t withPayload) {
    return f.kind == FrameKind::kData ? withPayload : withPayload - 1;
  }

  // Routes one outgoing frame: over the direct link to its peer when that is
  // up (DATA and ACK; on its bulk lane once that is connected), else through
  // the relay (and every FENCE: it speaks about the direct link). Keeps the
  // per-path order. True when the lane took DATA for a cross-memory read
  // (the peer then reads the payload until it acknowledges the frame).
  bool route(Io& io, WireFrame f) {
    Link& link = io.links[f.dst];
    if (link.state == LinkState::kUp && f.kind != FrameKind::kFence && link.lane &&
        link.lane->connected()) {
      if (f.kind == FrameKind::kAck) {
        link.lane->enqueueAck(f.seq);
        return false;
      }
      return link.lane->enqueue(f.tag, f.seq, std::move(f.payload), f.borrowed);  // serviceLanes
    }
    f.ownPayload();  // libzmq may keep a payload longer than a loan lasts
    if (link.state == LinkState::kUp && f.kind != FrameKind::kFence) {
      if (link.role == LinkRole::kDial) {
        link.stalled.push_back(std::move(f));
        flushDialer(io, link);
        return false;
      }
      zmq::message_t id(link.identity.data(), link.identity.size());
      zmq::message_t header = dataHeader(f, rank_, io.selfIncarnation);
      std::array<zmq::message_t*, 3> parts{&id, &header, &f.payload};
      try {
        if (sendParts(*io.listener, parts.data(), partsOf(f, 3))) return false;
      } catch (const zmq::error_t& e) {
        if (e.num() != EHOSTUNREACH) throw;
        // An ACK (cumulative: fine through the relay) does not end the link;
        // DATA, PING and the monitor decide that.
        if (f.kind == FrameKind::kData) linkDown(io, f.dst, "the connection is gone");
      }
    }
    io.relayStalled.push_back(std::move(f));
    return false;
  }

  void flushDialer(Io& io, Link& link) {
    while (!link.stalled.empty()) {
      WireFrame& f = link.stalled.front();
      zmq::message_t header = dataHeader(f, rank_, io.selfIncarnation);
      std::array<zmq::message_t*, 2> parts{&header, &f.payload};
      if (!sendParts(*link.socket, parts.data(), partsOf(f, 2))) return;
      link.stalled.pop_front();
    }
  }

  void flushRelay(Io& io) {
    while (!io.relayStalled.empty() && sendViaRelay(io, io.relayStalled.front())) {
      io.relayStalled.pop_front();
    }
  }

  // ---- direct links ----

  void setDirectUp(int peer, bool up) {
    std::lock_guard<std::mutex> lock(mu_);
    directUp_[peer] = up;
    if (up) hadDirect_[peer] = true;
  }

  // Marks the link to `peer` down: its unacknowledged frames go through the
  // relay, followed by a FENCE so that the peer can tell frames lost for good
  // from frames still on their way. The dialer dials again later.
  void linkDown(Io& io, int peer, const std::string& why) {
    Link& link = io.links[peer];
    const bool wasUp = link.state == LinkState::kUp;
    if (link.state == LinkState::kDown) return;
    if (wasUp || link.state == LinkState::kConnecting) {
      log(std::string(wasUp ? "direct link to rank " : "direct link attempt to rank ") +
          std::to_string(peer) + (wasUp ? " down: " : " failed: ") + why +
          "; its traffic goes through the relay");
    }
    link.state = LinkState::kDown;
    link.monitor.reset();
    link.lane.reset();
    link.laneKey.reset();
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (peer < static_cast<int>(placing_.size()) && placing_[peer]) unplaceLocked(peer, true);
    }
    if (auto socket = std::move(link.socket); socket && wasUp) {
      // Frames already received on the link are still in order: deliver them.
      for (int i = 0; i < 100000; ++i) {
        std::vector<zmq::message_t> frames;
        if (!zmq::recv_multipart(*socket, std::back_inserter(frames), zmq::recv_flags::dontwait)) {
          break;
        }
        Type type;
        std::string ignored;
        if (zmqwire::checkHeader(frames.data(), frames.size(), &type, &ignored) &&
            type == Type::kData) {
          HeaderReader reader(frames[0]);
          directData(io, peer, reader, frames[1]);
        }
      }
    }
    // Frames libzmq took for the link may be lost with it: resend through
    // the relay everything the peer has not acknowledged (that includes the
    // frames libzmq never took), then the FENCE.
    link.stalled.clear();
    // ACKs the link took may be lost with it too: acknowledge again (ACKs
    // are cumulative: one new ACK covers every lost one).
    if (!io.ackSent.empty()) io.ackSent[peer] = 0;
    if (!io.unacked.empty()) {
      std::vector<bool> peers(io.links.size(), false);
      peers[peer] = true;
      requeueUnackedViaRelay(io, peers);
    }
    if (wasUp) {
      io.relayStalled.push_back(fenceFrame(peer, io.sendSeq[peer], io.incarnation[peer]));
      setDirectUp(peer, false);
    }
    // An acceptor keeps the identity: frames still queued on the listener
    // from that connection are delivered (DATA is valid in any link state).
    link.fd = -1;
    if (link.role == LinkRole::kDial) scheduleRedial(link);
  }

  // The dialer of a failed link dials again later (maintainLinks), after a
  // wait that doubles with each failed attempt.
  static void scheduleRedial(Link& link) {
    link.redialAfter =
        link.redialAfter.count() == 0 ? kFirstRedial : std::min(kMaxRedial, 2 * link.redialAfter);
    link.retryAt = Clock::now() + link.redialAfter;
  }

  void linkUp(Io& io, int peer, const std::string& how) {
    Link& link = io.links[peer];
    link.state = LinkState::kUp;
    link.retryAt.reset();
    link.redialAfter = Millis(0);
    link.lastHeard = Clock::now();
    link.nextPing = link.lastHeard;
    setDirectUp(peer, true);
    log("direct link to rank " + std::to_string(peer) + " up (" + how + ")");
  }

  // After MEMBERSHIP: decides each pair's path (setUpLink), then answers
  // the DIRECT_HELLOs that came before it.
  void setUpLinks(Io& io) {
    io.linksSetUp = true;
    for (int p = 0; p < worldSize_; ++p) setUpLink(io, p);
    replayHeldHellos(io);
  }

  // Whether p is a member on this host that accepts same-host links (and so
  // are we): same host identity, both with a same-host endpoint.
  bool onThisHost(int p) const {
    const auto& mine = directory_[rank_];
    const auto& theirs = directory_[p];
    return !hostIdentity_.empty() && theirs.host == hostIdentity_ && mine.host == hostIdentity_ &&
           !theirs.local.empty() && !mine.local.empty();
  }

  // The path to p: two members on this host link over loopback (the lower
  // rank dials); else if both ends passed the relay's probe, the lower rank
  // dials; if one did, the other dials it; else the pair stays relayed.
  // Also for a node that took a lost rank (applyReplacements): both ends
  // decide from the same MEMBERSHIP.
  void setUpLink(Io& io, int p) {
    if (p == rank_) return;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!alive_[p]) return;
    }
    Link& link = io.links[p];
    const auto& entry = directory_[p];
    const bool meReachable = !directory_[rank_].endpoint.empty();
    const bool theyReachable = !entry.endpoint.empty();
    if (curve() && entry.key.empty()) return;
    link.endpoint = entry.endpoint;
    if (onThisHost(p)) {
      // Both on this host: over loopback, probe or not.
      link.role = rank_ < p ? LinkRole::kDial : LinkRole::kAccept;
      link.endpoint = entry.local;
    } else if (meReachable && theyReachable) {
      link.role = rank_ < p ? LinkRole::kDial : LinkRole::kAccept;
    } else if (theyReachable) {
      link.role = LinkRole::kDial;
    } else if (meReachable) {
      link.role = LinkRole::kAccept;
    } else {
      return;
    }
    link.state = LinkState::kConnecting;
    link.deadline = Clock::now() + options_.directConnectTimeout;
    if (link.role == LinkRole::kDial) dial(io, p);
  }

  void replayHeldHellos(Io& io) {
    auto held = std::move(io.heldHellos);
    io.heldHellos.clear();
    for (auto& frames : held) handleListener(io, frames);
  }

  void dial(Io& io, int p) {
    Link& link = io.links[p];
    const auto& entry = directory_[p];
    link.socket = std::make_unique<zmq::socket_t>(io.context, zmq::socket_type::dealer);
    auto& d = *link.socket;
    setSocketDefaults(d);
    d.set(zmq::sockopt::reconnect_ivl, 100);
    setHeartbeats(d);
    if (curve()) {
      d.set(zmq::sockopt::curve_serverkey, zmqwire::z85OfKey(entry.key));
      d.set(zmq::sockopt::curve_publickey, nodeKeys_.publicKey);
      d.set(zmq::sockopt::curve_secretkey, nodeKeys_.secretKey);
    }
    link.monitor = std::make_unique<zmqwire::SocketMonitor>(
        io.context, d, "direct-" + std::to_string(p),
        ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
            ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH);
    d.connect(link.endpoint);
    std::vector<zmq::message_t> hello;
    hello.push_back(HeaderWriter(Type::kDirectHello).i32(rank_).u64(io.selfIncarnation).message());
    hello.emplace_back(options_.runId.data(), options_.runId.size());
    hello.emplace_back(options_.joinToken.data(), options_.joinToken.size());
    zmq::send_multipart(d, hello, zmq::send_flags::dontwait);  // queued until connected
  }

  // One message on a dialed link (a DEALER: no identity frame).
  void handleDialer(Io& io, int p, std::vector<zmq::message_t>& frames) {
    Link& link = io.links[p];
    link.lastHeard = Clock::now();
    Type type;
    std::string why;
    if (!zmqwire::checkHeader(frames.data(), frames.size(), &type, &why)) {
      directViolation(io, p, why);
      return;
    }
    HeaderReader reader(frames[0]);
    switch (type) {
      case Type::kDirectWelcome:
        if (link.state != LinkState::kConnecting || reader.i32() != p) {
          directViolation(io, p, "unexpected DIRECT_WELCOME");
          return;
        }
        linkUp(io, p, "dialed " + link.endpoint);
        return;
      case Type::kLaneOffer:
        if (link.state != LinkState::kUp) {
          directViolation(io, p, "LANE_OFFER before DIRECT_WELCOME");
          return;
        }
        takeLaneOffer(io, p, reader, frames[1]);
        return;
      case Type::kReject:
        linkDown(io, p,
                 "rank " + std::to_string(p) +
                     " refused it: " + frames[1].to_string().substr(0, zmqwire::kMaxStringBytes));
        return;
      case Type::kData:
      case Type::kAck:
      case Type::kPing:
        if (link.state != LinkState::kUp) {
          directViolation(io, p, "traffic before DIRECT_WELCOME");
          return;
        }
        directTraffic(io, p, type, reader, frames, 0);
        return;
      default:
        directViolation(
            io, p, "message type " + std::to_string(static_cast<int>(type)) + " on a direct link");
        return;
    }
  }

  // DATA, ACK or PING from peer p on its direct link; the header is
  // frames[first], DATA's payload the frame after it.
  void directTraffic(Io& io, int p, Type type, HeaderReader& reader,
                     std::vector<zmq::message_t>& frames, std::size_t first) {
    if (type == Type::kData) directData(io, p, reader, frames[first + 1]);
    if (type == Type::kAck) directAck(io, p, reader);
  }

  // False, and p's link and p dropped, unless a frame on p's direct link
  // names p as its sender.
  bool fromLinkPeer(Io& io, int p, int src, const char* what) {
    if (src == p) return true;
    directViolation(io, p, std::string(what) + " claims to come from rank " + std::to_string(src));
    return false;
  }

  // ACK(next) for our frames to p, over p's direct link.
  void directAck(Io& io, int p, HeaderReader& reader) {
    const int src = reader.i32();
    const std::uint64_t next = reader.u64();
    const std::uint64_t incarnation = reader.u64();
    if (!fromLinkPeer(io, p, src, "ACK")) return;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (incarnation != incarnation_[p]) return;  // from a node that has been replaced
    }
    acknowledged(io, p, next);
  }

  void directData(Io& io, int p, HeaderReader& reader, zmq::message_t& payload) {
    const int src = reader.i32();
    const MeshTag tag = reader.u64();
    const std::uint64_t seq = reader.u64();
    const std::uint64_t incarnation = reader.u64();
    if (!fromLinkPeer(io, p, src, "DATA")) return;
    MeshBytes bytes = payloadBytes(payload);
    std::lock_guard<std::mutex> lock(mu_);
    if (incarnation != incarnation_[p]) return;  // from a node that has been replaced
    deliverOrderedLocked(p, tag, seq, std::move(bytes));
  }

  // An admitted peer broke the protocol on its direct link: drop the link
  // and the peer (its stream can no longer be trusted to be in order).
  void directViolation(Io& io, int p, const std::string& why) {
    linkDown(io, p, "protocol violation: " + why);
    std::lock_guard<std::mutex> lock(mu_);
    peerBrokenLocked(
        p, "rank " + std::to_string(p) + " violated the protocol on its direct link: " + why);
  }

  // One message on the listener: [identity, header, ...].
  void handleListener(Io& io, std::vector<zmq::message_t>& frames) {
    if (frames.size() < 2) return;
    const std::string identity = frames[0].to_string();
    auto known = io.byIdentity.find(identity);
    const int p = known == io.byIdentity.end() ? -1 : known->second;
    Type type;
    std::string why;
    if (!zmqwire::checkHeader(frames.data() + 1, frames.size() - 1, &type, &why)) {
      if (p >= 0) {
        directViolation(io, p, why);
      } else {
        log("dropped a malformed message on the direct-link listener: " + why);
      }
      return;
    }
    if (p >= 0) io.links[p].lastHeard = Clock::now();
    HeaderReader reader(frames[1]);
    switch (type) {
      case Type::kProbe: {
        // The relay checks that our advertised endpoint reaches us: pass its
        // nonce back over our own relay connection.
        if (frames[2].size() != zmqwire::kNonceBytes) return;
        std::array<zmq::message_t, 2> ack{HeaderWriter(Type::kProbeAck).message(),
                                          std::move(frames[2])};
        zmq::send_multipart(io.relay, ack, zmq::send_flags::dontwait);
        return;
      }
      case Type::kDirectHello:
        if (!io.linksSetUp) {
          if (io.heldHellos.size() < kMaxHeldHellos) io.heldHellos.push_back(std::move(frames));
          return;
        }
        acceptHello(io, identity, reader, frames);
        return;
      case Type::kData:
      case Type::kAck:
      case Type::kPing:
        if (p < 0) return;  // not an admitted peer: ignore
        directTraffic(io, p, type, reader, frames, 1);
        return;
      default:
        if (p >= 0) {
          directViolation(
              io, p,
              "message type " + std::to_string(static_cast<int>(type)) + " on a direct link");
        }
        return;
    }
  }

  // DIRECT_HELLO: admits a member of this run as the dialer of its link.
  void acceptHello(Io& io, const std::string& identity, HeaderReader& reader,
                   std::vector<zmq::message_t>& frames) {
    const int p = reader.i32();
    const std::uint64_t incarnation = reader.u64();
    std::string refusal;
    if (frames[2].to_string() != options_.runId || frames[3].to_string() != options_.joinToken) {
      refusal = "wrong run id or join token";
    } else if (p < 0 || p >= worldSize_ || p == rank_) {
      refusal = "rank " + std::to_string(p) + " is not a peer";
    } else if (incarnation < io.incarnation[p]) {
      refusal = "incarnation " + std::to_string(incarnation) + " of rank " + std::to_string(p) +
                " was replaced (now " + std::to_string(io.incarnation[p]) + ")";
    } else if (incarnation > io.incarnation[p]) {
      // A node that took a lost rank, dialing before the MEMBERSHIP that
      // announces it has reached this node: answered once it has.
      if (io.heldHellos.size() < kMaxHeldHellos) io.heldHellos.push_back(std::move(frames));
      return;
    } else if (io.links[p].role != LinkRole::kAccept) {
      refusal = "rank " + std::to_string(p) + " is not expected to dial this node";
    } else if (curve()) {
      // The ZAP handler vouched for the client key of this connection.
      const char* userId = zmq_msg_gets(frames[1].handle(), "User-Id");
      if (userId == nullptr || std::string(userId) != zmqwire::z85OfKey(directory_[p].key)) {
        refusal = "its CURVE key is not rank " + std::to_string(p) + "'s";
      }
    }
    if (!refusal.empty()) {
      log("refused a direct link from " + (p >= 0 ? "rank " + std::to_string(p) : "a stranger") +
          ": " + refusal);
      std::array<zmq::message_t, 3> reject{zmq::message_t(identity.data(), identity.size()),
                                           HeaderWriter(Type::kReject).message(),
                                           zmq::message_t(refusal.data(), refusal.size())};
      try {
        zmq::send_multipart(*io.listener, reject, zmq::send_flags::dontwait);
      } catch (const zmq::error_t&) {
        // gone already
      }
      return;
    }
    Link& link = io.links[p];
    // The dialer dialed again: its side saw the old link fail first.
    if (link.state == LinkState::kUp)
      linkDown(io, p, "rank " + std::to_string(p) + " dialed again");
    link.identity = identity;
    link.fd = zmq_msg_get(frames[1].handle(), ZMQ_SRCFD);
    io.byIdentity[identity] = p;
    std::array<zmq::message_t, 2> welcome{zmq::message_t(identity.data(), identity.size()),
                                          HeaderWriter(Type::kDirectWelcome).i32(rank_).message()};
    try {
      zmq::send_multipart(*io.listener, welcome, zmq::send_flags::dontwait);
    } catch (const zmq::error_t&) {
      io.byIdentity.erase(identity);
      link.identity.clear();
      return;
    }
    linkUp(io, p, "accepted on " + (onThisHost(p) ? io.sameHost : directory_[rank_].endpoint));
    offerLane(io, p);
  }

  // Answers one ZAP request for the listener: every CURVE client may
  // complete the handshake (the relay's probe, dialing members); its key
  // becomes the connection's User-Id, which DIRECT_HELLO is checked against.
  void serveZap(Io& io) {
    std::vector<zmq::message_t> request;
    if (!zmq::recv_multipart(*io.zap, std::back_inserter(request), zmq::recv_flags::dontwait)) {
      return;
    }
    const bool curveRequest = request.size() == 7 && request[5].to_string() == "CURVE";
    const std::string key = curveRequest ? zmqwire::z85OfKey(request[6].to_string()) : "";
    zmqwire::sendZapReply(*io.zap, request, curveRequest, "CURVE only", key);
  }

  // Timers of the links: connect deadlines, heartbeats, lost peers.
  void maintainLinks(Io& io) {
    const auto now = Clock::now();
    std::vector<bool> alive;
    LinkBreak breakAll;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto it = deferredLoss_.begin(); it != deferredLoss_.end();) {
        const int p = it->first;
        // An acceptor's last frames may still wait in the listener's queue.
        const bool pending = io.links[p].state == LinkState::kUp ||
                             (io.links[p].role == LinkRole::kAccept && !io.listenerDrained);
        if (pending && now < it->second.deadline) {
          ++it;
          continue;
        }
        peerLostLocked(p, it->second.reason);
        epoch_ = std::max(epoch_, it->second.epoch);
        it = deferredLoss_.erase(it);
      }
      alive = alive_;
      breakAll = breakLinks_;
      breakLinks_ = LinkBreak::kNone;
    }
    if (breakAll != LinkBreak::kNone) {
      for (int p = 0; p < worldSize_; ++p) {
        if (p != rank_) linkDown(io, p, "closed by the test hook");
      }
      if (breakAll == LinkBreak::kLinksAndListener) {
        io.listenerMonitor.reset();
        io.listener.reset();
        io.laneListener.reset();
      }
    }
    for (int p = 0; p < worldSize_; ++p) {
      Link& link = io.links[p];
      if (p == rank_ || link.role == LinkRole::kNone) continue;
      if (!alive[p]) {
        if (link.state == LinkState::kUp || link.state == LinkState::kConnecting) {
          linkDown(io, p, "rank " + std::to_string(p) + " is lost");
        }
        continue;
      }
      if (link.state == LinkState::kDown && link.retryAt && now >= *link.retryAt) {
        link.retryAt.reset();
        log("dialing rank " + std::to_string(p) + " again at " + link.endpoint);
        link.state = LinkState::kConnecting;
        link.deadline = now + options_.directConnectTimeout;
        dial(io, p);
        continue;
      }
      if (link.state == LinkState::kConnecting && now >= link.deadline) {
        const std::string why = "not established within " +
                                std::to_string(options_.directConnectTimeout.count()) + " ms";
        if (link.role == LinkRole::kDial) {
          linkDown(io, p, why);
        } else {
          log("rank " + std::to_string(p) + " did not dial this node (" + why +
              "): relayed unless it does later");
          link.state = LinkState::kIdle;
        }
        continue;
      }
      if (link.state != LinkState::kUp) continue;
      if (now - link.lastHeard > options_.heartbeatTimeout) {
        linkDown(
            io, p,
            "silent for more than " + std::to_string(options_.heartbeatTimeout.count()) + " ms");
        continue;
      }
      if (now >= link.nextPing) {
        link.nextPing = now + options_.heartbeatInterval;
        sendPing(io, p);
      }
    }
  }

  void sendPing(Io& io, int p) {
    Link& link = io.links[p];
    try {
      if (link.role == LinkRole::kDial) {
        zmq::send_multipart(*link.socket,
                            std::array<zmq::message_t, 1>{HeaderWriter(Type::kPing).message()},
                            zmq::send_flags::dontwait);
      } else {
        std::array<zmq::message_t, 2> ping{
            zmq::message_t(link.identity.data(), link.identity.size()),
            HeaderWriter(Type::kPing).message()};
        zmq::send_multipart(*io.listener, ping, zmq::send_flags::dontwait);
      }
    } catch (const zmq::error_t& e) {
      if (e.num() != EHOSTUNREACH) throw;
      linkDown(io, p, "the connection is gone");
    }
  }

  void listenerEvent(Io& io, const zmqwire::MonitorEvent& event) {
    if (event.event != ZMQ_EVENT_DISCONNECTED) return;
    for (int p = 0; p < static_cast<int>(io.links.size()); ++p) {
      Link& link = io.links[p];
      if (link.state == LinkState::kUp && link.role == LinkRole::kAccept &&
          link.fd == static_cast<int>(event.value)) {
        // The fd may already belong to a newer connection (the relay's probe
        // closes, its fd is reused): check the link itself. A PING to a gone
        // connection fails with EHOSTUNREACH (ROUTER_MANDATORY): link down.
        sendPing(io, p);
      }
    }
  }

  void dialerEvent(Io& io, int p, const zmqwire::MonitorEvent& event) {
    Link& link = io.links[p];
    const std::string failure = zmqwire::handshakeFailure(event);
    if (!failure.empty()) {
      linkDown(io, p, failure);
    } else if (event.event == ZMQ_EVENT_DISCONNECTED && link.state == LinkState::kUp) {
      linkDown(io, p, "the connection closed");
    }
  }

  // ---- the loop ----

  void serve(Io& io) {
    auto lastFromRelay = Clock::now();
    auto nextPing = Clock::now() + options_.heartbeatInterval;
    bool sentLeave = false;
    std::deque<Outgoing> sending;
    std::vector<zmq::pollitem_t> items;
    std::vector<int> dialerOf;  // items index -> peer (dialer sockets and monitors)
    std::vector<int> laneFds;
    std::optional<Clock::time_point> drainUntil;  // leaving: waiting for ACKs until then
    bool ackOwed = false;                         // sendAcks left an ACK for later
    for (;;) {
      bool welcomed;
      bool linking;
      bool draining = false;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (stopRequested_) {
          welcomed = joinState_ != JoinState::kJoining && joinState_ != JoinState::kFailed;
          const bool leaving =
              options_.announceLeave && welcomed && terminal_ == Terminal::kAborted;
          // Leaving on purpose: first let the peers acknowledge every frame
          // sent to them (bounded), so that none is lost with a connection
          // closed under it.
          if (leaving && io.linksSetUp && !drainUntil) {
            drainUntil = Clock::now() + std::max(kLeaveDrain, options_.heartbeatInterval);
          }
          draining = drainUntil && Clock::now() < *drainUntil && !allAcknowledgedLocked(io);
        }
        if (stopRequested_ && !draining) {
          if (options_.announceLeave && welcomed && terminal_ == Terminal::kAborted) {
            // dontwait: with no live connection to the relay (e.g. a CURVE
            // handshake that failed) a DEALER send would block forever.
            sentLeave =
                zmq::send_multipart(
                    io.relay, std::array<zmq::message_t, 1>{HeaderWriter(Type::kLeave).message()},
                    zmq::send_flags::dontwait)
                    .has_value();
          }
          break;
        }
        welcomed = joinState_ != JoinState::kJoining;
        linking = joinState_ == JoinState::kLinking;
      }
      if (linking && !io.linksSetUp) {
        io.links.resize(worldSize_);
        io.sendSeq.assign(worldSize_, 0);
        io.unacked.clear();
        io.unacked.resize(worldSize_);
        io.ackSent.assign(worldSize_, 0);
        io.ackSentAt.assign(worldSize_, Clock::now());
        {
          std::lock_guard<std::mutex> lock(mu_);
          io.incarnation = incarnation_;
          io.selfIncarnation = incarnation_[rank_];
          replaced_.clear();  // the links start from the current incarnations
        }
        setUpLinks(io);
      }
      const auto now = Clock::now();
      auto deadline = nextPing;
      if (welcomed) deadline = std::min(deadline, lastFromRelay + options_.heartbeatTimeout);
      const auto waitMs = std::chrono::duration_cast<Millis>(deadline - now).count() + 1;
      bool stalledAny = !io.relayStalled.empty();
      items.clear();
      dialerOf.clear();
      items.push_back({io.relay.handle(), 0, ZMQ_POLLIN, 0});
      items.push_back({nullptr, eventFd_, ZMQ_POLLIN, 0});
      items.push_back({io.relayMonitor.socket().handle(), 0, ZMQ_POLLIN, 0});
      const std::size_t listenerAt = items.size();
      if (io.listener) {
        items.push_back({io.listener->handle(), 0, ZMQ_POLLIN, 0});
        items.push_back({io.listenerMonitor->socket().handle(), 0, ZMQ_POLLIN, 0});
        items.push_back({io.zap ? io.zap->handle() : nullptr, io.zap ? 0 : -1, 0, 0});
        if (io.zap) items.back().events = ZMQ_POLLIN;
      }
      const std::size_t dialersAt = items.size();
      for (int p = 0; p < static_cast<int>(io.links.size()); ++p) {
        Link& link = io.links[p];
        if (!link.socket) continue;
        items.push_back({link.socket->handle(), 0, ZMQ_POLLIN, 0});
        items.push_back({link.monitor->socket().handle(), 0, ZMQ_POLLIN, 0});
        dialerOf.push_back(p);
        stalledAny = stalledAny || !link.stalled.empty();
      }
      // Bulk lanes: only to wake the loop (serviceLanes visits every lane).
      laneFds.clear();
      if (io.laneListener) io.laneListener->pollFds(&laneFds);
      for (const int fd : laneFds) items.push_back({nullptr, fd, ZMQ_POLLIN, 0});
      for (const Link& link : io.links) {
        if (!link.lane) continue;
        const short events = ZMQ_POLLIN | (link.lane->wantsWrite() ? ZMQ_POLLOUT : 0);
        items.push_back({nullptr, link.lane->fd(), events, 0});
      }
      // Links have timers of their own: look at the clock at least every 50 ms;
      // an ACK that is owed goes out within kAckDelay.
      long cap = stalledAny ? 5 : (io.links.empty() ? 100 : 50);
      if (ackOwed) cap = std::min<long>(cap, kAckDelay.count());
      try {
        zmq::poll(items.data(), items.size(), Millis(std::clamp<long>(waitMs, 0, cap)));
      } catch (const zmq::error_t& e) {
        if (e.num() != EINTR) throw;
      }
      if (items[1].revents & ZMQ_POLLIN) {
        std::uint64_t count;
        [[maybe_unused]] auto n = ::read(eventFd_, &count, sizeof(count));
      }
      bool relayDropped = false;
      if (items[2].revents & ZMQ_POLLIN) {
        zmqwire::MonitorEvent event;
        while (io.relayMonitor.next(&event)) {
          relayHandshakeEvent(event);
          relayDropped = relayDropped || event.event == ZMQ_EVENT_DISCONNECTED;
        }
      }
      // Incoming: drain, but come back to the outbox and the clock regularly.
      for (int i = 0; i < 256; ++i) {
        std::vector<zmq::message_t> frames;
        if (!zmq::recv_multipart(io.relay, std::back_inserter(frames), zmq::recv_flags::dontwait)) {
          break;
        }
        lastFromRelay = Clock::now();
        if (!handle(io, frames)) break;
      }
      if (io.linksSetUp) applyReplacements(io);
      if (io.listener && listenerAt < dialersAt) {
        if (io.zap && (items[listenerAt + 2].revents & ZMQ_POLLIN)) serveZap(io);
        io.listenerDrained = false;
        for (int i = 0; i < 256 && io.listener; ++i) {
          std::vector<zmq::message_t> frames;
          if (!zmq::recv_multipart(*io.listener, std::back_inserter(frames),
                                   zmq::recv_flags::dontwait)) {
            io.listenerDrained = true;
            break;
          }
          handleListener(io, frames);
        }
        zmqwire::MonitorEvent event;
        while (io.listenerMonitor && io.listenerMonitor->next(&event)) listenerEvent(io, event);
      }
      for (std::size_t k = 0; k < dialerOf.size(); ++k) {
        const int p = dialerOf[k];
        Link& link = io.links[p];
        // Only sockets zmq_poll found readable (it looks at each socket's
        // queue before it sleeps): a busy round does not visit idle links.
        const zmq::pollitem_t* polled = &items[dialersAt + 2 * k];
        if (!((polled[0].revents | polled[1].revents) & ZMQ_POLLIN)) continue;
        for (int i = 0; i < 256 && link.socket; ++i) {
          std::vector<zmq::message_t> frames;
          if (!zmq::recv_multipart(*link.socket, std::back_inserter(frames),
                                   zmq::recv_flags::dontwait)) {
            break;
          }
          handleDialer(io, p, frames);
        }
        zmqwire::MonitorEvent event;
        while (link.monitor && link.monitor->next(&event)) dialerEvent(io, p, event);
      }
      if (io.linksSetUp) maintainLinks(io);
      // Every link resolved: the join is complete.
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (joinState_ == JoinState::kLinking && io.linksSetUp &&
            std::none_of(io.links.begin(), io.links.end(),
                         [](const Link& l) { return l.state == LinkState::kConnecting; })) {
          joinState_ = JoinState::kJoined;
          joinCv_.notify_all();
        }
      }
      // Outgoing: a send completes when taken from the outbox (none once
      // this node is leaving: those sends have failed).
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (joinState_ == JoinState::kJoined && !stopRequested_) {
          sending.swap(outbox_);
          // Lent sends finish once routed (below): their waiters look at
          // Borrow::remote.
          for (auto& o : sending) {
            if (!o.borrow) meshcore::finishLocked(*o.st);
          }
          for (auto& [peer, n] : skipSeq_) {
            if (peer >= 0 && peer < worldSize_) io.sendSeq[peer] += n;
          }
          skipSeq_.clear();
        }
      }
      bool anyLent = false;
      for (auto& o : sending) {
        const std::uint64_t seq = io.sendSeq[o.dst]++;
        WireFrame f{o.dst,
                    o.tag,
                    seq,
                    FrameKind::kData,
                    payloadMessage(std::move(o.bytes)),
                    io.incarnation[o.dst],
                    o.borrow != nullptr};
        io.unacked[o.dst].push_back(f.duplicate());
        if (route(io, std::move(f)) && o.borrow) {
          std::lock_guard<std::mutex> lock(o.borrow->mu);
          o.borrow->remote = true;
        }
        anyLent = anyLent || o.borrow;
        o.borrow.reset();
      }
      if (anyLent) {
        std::lock_guard<std::mutex> lock(mu_);
        for (auto& o : sending) {
          if (o.st->status == Status::kPending && !o.st->isRecv) meshcore::finishLocked(*o.st);
        }
      }
      detachLoans(io);
      ackOwed = io.linksSetUp && sendAcks(io);
      sending.clear();
      if (io.linksSetUp) serviceLanes(io);
      for (auto& link : io.links) {
        if (link.socket && link.state == LinkState::kUp) flushDialer(io, link);
      }
      bool rejoining;
      bool rejoined;
      {
        std::lock_guard<std::mutex> lock(mu_);
        rejoining = rejoining_;
        rejoined = rejoinedPending_;
        rejoinedPending_ = false;
      }
      if (rejoined) finishRejoin(io);
      // The restarted relay drops DATA before its world is complete: hold it.
      if (!rejoining) flushRelay(io);
      const auto after = Clock::now();
      if (after >= nextPing) {
        // Best effort: a PING that finds no connection is simply skipped.
        zmq::send_multipart(io.relay,
                            std::array<zmq::message_t, 1>{HeaderWriter(Type::kPing).message()},
                            zmq::send_flags::dontwait);
        nextPing = after + options_.heartbeatInterval;
      }
      bool joined;
      {
        std::lock_guard<std::mutex> lock(mu_);
        joined = joinState_ == JoinState::kJoined && terminal_ == Terminal::kNone;
      }
      const bool silent = welcomed && after - lastFromRelay > options_.heartbeatTimeout;
      if (rejoining) {
        if (continueRejoin(io)) {
          relayLost("it did not take this node back within " +
                    std::to_string(options_.relayReconnectTimeout.count()) + " ms");
          io.relayStalled.clear();
        }
        lastFromRelay = after;
      } else if (joined && options_.relayReconnectTimeout.count() > 0 && (relayDropped || silent)) {
        startRejoin(
            io, relayDropped
                    ? "connection closed"
                    : "silent for " + std::to_string(options_.heartbeatTimeout.count()) + " ms");
        lastFromRelay = after;
      } else if (silent) {
        relayLost("no traffic from it for " + std::to_string(options_.heartbeatTimeout.count()) +
                  " ms");
        io.relayStalled.clear();  // every peer is lost: nothing left to deliver to
        lastFromRelay = after;    // report once; the node stays up for self-sends
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (joinState_ == JoinState::kJoined || joinState_ == JoinState::kLinking) {
          checkGapsLocked();
        }
      }
    }
    if (sentLeave) {
      io.relay.set(zmq::sockopt::linger, kLeaveLingerMs);
      // Let frames already handed to libzmq on direct links get out too.
      if (io.listener) io.listener->set(zmq::sockopt::linger, kLeaveLingerMs);
      for (auto& link : io.links) {
        if (link.socket) link.socket->set(zmq::sockopt::linger, kLeaveLingerMs);
      }
    }
  }

  void relayLost(const std::string& why) {
    std::lock_guard<std::mutex> lock(mu_);
    relayLostLocked(why);
  }

  void relayLostLocked(const std::string& why) {
    const std::string reason = "relay lost: " + options_.relayEndpoint + ": " + why;
    if (joinState_ != JoinState::kJoined) {
      failJoinLocked(std::make_exception_ptr(MeshPeerLost(-1, "zmq mesh: " + reason)));
      stopRequested_ = true;
      return;
    }
    bool any = false;
    for (int p = 0; p < worldSize_; ++p) {
      if (p != rank_ && alive_[p]) {
        any = true;
        peerLostLocked(p, reason);
      }
    }
    if (any) ++epoch_;
  }

  // Applies a MEMBERSHIP that arrives after joining: a rank whose incarnation
  // changed was taken by a new node. Calls still pending on the old node fail
  // with MeshPeerLost (if PEER_LOST has not already failed them), whatever it
  // sent and was not received is dropped, and the rank is usable again with
  // fresh sequence numbers both ways (the I/O thread resets its side in
  // applyReplacements). A rank that is not alive there is lost.
  // `directory`: the relay's, for the endpoints of nodes that took a lost
  // rank (null after a relay restart: links stay as they are).
  void updateMembershipLocked(std::uint64_t epoch, const std::uint8_t* alive,
                              const std::vector<std::uint64_t>& incarnations,
                              const std::vector<zmqwire::DirectoryEntry>* directory,
                              const std::string& source) {
    bool changed = false;
    for (int p = 0; p < worldSize_; ++p) {
      if (p == rank_) continue;
      if (incarnations[p] == incarnation_[p]) {
        if (!alive[p] && alive_[p]) {
          peerLostLocked(p, "not alive in " + source);
          changed = true;
        }
        continue;
      }
      // A new node has (or had) this rank; the old one is gone for good.
      deferredLoss_.erase(p);
      peerLostLocked(
          p, "replaced by a new node (incarnation " + std::to_string(incarnations[p]) + ")");
      incarnation_[p] = incarnations[p];
      changed = true;
      if (!alive[p]) continue;
      alive_[p] = true;
      lostReason_[p].clear();
      inbound_[p] = Inbound{};
      mailbox_.dropQueuedLocked([p](const Key& key) { return key.first == p; });
      directUp_[p] = false;
      hadDirect_[p] = false;
      if (directory != nullptr) directory_[p] = (*directory)[p];
      replaced_.push_back(p);
      log("rank " + std::to_string(p) + " was taken by a new node (incarnation " +
          std::to_string(incarnations[p]) + ", epoch " + std::to_string(epoch) + ")");
    }
    epoch_ = changed ? std::max(epoch_ + 1, epoch) : std::max(epoch_, epoch);
  }

  // I/O side of a replacement: forget the old node's link (its identity on
  // the listener no longer names the rank), drop frames still waiting for it,
  // restart the sequence numbers, and set up a direct link to the new node
  // where one end is reachable (DIRECT_HELLOs it sent early are answered now).
  void applyReplacements(Io& io) {
    std::vector<int> replaced;
    {
      std::lock_guard<std::mutex> lock(mu_);
      replaced.swap(replaced_);
      for (int p : replaced) io.incarnation[p] = incarnation_[p];
    }
    for (int p : replaced) {
      for (auto it = io.byIdentity.begin(); it != io.byIdentity.end();) {
        it = it->second == p ? io.byIdentity.erase(it) : std::next(it);
      }
      io.links[p].monitor.reset();  // stopped while its socket is open (zmq_monitor.h)
      io.links[p] = Link{};
      io.sendSeq[p] = 0;
      io.unacked[p].clear();
      io.ackSent[p] = 0;
      io.relayStalled.erase(
          std::remove_if(
              io.relayStalled.begin(), io.relayStalled.end(),
              [&](const WireFrame& f) { return f.dst == p && f.incarnation != io.incarnation[p]; }),
          io.relayStalled.end());
      setUpLink(io, p);
    }
    if (!replaced.empty()) replayHeldHellos(io);
  }

  // Handles one message from the relay. Returns false when the loop must stop.
  bool handle(Io& io, std::vector<zmq::message_t>& frames) {
    Type type;
    std::string why;
    std::lock_guard<std::mutex> lock(mu_);
    if (!zmqwire::checkHeader(frames.data(), frames.size(), &type, &why)) {
      protocolErrorLocked(why);
      return false;
    }
    HeaderReader reader(frames[0]);
    const bool member = joinState_ == JoinState::kLinking || joinState_ == JoinState::kJoined;
    switch (type) {
      case Type::kWelcome: {
        const int rank = reader.i32();
        const int worldSize = reader.i32();
        const std::uint64_t incarnation = reader.u64();
        if (rejoining_) {
          // A restarted relay with an elastic size announces its upper
          // bound until it seals the world again; MEMBERSHIP must match.
          if (rank != rank_ || worldSize < worldSize_ || rejoinWelcomed_ ||
              incarnation != incarnation_[rank_]) {
            protocolErrorLocked("the restarted relay admitted this node as rank " +
                                std::to_string(rank) + " of " + std::to_string(worldSize) +
                                " (it was rank " + std::to_string(rank_) + " of " +
                                std::to_string(worldSize_) + ")");
            return false;
          }
          rejoinWelcomed_ = true;
          return true;
        }
        if (joinState_ != JoinState::kJoining || worldSize < 1 || rank < 0 || rank >= worldSize ||
            (options_.requestedRank >= 0 && rank != options_.requestedRank)) {
          protocolErrorLocked("unexpected WELCOME (rank " + std::to_string(rank) + ", world " +
                              std::to_string(worldSize) + ")");
          return false;
        }
        rank_ = rank;
        worldSize_ = worldSize;
        alive_.assign(worldSize, true);
        lostReason_.assign(worldSize, "");
        directUp_.assign(worldSize, false);
        hadDirect_.assign(worldSize, false);
        inbound_.assign(worldSize, Inbound{});
        placing_.assign(worldSize, std::nullopt);
        incarnation_.assign(worldSize, 0);
        incarnation_[rank] = incarnation;
        joinState_ = JoinState::kWelcomed;
        return true;
      }
      case Type::kReject: {
        const std::string reason = frames[1].to_string().substr(0, zmqwire::kMaxStringBytes);
        if (rejoining_) {
          // e.g. another relay took the endpoint, or our rank is still taken
          // in a relay that did not restart: the relay is lost for good.
          rejoining_ = false;
          relayLostLocked("the relay refused to take this node back: " + reason);
          return true;
        }
        failJoinLocked(std::make_exception_ptr(
            MeshRejected(-1, "zmq mesh: the relay at " + options_.relayEndpoint +
                                 " rejected this node: " + reason)));
        if (terminal_ == Terminal::kNone)
          setTerminalLocked(Terminal::kAborted, "rejected: " + reason);
        stopRequested_ = true;
        return false;
      }
      case Type::kMembership: {
        const std::uint64_t epoch = reader.u64();
        const int worldSize = reader.i32();
        std::vector<zmqwire::DirectoryEntry> directory;
        std::vector<std::uint64_t> incarnations;
        // The first MEMBERSHIP seals the world: WELCOME's world size was an
        // upper bound (an elastic relay), this one is the world's size.
        const bool sealing = joinState_ == JoinState::kWelcomed && !rejoining_;
        const bool sizeOk =
            sealing ? worldSize > rank_ && worldSize <= worldSize_ : worldSize == worldSize_;
        const bool wellFormed =
            sizeOk && frames[1].size() == static_cast<std::size_t>(worldSize) &&
            zmqwire::decodeDirectory(frames[2], worldSize, &directory, &why) &&
            zmqwire::decodeIncarnations(frames[3], worldSize, &incarnations, &why) &&
            incarnations[rank_] == incarnation_[rank_];
        const auto* alive = static_cast<const std::uint8_t*>(frames[1].data());
        if (rejoining_ && rejoinWelcomed_) {
          if (!wellFormed) {
            protocolErrorLocked("unexpected MEMBERSHIP from the restarted relay" +
                                (why.empty() ? "" : ": " + why));
            return false;
          }
          // Direct links stay as they are; the new directory is not used.
          updateMembershipLocked(epoch, alive, incarnations, nullptr,
                                 "the restarted relay's membership");
          rejoining_ = false;
          rejoinedPending_ = true;
          wake();
          return true;
        }
        if (member && !rejoining_) {
          // A membership change while running: a new node took a lost rank.
          if (!wellFormed) {
            protocolErrorLocked("unexpected MEMBERSHIP update" + (why.empty() ? "" : ": " + why));
            return false;
          }
          updateMembershipLocked(epoch, alive, incarnations, &directory, "the relay's membership");
          return true;
        }
        if (joinState_ != JoinState::kWelcomed || !wellFormed) {
          protocolErrorLocked("unexpected MEMBERSHIP" + (why.empty() ? "" : ": " + why));
          return false;
        }
        if (worldSize != worldSize_) {
          worldSize_ = worldSize;
          alive_.resize(worldSize);
          lostReason_.resize(worldSize);
          directUp_.resize(worldSize);
          hadDirect_.resize(worldSize);
          inbound_.resize(worldSize);
          placing_.resize(worldSize);
        }
        incarnation_ = incarnations;
        for (int p = 0; p < worldSize_; ++p) {
          if (!alive[p]) peerLostLocked(p, "not alive in the membership");
        }
        directory_ = std::move(directory);
        epoch_ = epoch;
        joinState_ = JoinState::kLinking;  // the loop sets up direct links, then joins
        wake();
        return true;
      }
      case Type::kData:
      case Type::kFence:
      case Type::kAck: {
        const int src = reader.i32();
        if (!member || src < 0 || src >= worldSize_ || src == rank_) {
          protocolErrorLocked(std::string(type == Type::kData    ? "DATA"
                                          : type == Type::kFence ? "FENCE"
                                                                 : "ACK") +
                              " from rank " + std::to_string(src) + " (world " +
                              std::to_string(worldSize_) + ")");
          return false;
        }
        if (type != Type::kData) {
          const std::uint64_t next = reader.u64();
          if (reader.u64() != incarnation_[src]) return true;  // for an earlier node
          if (type == Type::kAck) {
            acknowledged(io, src, next);  // also while leaving: the drain waits for these
          } else if (terminal_ == Terminal::kNone) {
            fenceLocked(src, next);
          }
          return true;
        }
        if (terminal_ != Terminal::kNone) return true;
        const MeshTag tag = reader.u64();
        const std::uint64_t seq = reader.u64();
        // From a node that has since been replaced: never the new one's.
        if (reader.u64() != incarnation_[src]) return true;
        deliverOrderedLocked(src, tag, seq, payloadBytes(frames[1]));
        return true;
      }
      case Type::kPong:
        return true;
      case Type::kPeerLost: {
        const int lost = reader.i32();
        const std::uint64_t epoch = reader.u64();
        if (joinState_ == JoinState::kJoining || lost < 0 || lost >= worldSize_) {
          protocolErrorLocked("PEER_LOST for rank " + std::to_string(lost));
          return false;
        }
        if (lost == rank_) {
          // The relay gave up on us (e.g. our heartbeats were late).
          if (terminal_ == Terminal::kNone) {
            setTerminalLocked(Terminal::kAborted, "the relay declared this rank lost");
          }
          stopRequested_ = true;
          return false;
        }
        const std::string reason = frames[1].to_string().substr(0, zmqwire::kMaxStringBytes);
        if (hadDirect_[lost]) {
          // Frames it sent over the direct link just before leaving may still
          // be on their way (PEER_LOST can overtake them): apply the loss
          // once that link has closed, or after heartbeatTimeout at most.
          deferredLoss_[lost] =
              DeferredLoss{reason, epoch, Clock::now() + options_.heartbeatTimeout};
          return true;
        }
        peerLostLocked(lost, reason);
        epoch_ = std::max(epoch_, epoch);
        return true;
      }
      default:
        protocolErrorLocked("message type " + std::to_string(static_cast<int>(type)) +
                            " is not sent by relays");
        return false;
    }
  }

  const ZmqMeshOptions options_;
  const CurveKeyPair nodeKeys_;  // empty without CURVE
  int eventFd_ = -1;
  std::mutex mu_;
  // Set at WELCOME (rank; world size as an upper bound) and at the first
  // MEMBERSHIP (the sealed world size), before connectZmqMesh returns;
  // read-only afterwards.
  int rank_ = -1;
  int worldSize_ = 0;
  // Set at MEMBERSHIP; read by the I/O thread only afterwards.
  std::vector<zmqwire::DirectoryEntry> directory_;

  std::uint64_t epoch_ = 0;
  // Per rank: the relay epoch at which its current node was admitted.
  std::vector<std::uint64_t> incarnation_;
  std::vector<int> replaced_;  // ranks taken by new nodes, for applyReplacements
  std::vector<bool> alive_;
  std::vector<std::string> lostReason_;
  std::vector<bool> directUp_;     // pathTo: the direct link to that peer is up
  std::map<int, LaneUse> laneTo_;  // laneTo: what carries DATA to a peer (absent: none)
  std::string hostIdentity_;       // sameHostLinks: this host's identity ("" : off)
  std::vector<bool> hadDirect_;    // a direct link to that peer was up at some point
  std::vector<Inbound> inbound_;   // per sender
  std::vector<std::optional<Placement>> placing_;  // per sender (LaneDelivery)
  std::atomic<bool> endLoansWanted_{false};        // detachLoans to run (endLoans)
  std::map<int, std::uint64_t> skipSeq_;           // test hook: sequence numbers to skip per peer
  LinkBreak breakLinks_ = LinkBreak::kNone;        // test hook: close every direct link
  struct DeferredLoss {
    std::string reason;
    std::uint64_t epoch;
    Clock::time_point deadline;
  };
  std::map<int, DeferredLoss> deferredLoss_;  // PEER_LOST waiting for a direct link to drain
  // Relay restarts: rejoining_ from the loss of the relay until the restarted
  // relay's MEMBERSHIP; rejoinedPending_ tells the loop to send FENCEs.
  bool rejoining_ = false;
  bool rejoinWelcomed_ = false;
  bool rejoinedPending_ = false;
  Clock::time_point rejoinDeadline_;         // I/O thread only
  Clock::time_point rejoinAttemptDeadline_;  // I/O thread only
  Terminal terminal_ = Terminal::kNone;
  std::string terminalReason_;
  bool stopRequested_ = false;
  JoinState joinState_ = JoinState::kJoining;
  bool relayHandshakeOk_ = false;
  int relayDropsInHandshake_ = 0;
  std::exception_ptr joinError_;
  std::condition_variable joinCv_;
  meshcore::MailboxCore<Key, RequestState> mailbox_;  // mailboxes and posted recvs
  std::deque<Outgoing> outbox_;
};

using ZmqRequest = meshcore::MeshRequestImpl<Core, RequestState>;

// isendFrom's request: it finishes when the send did (as isend's) and the
// loan of the caller's bytes has ended. wait() ends the loans still running
// (frames the peer has not acknowledged yet get copies of their own; see
// Core::endLoans) rather than wait for acknowledgements, except for bytes a
// bulk lane described to the peer for a cross-memory read: those it leaves
// to the peer's ACK until its timeout (the peer is reading them; taking them
// back would fail that read and send the frame again), unless the peer is
// lost meanwhile. cancel() and the destructor end the loan at once and wait
// for it, so the caller's bytes are free when they return.
class ZmqLentSendRequest : public MeshRequest {
 public:
  ZmqLentSendRequest(std::shared_ptr<Core> core, std::shared_ptr<RequestState> st,
                     std::shared_ptr<Borrow> borrow)
      : core_(std::move(core)), st_(std::move(st)), borrow_(std::move(borrow)) {}
  ~ZmqLentSendRequest() override { endLoan(); }

  bool test() override { return released() && meshcore::testRequest(core_->mutex(), *st_); }
  bool wait(Millis timeout) override {
    const auto until =
        timeout == kMeshNoTimeout ? Clock::time_point::max() : Clock::now() + timeout;
    try {
      if (!meshcore::waitRequest(core_->mutex(), *st_, timeout)) return false;
    } catch (...) {
      endLoan();
      throw;
    }
    if (awaitRemoteRelease(until)) return true;
    return endLoan(until);
  }
  bool cancel() override {
    const bool cancelled = core_->cancel(*st_);
    endLoan();
    return cancelled;
  }
  MeshBytes take() override { return meshcore::takeRequest(core_->mutex(), *st_); }
  int peer() const override { return st_->peer; }
  MeshTag tag() const override { return st_->tag; }

 private:
  bool released() {
    std::lock_guard<std::mutex> lock(borrow_->mu);
    return borrow_->released;
  }
  // Bytes described for a cross-memory read: waits for the peer's ACK to
  // release them, until `until` or the peer is lost. True once released.
  bool awaitRemoteRelease(Clock::time_point until) {
    const auto done = [&] { return borrow_->released; };
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(borrow_->mu);
        if (!borrow_->remote) return borrow_->released;
        const auto slice = std::min(until, Clock::now() + kRemoteReleaseSlice);
        if (borrow_->cv.wait_until(lock, slice, done)) return true;
      }
      // Not under borrow_->mu: Core's mutex comes first (see Borrow).
      if (Clock::now() >= until || !core_->isAlive(st_->peer)) return false;
    }
  }
  // Ends the loan and waits until no frame references the bytes (the I/O
  // thread copies them within one round; if it has stopped, its frames are
  // gone already), at most until `until`. True once the loan is over.
  bool endLoan(Clock::time_point until = Clock::time_point::max()) {
    if (released()) return true;
    core_->endLoans();
    std::unique_lock<std::mutex> lock(borrow_->mu);
    const auto done = [&] { return borrow_->released; };
    if (until != Clock::time_point::max()) return borrow_->cv.wait_until(lock, until, done);
    core_->waitForIoThread(lock, borrow_->cv, done, "a lent send");
    return true;
  }

  std::shared_ptr<Core> core_;
  std::shared_ptr<RequestState> st_;
  std::shared_ptr<Borrow> borrow_;
};

class ZmqMesh : public Mesh {
 public:
  ZmqMesh(const ZmqMeshOptions& options, CurveKeyPair nodeKeys)
      : core_(std::make_shared<Core>(options, std::move(nodeKeys))),
        io_([core = core_] { core->ioLoop(); }) {}
  ~ZmqMesh() override {
    core_->abort("mesh destroyed");
    io_.join();
  }

  void waitJoined() { core_->waitJoined(); }

  int rank() const override { return core_->rank(); }
  int worldSize() const override { return core_->worldSize(); }
  std::uint64_t epoch() const override { return core_->epoch(); }
  bool isPeerAlive(int peer) const override {
    core_->checkRank(peer, "isPeerAlive");
    return core_->isAlive(peer);
  }
  std::string backendName() const override { return "zmq"; }
  std::string pathTo(int peer) const override {
    core_->checkRank(peer, "pathTo");
    return core_->pathTo(peer);
  }
  std::string laneTo(int peer) const {
    core_->checkRank(peer, "zmqLaneTo");
    return core_->laneTo(peer);
  }
  Core& core() { return *core_; }

  std::unique_ptr<MeshRequest> isend(int peer, MeshTag tag, MeshBytes bytes) override {
    core_->checkRank(peer, "isend");
    return std::make_unique<ZmqRequest>(core_, core_->isend(peer, tag, std::move(bytes)));
  }
  std::unique_ptr<MeshRequest> isendFrom(int peer, MeshTag tag, const std::uint8_t* data,
                                         std::size_t size) override {
    core_->checkRank(peer, "isendFrom");
    auto [st, borrow] = core_->isendFrom(peer, tag, data, size);
    if (!borrow) return std::make_unique<ZmqRequest>(core_, st);
    return std::make_unique<ZmqLentSendRequest>(core_, st, borrow);
  }
  std::unique_ptr<MeshRequest> irecvInto(int peer, MeshTag tag, std::uint8_t* into,
                                         std::size_t size) override {
    core_->checkRank(peer, "irecvInto");
    return std::make_unique<ZmqRequest>(core_, core_->irecv(peer, tag, into, size));
  }
  std::unique_ptr<MeshRequest> irecv(int peer, MeshTag tag) override {
    core_->checkRank(peer, "irecv");
    return std::make_unique<ZmqRequest>(core_, core_->irecv(peer, tag));
  }
  void abort() override { core_->abort("abort() called"); }

 private:
  std::shared_ptr<Core> core_;
  std::thread io_;
};

}  // namespace

std::unique_ptr<Mesh> connectZmqMesh(const ZmqMeshOptions& options) {
  if (options.relayEndpoint.empty())
    throw MeshUsageError(-1, "connectZmqMesh: relayEndpoint is empty");
  if (options.heartbeatInterval.count() <= 0 ||
      options.heartbeatTimeout <= options.heartbeatInterval) {
    throw MeshUsageError(-1, "connectZmqMesh: need 0 < heartbeatInterval < heartbeatTimeout, got " +
                                 std::to_string(options.heartbeatInterval.count()) + " ms and " +
                                 std::to_string(options.heartbeatTimeout.count()) + " ms");
  }
  if (options.runId.size() > zmqwire::kMaxStringBytes ||
      options.joinToken.size() > zmqwire::kMaxStringBytes) {
    throw MeshUsageError(-1, "connectZmqMesh: runId and joinToken must be at most " +
                                 std::to_string(zmqwire::kMaxStringBytes) + " bytes");
  }
  if (!options.listenEndpoint.empty()) {
    if (options.listenEndpoint.rfind("tcp://", 0) != 0) {
      throw MeshUsageError(-1, "connectZmqMesh: listenEndpoint must be tcp://HOST:PORT, got '" +
                                   options.listenEndpoint + "'");
    }
    if (!options.advertiseEndpoint.empty() &&
        !zmqwire::isDialableEndpoint(options.advertiseEndpoint)) {
      throw MeshUsageError(-1, "connectZmqMesh: advertiseEndpoint '" + options.advertiseEndpoint +
                                   "' is not a dialable tcp://HOST:PORT");
    }
    if (options.relayPublicKey.empty() && !options.allowPlaintext &&
        !isLoopbackEndpoint(options.listenEndpoint)) {
      throw MeshUsageError(
          -1, "connectZmqMesh: refusing to accept direct links on " + options.listenEndpoint +
                  " in plaintext: it is not a loopback address. Use CURVE (the relay's public "
                  "key, HEARTH_RELAY_PUBLIC_KEY), or allow plaintext explicitly "
                  "(HEARTH_ALLOW_PLAINTEXT=1)");
    }
  }
  if (options.directConnectTimeout.count() <= 0) {
    throw MeshUsageError(-1, "connectZmqMesh: directConnectTimeout must be positive");
  }
  CurveKeyPair nodeKeys;
  if (options.relayPublicKey.empty()) {
    if (!options.allowPlaintext && !isLoopbackEndpoint(options.relayEndpoint)) {
      throw MeshUsageError(
          -1, "connectZmqMesh: refusing to connect to " + options.relayEndpoint +
                  " in plaintext: it is not a loopback address, so the join token and all data "
                  "would travel in clear. Set the relay's public key (HEARTH_RELAY_PUBLIC_KEY), "
                  "or allow plaintext explicitly (HEARTH_ALLOW_PLAINTEXT=1)");
    }
  } else {
    if (!isCurveKeyZ85(options.relayPublicKey)) {
      throw MeshUsageError(-1,
                           "connectZmqMesh: relayPublicKey is not a 40-character Z85 "
                           "CURVE public key");
    }
    try {
      nodeKeys = options.curveSecretKeyFile.empty()
                     ? generateCurveKeyPair()
                     : readCurveSecretKeyFile(options.curveSecretKeyFile);
    } catch (const CurveKeyError& e) {
      throw MeshUsageError(-1, std::string("connectZmqMesh: ") + e.what());
    }
  }
  auto mesh = std::make_unique<ZmqMesh>(options, std::move(nodeKeys));
  bool firstMesh = false;
  const std::string mallocDecision = zmqwire::keepMessageBuffersMapped(&firstMesh);
  mesh->waitJoined();  // on failure the destructor aborts and joins the I/O thread
  if (firstMesh && mesh->rank() == 0) mesh->core().log(mallocDecision);  // once per run is enough
  return mesh;
}

std::string zmqLaneTo(const Mesh& mesh, int peer) {
  const auto* zmq = dynamic_cast<const ZmqMesh*>(&mesh);
  if (zmq == nullptr) throw MeshUsageError(-1, "zmqLaneTo: not a zmq mesh");
  return zmq->laneTo(peer);
}

namespace zmqtesting {

namespace {
ZmqMesh& zmqMeshOf(Mesh& mesh) {
  auto* zmq = dynamic_cast<ZmqMesh*>(&mesh);
  if (zmq == nullptr) throw MeshUsageError(-1, "zmqtesting: not a zmq mesh");
  return *zmq;
}
}  // namespace

void breakDirectLinks(Mesh& mesh) {
  zmqMeshOf(mesh).core().breakDirectLinks(LinkBreak::kLinksAndListener);
}

void dropDirectConnections(Mesh& mesh) {
  zmqMeshOf(mesh).core().breakDirectLinks(LinkBreak::kLinksOnly);
}

void skipSequenceNumber(Mesh& mesh, int peer) {
  zmqMeshOf(mesh).core().skipSequence(peer);
}

}  // namespace zmqtesting

}  // namespace hearth
