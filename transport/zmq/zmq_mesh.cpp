// ZeroMQ Mesh backend, relayed path. One Core per rank holds the matching
// state (mailboxes, posted recvs, the outbox) under one mutex; one I/O thread
// owns the context and the DEALER socket, drains the outbox when the eventfd
// is signalled, delivers incoming DATA, heartbeats, and watches the relay.
#include "hearth/transport/zmq_mesh.h"

#include <sys/eventfd.h>
#include <unistd.h>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include <algorithm>
#include <array>
#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <utility>

#include "../common/mesh_core.h"
#include "hearth/transport/curve_keys.h"
#include "zmq_monitor.h"
#include "zmq_wire.h"

namespace hearth {
namespace {

using Clock = std::chrono::steady_clock;
using Key = std::pair<int, MeshTag>;  // (peer, tag)
using meshcore::describe;
using meshcore::failLocked;
using meshcore::RequestState;
using meshcore::Status;
using zmqwire::HeaderReader;
using zmqwire::HeaderWriter;
using zmqwire::Type;

// Payloads at least this big are handed to libzmq without a copy.
constexpr std::size_t kZeroCopyBytes = 4096;
// How long a LEAVE may take to leave the socket on close.
constexpr int kLeaveLingerMs = 200;

enum class JoinState { kJoining, kWelcomed, kJoined, kFailed };
enum class Terminal { kNone, kAborted, kBroken };

struct Outgoing {
  int dst;
  MeshTag tag;
  MeshBytes bytes;
  std::shared_ptr<RequestState> st;
};

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

class Core {
 public:
  Core(ZmqMeshOptions options, CurveKeyPair nodeKeys)
      : options_(std::move(options)), nodeKeys_(std::move(nodeKeys)) {
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

  // ---- caller side ----

  std::shared_ptr<RequestState> isend(int peer, MeshTag tag, MeshBytes bytes) {
    auto st = makeState(false, peer, tag);
    std::lock_guard<std::mutex> lock(mu_);
    if (failIfUnusableLocked(*st)) return st;
    if (peer == rank_) {
      deliverLocked(peer, tag, std::move(bytes));
      st->status = Status::kDone;
      return st;
    }
    outbox_.push_back(Outgoing{peer, tag, std::move(bytes), st});
    wake();
    return st;
  }

  std::shared_ptr<RequestState> irecv(int peer, MeshTag tag) {
    auto st = makeState(true, peer, tag);
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

  // The mutex guarding every RequestState of this core.
  std::mutex& mutex() { return mu_; }

  bool cancel(RequestState& st) {
    std::lock_guard<std::mutex> lock(mu_);
    if (st.status != Status::kPending) return false;
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
      throw MeshTimeout(
          -1,
          "zmq mesh: joining run '" + options_.runId + "' at " + options_.relayEndpoint +
              ": timed out after " + std::to_string(options_.joinTimeout.count()) + " ms (" +
              (joinState_ == JoinState::kWelcomed ? "admitted as rank " + std::to_string(rank_) +
                                                        ", waiting for the world to complete"
                                                  : std::string("no answer from the relay")) +
              ")" +
              (options_.relayPublicKey.empty()
                   ? std::string()
                   : std::string("; with CURVE this also means the handshake failed: check that "
                                 "the relay public key is right and that the relay's allowlist "
                                 "holds this node's key")));
    }
    std::rethrow_exception(joinError_);
  }

  // ---- I/O thread ----

  void ioLoop() {
    try {
      zmq::context_t context(1);
      zmq::socket_t socket(context, zmq::socket_type::dealer);
      socket.set(zmq::sockopt::sndhwm, 0);
      socket.set(zmq::sockopt::rcvhwm, 0);
      socket.set(zmq::sockopt::linger, 0);
      socket.set(zmq::sockopt::maxmsgsize, options_.maxMessageBytes);
      if (!options_.relayPublicKey.empty()) {
        socket.set(zmq::sockopt::curve_serverkey, options_.relayPublicKey);
        socket.set(zmq::sockopt::curve_publickey, nodeKeys_.publicKey);
        socket.set(zmq::sockopt::curve_secretkey, nodeKeys_.secretKey);
      }
      // Handshake outcomes: a refused or mismatched CURVE key is reported
      // here (libzmq would otherwise retry silently) and becomes MeshRejected.
      zmqwire::SocketMonitor monitor(context, socket, "relay",
                                     ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                                         ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                                         ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                                         ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED);
      socket.connect(options_.relayEndpoint);
      {
        std::vector<zmq::message_t> hello;
        hello.push_back(HeaderWriter(Type::kHello).i32(options_.requestedRank).message());
        hello.emplace_back(options_.runId.data(), options_.runId.size());
        hello.emplace_back(options_.joinToken.data(), options_.joinToken.size());
        zmq::send_multipart(socket, hello);
      }
      serve(socket, monitor);
      socket.close();
    } catch (const std::exception& e) {
      std::lock_guard<std::mutex> lock(mu_);
      failJoinLocked(std::make_exception_ptr(
          MeshAborted(-1, std::string("zmq mesh: I/O thread failed: ") + e.what())));
      if (terminal_ == Terminal::kNone) {
        setTerminalLocked(Terminal::kAborted, std::string("I/O thread failed: ") + e.what());
      }
    }
  }

 private:
  std::shared_ptr<RequestState> makeState(bool isRecv, int peer, MeshTag tag) {
    return meshcore::makeRequest("zmq", isRecv, rank_, peer, tag);
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
    if (event.event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL && options_.relayPublicKey.empty()) {
      why.clear();
    }
    if (why.empty() && event.event == ZMQ_EVENT_DISCONNECTED && !relayHandshakeOk_ &&
        !options_.relayPublicKey.empty() && ++relayDropsInHandshake_ >= 2) {
      // A CURVE server that cannot open our HELLO (we hold the wrong server
      // key) closes the connection without telling why.
      why =
          "the relay closed the connection during the CURVE handshake twice: the relay public "
          "key is probably wrong";
    }
    if (why.empty() || joinState_ != JoinState::kJoining) return;
    if (!options_.relayPublicKey.empty()) {
      why +=
          " (check the relay public key, HEARTH_RELAY_PUBLIC_KEY: " + options_.relayPublicKey + ")";
    }
    failJoinLocked(std::make_exception_ptr(MeshRejected(
        -1,
        "zmq mesh: the relay at " + options_.relayEndpoint + " refused the connection: " + why)));
    if (terminal_ == Terminal::kNone) setTerminalLocked(Terminal::kAborted, "rejected: " + why);
    stopRequested_ = true;
  }

  void serve(zmq::socket_t& socket, zmqwire::SocketMonitor& monitor) {
    auto lastFromRelay = Clock::now();
    auto nextPing = Clock::now() + options_.heartbeatInterval;
    bool sentLeave = false;
    std::deque<Outgoing> sending;
    // DATA frames libzmq could not take yet (no live connection to the relay:
    // a DEALER send would block). They are retried every loop, in order, so
    // the heartbeat clock keeps running and a lost relay is still detected.
    std::deque<std::array<zmq::message_t, 2>> stalled;
    for (;;) {
      bool welcomed;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (stopRequested_) {
          welcomed = joinState_ != JoinState::kJoining && joinState_ != JoinState::kFailed;
          if (options_.announceLeave && welcomed && terminal_ == Terminal::kAborted) {
            // dontwait: with no live connection to the relay (e.g. a CURVE
            // handshake that failed) a DEALER send would block forever.
            sentLeave =
                zmq::send_multipart(
                    socket, std::array<zmq::message_t, 1>{HeaderWriter(Type::kLeave).message()},
                    zmq::send_flags::dontwait)
                    .has_value();
          }
          break;
        }
        welcomed = joinState_ != JoinState::kJoining;
      }
      const auto now = Clock::now();
      auto deadline = nextPing;
      if (welcomed) deadline = std::min(deadline, lastFromRelay + options_.heartbeatTimeout);
      const auto waitMs = std::chrono::duration_cast<Millis>(deadline - now).count() + 1;
      zmq::pollitem_t items[] = {{socket.handle(), 0, ZMQ_POLLIN, 0},
                                 {nullptr, eventFd_, ZMQ_POLLIN, 0},
                                 {monitor.socket().handle(), 0, ZMQ_POLLIN, 0}};
      try {
        zmq::poll(items, 3, Millis(std::clamp<long>(waitMs, 0, stalled.empty() ? 100 : 5)));
      } catch (const zmq::error_t& e) {
        if (e.num() != EINTR) throw;
      }
      if (items[1].revents & ZMQ_POLLIN) {
        std::uint64_t count;
        [[maybe_unused]] auto n = ::read(eventFd_, &count, sizeof(count));
      }
      if (items[2].revents & ZMQ_POLLIN) {
        zmqwire::MonitorEvent event;
        while (monitor.next(&event)) relayHandshakeEvent(event);
      }
      // Incoming: drain, but come back to the outbox and the clock regularly.
      for (int i = 0; i < 256; ++i) {
        std::vector<zmq::message_t> frames;
        if (!zmq::recv_multipart(socket, std::back_inserter(frames), zmq::recv_flags::dontwait)) {
          break;
        }
        lastFromRelay = Clock::now();
        if (!handle(frames)) break;
      }
      // Outgoing: a send completes when taken from the outbox.
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (joinState_ == JoinState::kJoined) {
          sending.swap(outbox_);
          for (auto& o : sending) meshcore::finishLocked(*o.st);
        }
      }
      for (auto& o : sending) {
        stalled.push_back(
            std::array<zmq::message_t, 2>{HeaderWriter(Type::kData).i32(o.dst).u64(o.tag).message(),
                                          payloadMessage(std::move(o.bytes))});
      }
      sending.clear();
      while (!stalled.empty() &&
             zmq::send_multipart(socket, stalled.front(), zmq::send_flags::dontwait)) {
        stalled.pop_front();
      }
      const auto after = Clock::now();
      if (after >= nextPing) {
        // Best effort: a PING that finds no connection is simply skipped.
        zmq::send_multipart(socket,
                            std::array<zmq::message_t, 1>{HeaderWriter(Type::kPing).message()},
                            zmq::send_flags::dontwait);
        nextPing = after + options_.heartbeatInterval;
      }
      if (welcomed && after - lastFromRelay > options_.heartbeatTimeout) {
        relayLost();
        stalled.clear();        // every peer is lost: nothing left to deliver to
        lastFromRelay = after;  // report once; the node stays up for self-sends
      }
    }
    if (sentLeave) socket.set(zmq::sockopt::linger, kLeaveLingerMs);
  }

  void relayLost() {
    std::lock_guard<std::mutex> lock(mu_);
    const std::string reason = "relay lost: no traffic from " + options_.relayEndpoint + " for " +
                               std::to_string(options_.heartbeatTimeout.count()) + " ms";
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

  // Handles one message from the relay. Returns false when the loop must stop.
  bool handle(std::vector<zmq::message_t>& frames) {
    Type type;
    std::string why;
    std::lock_guard<std::mutex> lock(mu_);
    if (!zmqwire::checkHeader(frames.data(), frames.size(), &type, &why)) {
      protocolErrorLocked(why);
      return false;
    }
    HeaderReader reader(frames[0]);
    switch (type) {
      case Type::kWelcome: {
        const int rank = reader.i32();
        const int worldSize = reader.i32();
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
        joinState_ = JoinState::kWelcomed;
        return true;
      }
      case Type::kReject: {
        const std::string reason = frames[1].to_string().substr(0, zmqwire::kMaxStringBytes);
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
        if (joinState_ != JoinState::kWelcomed || worldSize != worldSize_ ||
            frames[1].size() != static_cast<std::size_t>(worldSize_)) {
          protocolErrorLocked("unexpected MEMBERSHIP");
          return false;
        }
        const auto* alive = static_cast<const std::uint8_t*>(frames[1].data());
        for (int p = 0; p < worldSize_; ++p) {
          if (!alive[p]) peerLostLocked(p, "not alive in the membership");
        }
        epoch_ = epoch;
        joinState_ = JoinState::kJoined;
        joinCv_.notify_all();
        wake();  // sends queued meanwhile can go now
        return true;
      }
      case Type::kData: {
        const int src = reader.i32();
        const MeshTag tag = reader.u64();
        if (joinState_ != JoinState::kJoined || src < 0 || src >= worldSize_) {
          protocolErrorLocked("DATA from rank " + std::to_string(src) + " (world " +
                              std::to_string(worldSize_) + ")");
          return false;
        }
        if (terminal_ != Terminal::kNone) return true;
        const auto* data = static_cast<const std::uint8_t*>(frames[1].data());
        deliverLocked(src, tag, MeshBytes(data, data + frames[1].size()));
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
        peerLostLocked(lost, frames[1].to_string().substr(0, zmqwire::kMaxStringBytes));
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
  // Set once at WELCOME, before connectZmqMesh returns; read-only afterwards.
  int rank_ = -1;
  int worldSize_ = 0;

  std::uint64_t epoch_ = 0;
  std::vector<bool> alive_;
  std::vector<std::string> lostReason_;
  Terminal terminal_ = Terminal::kNone;
  std::string terminalReason_;
  bool stopRequested_ = false;
  JoinState joinState_ = JoinState::kJoining;
  bool relayHandshakeOk_ = false;
  int relayDropsInHandshake_ = 0;
  std::exception_ptr joinError_;
  std::condition_variable joinCv_;
  meshcore::MailboxCore<Key> mailbox_;  // mailboxes and posted recvs
  std::deque<Outgoing> outbox_;
};

using ZmqRequest = meshcore::MeshRequestImpl<Core>;

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

  std::unique_ptr<MeshRequest> isend(int peer, MeshTag tag, MeshBytes bytes) override {
    core_->checkRank(peer, "isend");
    return std::make_unique<ZmqRequest>(core_, core_->isend(peer, tag, std::move(bytes)));
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
  mesh->waitJoined();  // on failure the destructor aborts and joins the I/O thread
  return mesh;
}

}  // namespace hearth
