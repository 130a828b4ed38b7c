// The hearth relay: one ROUTER socket served by one thread. See zmq_relay.h
// and docs/transport_protocol.md.
#include "hearth/transport/zmq_relay.h"

#include <zmq.hpp>
#include <zmq_addon.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <deque>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

#include "hearth/transport/curve_keys.h"
#include "message_buffer_malloc.h"
#include "zmq_wire.h"

namespace hearth {

namespace {
using Clock = std::chrono::steady_clock;
using zmqwire::HeaderReader;
using zmqwire::HeaderWriter;
using zmqwire::Type;

std::string printable(const std::string& id) {
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : id) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}
}  // namespace

class ZmqRelay::Impl {
 public:
  explicit Impl(ZmqRelayOptions options)
      : options_(std::move(options)), socket_(context_, zmq::socket_type::router) {
    if (options_.maxWorldSize > 0) {
      if (options_.minWorldSize < 1 || options_.minWorldSize > options_.maxWorldSize) {
        throw std::invalid_argument(
            "hearth relay: an elastic world size needs 1 <= min <= max, got " +
            std::to_string(options_.minWorldSize) + ":" + std::to_string(options_.maxWorldSize));
      }
      if (options_.joinGrace.count() < 0) {
        throw std::invalid_argument("hearth relay: joinGrace must be >= 0");
      }
      minWorld_ = options_.minWorldSize;
      maxWorld_ = options_.maxWorldSize;
    } else {
      if (options_.worldSize < 1) {
        throw std::invalid_argument("hearth relay: worldSize must be >= 1, got " +
                                    std::to_string(options_.worldSize));
      }
      minWorld_ = maxWorld_ = options_.worldSize;
    }
    // Until the world is sealed, ranks range over [0, maxWorld_).
    worldSize_ = maxWorld_;
    slots_.resize(worldSize_);
    socket_.set(zmq::sockopt::router_mandatory, 1);
    socket_.set(zmq::sockopt::sndhwm, 0);
    socket_.set(zmq::sockopt::rcvhwm, 0);
    socket_.set(zmq::sockopt::linger, 0);
    socket_.set(zmq::sockopt::maxmsgsize, options_.maxMessageBytes);
    setUpCurve();
    try {
      socket_.bind(options_.bindEndpoint);
    } catch (const zmq::error_t& e) {
      throw std::runtime_error("hearth relay: cannot bind " + options_.bindEndpoint + ": " +
                               e.what());
    }
    endpoint_ = socket_.get(zmq::sockopt::last_endpoint);
  }

  ~Impl() { stop(); }

  std::string endpoint() const { return endpoint_; }
  std::string publicKey() const { return publicKey_; }

  void requestStop() { stopRequested_.store(true); }

  void start() {
    bool first = false;
    const std::string mallocDecision = zmqwire::keepMessageBuffersMapped(&first);
    if (first) log("hearth relay: " + mallocDecision);
    thread_ = std::thread([this] { run(); });
  }

  void stop() {
    requestStop();
    if (thread_.joinable()) thread_.join();
  }

  ZmqRelayStats stats() const {
    std::lock_guard<std::mutex> lock(statsMu_);
    return stats_;
  }

  void run() {
    log("hearth relay: serving run '" + options_.runId + "' for " + sizeText() + " nodes on " +
        endpoint_);
    while (!stopRequested_.load()) {
      zmq::pollitem_t items[] = {{socket_.handle(), 0, ZMQ_POLLIN, 0},
                                 {zap_.handle(), 0, ZMQ_POLLIN, 0}};
      try {
        zmq::poll(items, zap_ ? 2 : 1, std::chrono::milliseconds(50));
      } catch (const zmq::error_t& e) {
        if (e.num() == EINTR) continue;
        throw;
      }
      // Drain what is there, but look at the clock at least every 256 messages.
      for (int i = 0; i < 256 && (items[0].revents & ZMQ_POLLIN); ++i) {
        std::vector<zmq::message_t> frames;
        auto got =
            zmq::recv_multipart(socket_, std::back_inserter(frames), zmq::recv_flags::dontwait);
        if (!got) break;
        handle(frames);
      }
      if (zap_ && (items[1].revents & ZMQ_POLLIN)) serveZap();
      checkProbes();
      checkHeartbeats();
      maybeCompleteWorld();
      processLosses();
    }
    log("hearth relay: stopped");
  }

 private:
  struct Slot {
    bool joined = false;
    bool alive = false;
    std::string identity;
    Clock::time_point lastSeen;
    std::string advertised;  // the endpoint the node says it accepts direct links on
    std::string key;         // the node's raw CURVE public key (empty without CURVE)
    std::string local;       // where members on its host may dial it (not probed)
    std::string host;        // its host identity (empty: unknown)
    bool reachable = false;  // the probe of `advertised` succeeded
    // The relay epoch at which this rank's current node was admitted (0 for
    // the first world); a node that replaces a lost one gets a new value.
    std::uint64_t incarnation = 0;
  };

  // Where a HELLO says its node accepts direct links.
  struct NodeAddress {
    std::string advertised;
    std::string key;
    std::string local;
    std::string host;
  };

  // A node takes `slot`: joined and alive from now, with what its HELLO said.
  static void occupy(Slot& slot, const std::string& identity, const NodeAddress& address) {
    slot.joined = true;
    slot.alive = true;
    slot.identity = identity;
    slot.lastSeen = Clock::now();
    slot.advertised = address.advertised;
    slot.key = address.key;
    slot.local = address.local;
    slot.host = address.host;
  }

  // An outside check of a node's advertised endpoint: a short-lived DEALER
  // sends PROBE(nonce) there; the node's listener passes the nonce back over
  // the node's own relay connection (PROBE_ACK). That proves the endpoint
  // reaches this very node (and, with CURVE, that it holds its key).
  struct Probe {
    int rank;
    std::string nonce;
    std::unique_ptr<zmq::socket_t> socket;
    Clock::time_point deadline;
  };

  // CURVE server keys, the allowlist's ZAP socket, and the plaintext policy.
  void setUpCurve() {
    if (options_.curveSecretKeyFile.empty()) {
      if (!options_.allowKeysFile.empty()) {
        throw std::invalid_argument(
            "hearth relay: an allowlist of node keys needs CURVE (a relay secret key file)");
      }
      if (!options_.allowPlaintext && !isLoopbackEndpoint(options_.bindEndpoint)) {
        throw std::runtime_error(
            "hearth relay: refusing to bind " + options_.bindEndpoint +
            " without CURVE: it is not a loopback address, so the join token and all data would "
            "travel in clear. Give a relay secret key (hearth keygen; --curve-secret-key), or "
            "allow plaintext explicitly (--allow-plaintext)");
      }
      return;
    }
    const CurveKeyPair keys = readCurveSecretKeyFile(options_.curveSecretKeyFile);
    publicKey_ = keys.publicKey;
    keys_ = keys;
    if (!options_.allowKeysFile.empty()) {
      for (auto& key : readCurveAllowlistFile(options_.allowKeysFile)) {
        std::array<std::uint8_t, 32> raw{};
        zmq_z85_decode(raw.data(), key.c_str());
        allowed_.insert(std::string(raw.begin(), raw.end()));
      }
      // The ZAP handler must exist before the first handshake, so bind it
      // before the ROUTER. libzmq sends it a request for every handshake on
      // this context and waits for the reply.
      zap_ = zmq::socket_t(context_, zmq::socket_type::rep);
      zap_.set(zmq::sockopt::linger, 0);
      zap_.bind("inproc://zeromq.zap.01");
      socket_.set(zmq::sockopt::zap_domain, "hearth");
    }
    socket_.set(zmq::sockopt::curve_server, 1);
    socket_.set(zmq::sockopt::curve_secretkey, keys.secretKey);
  }

  // Answers one ZAP request (RFC 27): 200 for an allowlisted CURVE key, 400 otherwise.
  void serveZap() {
    std::vector<zmq::message_t> request;
    if (!zmq::recv_multipart(zap_, std::back_inserter(request), zmq::recv_flags::dontwait)) {
      return;
    }
    // version, request id, domain, address, identity, mechanism, credentials...
    const bool wellFormed = request.size() >= 6 && request[0].to_string() == "1.0";
    const bool curve = wellFormed && request[5].to_string() == "CURVE" && request.size() == 7;
    const bool admitted = curve && allowed_.count(request[6].to_string()) != 0;
    std::string keyText = "?";
    if (curve && request[6].size() == 32) {
      std::array<char, 41> z85{};
      zmq_z85_encode(z85.data(), static_cast<const std::uint8_t*>(request[6].data()), 32);
      keyText = z85.data();
    }
    if (!admitted) {
      bump([](ZmqRelayStats& s) { ++s.keysRefused; });
      log("hearth relay: refused CURVE key " + keyText +
          (wellFormed ? " from " + request[3].to_string() : std::string()) +
          ": not in the allowlist");
    }
    zmqwire::sendZapReply(zap_, request, admitted, "key not in the allowlist", keyText);
  }

  void log(const std::string& line) {
    if (options_.log) {
      options_.log(line);
    } else {
      std::cerr << line << std::endl;
    }
  }

  template <typename Fn>
  void bump(Fn fn) {
    std::lock_guard<std::mutex> lock(statsMu_);
    fn(stats_);
  }

  void malformed(const std::string& identity, const std::string& why) {
    bump([](ZmqRelayStats& s) { ++s.malformed; });
    log("hearth relay: dropped malformed message from " + printable(identity) + ": " + why);
  }

  // Sends frames to `identity`. Returns false if it is unroutable (its
  // connection is gone); the caller treats that as loss.
  bool sendTo(const std::string& identity, std::vector<zmq::message_t>& frames) {
    try {
      socket_.send(zmq::buffer(identity), zmq::send_flags::sndmore);
      for (std::size_t i = 0; i < frames.size(); ++i) {
        socket_.send(frames[i],
                     i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
      }
      return true;
    } catch (const zmq::error_t& e) {
      if (e.num() == EHOSTUNREACH) return false;
      throw;
    }
  }

  bool sendTo(const std::string& identity, zmq::message_t header) {
    std::vector<zmq::message_t> frames;
    frames.push_back(std::move(header));
    return sendTo(identity, frames);
  }

  void reject(const std::string& identity, const std::string& reason) {
    bump([](ZmqRelayStats& s) { ++s.rejected; });
    log("hearth relay: rejected " + printable(identity) + ": " + reason);
    std::vector<zmq::message_t> frames;
    frames.push_back(HeaderWriter(Type::kReject).message());
    frames.emplace_back(reason.data(), reason.size());
    sendTo(identity, frames);
  }

  int rankOf(const std::string& identity) const {
    auto it = byIdentity_.find(identity);
    return it == byIdentity_.end() ? -1 : it->second;
  }

  void handle(std::vector<zmq::message_t>& frames) {
    if (frames.empty()) return;
    const std::string identity = frames[0].to_string();
    Type type;
    std::string why;
    const auto* h =
        frames.size() > 1 ? static_cast<const std::uint8_t*>(frames[1].data()) : nullptr;
    if (!zmqwire::checkHeader(frames.data() + 1, frames.size() - 1, &type, &why)) {
      // A HELLO of another version gets a REJECT so the node learns why.
      if (h != nullptr && frames[1].size() >= 2 && h[0] != zmqwire::kVersion &&
          h[1] == static_cast<std::uint8_t>(Type::kHello)) {
        reject(identity, why);
        return;
      }
      malformed(identity, why);
      return;
    }
    const int rank = rankOf(identity);
    if (rank >= 0) slots_[rank].lastSeen = Clock::now();
    switch (type) {
      case Type::kHello:
        hello(identity, rank, frames);
        return;
      case Type::kPing:
        if (rank >= 0 && slots_[rank].alive) {
          if (!sendTo(identity, HeaderWriter(Type::kPong).message())) {
            markLost(rank, "unreachable");
          }
        }
        return;
      case Type::kLeave:
        if (rank >= 0) markLost(rank, "left");
        return;
      case Type::kData:
      case Type::kFence:
      case Type::kAck:
        data(identity, rank, frames, type);
        return;
      case Type::kProbeAck:
        if (rank >= 0) {
          probeAck(rank, frames[2]);
        } else {
          malformed(identity, "PROBE_ACK from a node that has not joined");
        }
        return;
      default:
        malformed(identity, "message type " + std::to_string(static_cast<int>(type)) +
                                " is not sent by nodes");
        return;
    }
  }

  void hello(const std::string& identity, int existing, std::vector<zmq::message_t>& frames) {
    if (existing >= 0) {
      malformed(identity,
                "HELLO from a node that already joined as rank " + std::to_string(existing));
      return;
    }
    if (frames[2].size() > zmqwire::kMaxStringBytes ||
        frames[3].size() > zmqwire::kMaxStringBytes) {
      malformed(identity, "HELLO with an oversized run id or token");
      return;
    }
    const NodeAddress address{frames[4].to_string(), frames[5].to_string(), frames[6].to_string(),
                              frames[7].to_string()};
    const std::string& advertised = address.advertised;
    if (advertised.size() > zmqwire::kMaxEndpointBytes ||
        (!address.key.empty() && address.key.size() != zmqwire::kCurveKeyBytes) ||
        address.local.size() > zmqwire::kMaxEndpointBytes ||
        (!address.local.empty() && !zmqwire::isDialableEndpoint(address.local)) ||
        address.host.size() > zmqwire::kMaxHostIdentityBytes) {
      malformed(identity, "HELLO with a malformed endpoint, key or host identity");
      return;
    }
    HeaderReader reader(frames[1]);
    const int requested = reader.i32();
    const std::uint64_t resume = reader.u64();
    if (frames[2].to_string() != options_.runId) {
      reject(identity, "unknown run id '" + frames[2].to_string() + "'");
      return;
    }
    if (frames[3].to_string() != options_.joinToken) {
      reject(identity, "bad join token");
      return;
    }
    if (resume != zmqwire::kNewNode && requested < 0) {
      malformed(identity, "HELLO resuming without its rank");
      return;
    }
    if (complete_) {
      readmit(identity, requested, resume, address);
      return;
    }
    int rank = -1;
    if (requested >= 0) {
      if (requested >= worldSize_) {
        reject(identity, "requested rank " + std::to_string(requested) + " is out of range [0, " +
                             std::to_string(worldSize_) + ")");
        return;
      }
      if (slots_[requested].joined) {
        reject(identity, "requested rank " + std::to_string(requested) + " is taken");
        return;
      }
      rank = requested;
    } else {
      for (int r = 0; r < worldSize_ && rank < 0; ++r) {
        // Leave explicitly requested ranks to their requesters only if free now.
        if (!slots_[r].joined) rank = r;
      }
      if (rank < 0) {
        reject(identity, "run is full");
        return;
      }
    }
    Slot& slot = slots_[rank];
    occupy(slot, identity, address);
    // A node resuming after a relay restart keeps its incarnation; the epoch
    // moves past it, so that a later replacement gets a new value.
    slot.incarnation = resume == zmqwire::kNewNode ? epoch_ : resume;
    if (resume != zmqwire::kNewNode && resume > epoch_) {
      epoch_ = resume;
      bump([this](ZmqRelayStats& s) { s.epoch = epoch_; });
    }
    byIdentity_[identity] = rank;
    ++joinedCount_;
    lastJoin_ = Clock::now();
    waitingLogged_ = false;
    bump([](ZmqRelayStats& s) { ++s.joined; });
    log("hearth relay: " + printable(identity) + " joined as rank " + std::to_string(rank) + " (" +
        std::to_string(joinedCount_) + "/" + sizeText() + ")");
    if (!sendWelcome(identity, rank)) {
      dropJoiner(rank);
      return;
    }
    if (!advertised.empty()) startProbe(rank);
    maybeCompleteWorld();
  }

  // HELLO once the world is complete: a new node may take the place of a
  // lost one (requested rank, or -1: the lowest lost rank). The epoch
  // increases, the rank gets a new incarnation and every member gets the new
  // MEMBERSHIP. A lost node cannot resume its old incarnation.
  void readmit(const std::string& identity, int requested, std::uint64_t resume,
               const NodeAddress& address) {
    if (requested >= worldSize_) {
      reject(identity, "requested rank " + std::to_string(requested) + " is out of range [0, " +
                           std::to_string(worldSize_) + ")" +
                           (minWorld_ != maxWorld_ ? " (the world was sealed at " +
                                                         std::to_string(worldSize_) + " nodes)"
                                                   : std::string()));
      return;
    }
    if (requested >= 0 && slots_[requested].alive) {
      reject(identity, "requested rank " + std::to_string(requested) + " is taken");
      return;
    }
    if (resume != zmqwire::kNewNode) {
      reject(identity, "rank " + std::to_string(requested) +
                           " was declared lost; a lost node cannot resume (join as a new node)");
      return;
    }
    int rank = requested;
    for (int r = 0; r < worldSize_ && rank < 0; ++r) {
      if (!slots_[r].alive) rank = r;
    }
    if (rank < 0) {
      reject(identity, "run is full (" + std::to_string(worldSize_) + " nodes)");
      return;
    }
    Slot& slot = slots_[rank];
    // The lost node's identity no longer names this rank: anything it still
    // sends is dropped as coming from a stranger.
    byIdentity_.erase(slot.identity);
    slot = Slot{};
    occupy(slot, identity, address);
    ++epoch_;
    slot.incarnation = epoch_;
    byIdentity_[identity] = rank;
    bump([this](ZmqRelayStats& s) {
      ++s.joined;
      ++s.readmitted;
      s.epoch = epoch_;
    });
    log("hearth relay: " + printable(identity) + " re-admitted as rank " + std::to_string(rank) +
        ", epoch " + std::to_string(epoch_));
    if (!sendWelcome(identity, rank)) {
      markLost(rank, "unreachable");
      return;
    }
    // Like a first-world node, a replacement with an endpoint is probed
    // first; the MEMBERSHIP that announces it (and lists the endpoint if it
    // passed) goes out when the probe is done (probeDone).
    if (!address.advertised.empty()) {
      startProbe(rank);
    } else {
      announceMembership();
    }
  }

  void announceMembership() {
    for (int r = 0; r < worldSize_; ++r) {
      if (slots_[r].alive) sendMembership(r);
    }
  }

  // A probe ended (answered or timed out): before the world is complete it
  // may complete it; after, it was a replacement's and its MEMBERSHIP is due.
  void probeDone() {
    if (complete_) {
      announceMembership();
    } else {
      maybeCompleteWorld();
    }
  }

  // WELCOME to the node now holding `rank`. False: it is unreachable.
  bool sendWelcome(const std::string& identity, int rank) {
    return sendTo(identity, HeaderWriter(Type::kWelcome)
                                .i32(rank)
                                .i32(worldSize_)
                                .u64(slots_[rank].incarnation)
                                .message());
  }

  std::string sizeText() const {
    return minWorld_ == maxWorld_ ? std::to_string(maxWorld_)
                                  : std::to_string(minWorld_) + ".." + std::to_string(maxWorld_);
  }

  // Seals the world: at once when maxWorld_ nodes joined; with an elastic
  // size also once at least minWorld_ joined and none arrived for joinGrace.
  // Called after every join and probe result, and on every loop turn.
  void maybeCompleteWorld() {
    if (complete_ || !probes_.empty()) return;
    if (joinedCount_ == maxWorld_) {
      completeWorld();
      return;
    }
    if (minWorld_ == maxWorld_ || joinedCount_ < minWorld_ ||
        Clock::now() - lastJoin_ < options_.joinGrace) {
      return;
    }
    // The world is ranks 0..size-1: the joined ranks up to the first gap.
    int size = 0;
    while (size < maxWorld_ && slots_[size].joined) ++size;
    if (size < minWorld_) {
      if (!waitingLogged_) {
        waitingLogged_ = true;
        log("hearth relay: " + std::to_string(joinedCount_) + " nodes joined, but rank " +
            std::to_string(size) + " is free and only " + std::to_string(size) +
            " ranks from 0 are taken (min " + std::to_string(minWorld_) +
            "): waiting for more nodes");
      }
      return;
    }
    for (int r = size; r < maxWorld_; ++r) {
      if (!slots_[r].joined) continue;
      const std::string identity = slots_[r].identity;
      log("hearth relay: rank " + std::to_string(r) + " is outside the world sealed at " +
          std::to_string(size) + " nodes");
      byIdentity_.erase(identity);
      slots_[r] = Slot{};
      --joinedCount_;
      reject(identity, "requested rank " + std::to_string(r) + " is outside the world, sealed at " +
                           std::to_string(size) + " nodes (ranks 0.." + std::to_string(size - 1) +
                           ")");
    }
    worldSize_ = size;
    slots_.resize(size);
    completeWorld();
  }

  void startProbe(int rank) {
    Slot& slot = slots_[rank];
    const std::string& endpoint = slot.advertised;
    if (!zmqwire::isDialableEndpoint(endpoint)) {
      log("hearth relay: rank " + std::to_string(rank) + " advertised '" + endpoint +
          "', which is not a dialable tcp://HOST:PORT endpoint: it stays relayed");
      return;
    }
    if (!publicKey_.empty() && slot.key.empty()) {
      log("hearth relay: rank " + std::to_string(rank) +
          " advertised an endpoint without a CURVE key: it stays relayed");
      return;
    }
    Probe probe;
    probe.rank = rank;
    std::random_device random;
    for (std::size_t i = 0; i < zmqwire::kNonceBytes; ++i) {
      probe.nonce += static_cast<char>(random() & 0xff);
    }
    probe.deadline = Clock::now() + options_.probeTimeout;
    try {
      probe.socket = std::make_unique<zmq::socket_t>(context_, zmq::socket_type::dealer);
      probe.socket->set(zmq::sockopt::linger, 0);
      probe.socket->set(zmq::sockopt::reconnect_ivl, 100);
      probe.socket->set(zmq::sockopt::maxmsgsize, std::int64_t{1024});
      if (!publicKey_.empty()) {
        probe.socket->set(zmq::sockopt::curve_serverkey, zmqwire::z85OfKey(slot.key));
        probe.socket->set(zmq::sockopt::curve_publickey, keys_.publicKey);
        probe.socket->set(zmq::sockopt::curve_secretkey, keys_.secretKey);
      }
      probe.socket->connect(endpoint);
      std::array<zmq::message_t, 2> frames{HeaderWriter(Type::kProbe).message(),
                                           zmq::message_t(probe.nonce.data(), probe.nonce.size())};
      // Queued until the connection is up (a DEALER queues on a connecting pipe).
      zmq::send_multipart(*probe.socket, frames, zmq::send_flags::dontwait);
    } catch (const zmq::error_t& e) {
      log("hearth relay: cannot probe rank " + std::to_string(rank) + " at " + endpoint + ": " +
          e.what() + ": it stays relayed");
      return;
    }
    log("hearth relay: probing rank " + std::to_string(rank) + " at " + endpoint);
    probes_.push_back(std::move(probe));
  }

  void probeAck(int rank, const zmq::message_t& nonce) {
    for (auto it = probes_.begin(); it != probes_.end(); ++it) {
      if (it->rank != rank || nonce.to_string() != it->nonce) continue;
      slots_[rank].reachable = true;
      bump([](ZmqRelayStats& s) { ++s.probesOk; });
      log("hearth relay: rank " + std::to_string(rank) + " is reachable at " +
          slots_[rank].advertised);
      probes_.erase(it);
      probeDone();
      return;
    }
    // A stale or foreign nonce (e.g. a PROBE that a stranger relayed): ignored.
  }

  void checkProbes() {
    const auto now = Clock::now();
    bool changed = false;
    for (auto it = probes_.begin(); it != probes_.end();) {
      if (now < it->deadline) {
        ++it;
        continue;
      }
      bump([](ZmqRelayStats& s) { ++s.probesFailed; });
      log("hearth relay: rank " + std::to_string(it->rank) + " did not answer the probe at " +
          slots_[it->rank].advertised + " within " + std::to_string(options_.probeTimeout.count()) +
          " ms: it stays relayed");
      it = probes_.erase(it);
      changed = true;
    }
    if (changed) probeDone();
  }

  // A node that vanished before the world was complete frees its slot.
  void dropJoiner(int rank) {
    Slot& slot = slots_[rank];
    log("hearth relay: rank " + std::to_string(rank) + " vanished before the world was complete");
    probes_.erase(std::remove_if(probes_.begin(), probes_.end(),
                                 [&](const Probe& p) { return p.rank == rank; }),
                  probes_.end());
    byIdentity_.erase(slot.identity);
    slot = Slot{};
    --joinedCount_;
  }

  void completeWorld() {
    complete_ = true;
    bump([this](ZmqRelayStats& s) {
      s.worldComplete = true;
      s.worldSize = worldSize_;
    });
    log("hearth relay: world complete (" + std::to_string(worldSize_) + " nodes)");
    for (int r = 0; r < worldSize_; ++r) sendMembership(r);
  }

  void sendMembership(int r) {
    std::vector<zmq::message_t> frames;
    frames.push_back(HeaderWriter(Type::kMembership).u64(epoch_).i32(worldSize_).message());
    std::string alive(worldSize_, '\0');
    std::vector<zmqwire::DirectoryEntry> directory(worldSize_);
    for (int p = 0; p < worldSize_; ++p) {
      alive[p] = slots_[p].alive ? 1 : 0;
      if (slots_[p].reachable) directory[p].endpoint = slots_[p].advertised;
      if (!publicKey_.empty()) directory[p].key = slots_[p].key;
      directory[p].local = slots_[p].local;
      directory[p].host = slots_[p].host;
    }
    frames.emplace_back(alive.data(), alive.size());
    const std::string encoded = zmqwire::encodeDirectory(directory);
    frames.emplace_back(encoded.data(), encoded.size());
    std::vector<std::uint64_t> incarnations(worldSize_);
    for (int p = 0; p < worldSize_; ++p) incarnations[p] = slots_[p].incarnation;
    const std::string encodedIncarnations = zmqwire::encodeIncarnations(incarnations);
    frames.emplace_back(encodedIncarnations.data(), encodedIncarnations.size());
    if (!sendTo(slots_[r].identity, frames)) markLost(r, "unreachable");
  }

  // Forwards DATA (payload moved, not copied), FENCE or ACK, rewriting the
  // peer field from destination to source.
  void data(const std::string& identity, int src, std::vector<zmq::message_t>& frames, Type type) {
    if (src < 0 || !complete_) {
      malformed(identity, src < 0 ? "DATA from a node that has not joined"
                                  : "DATA before the world is complete");
      return;
    }
    if (!slots_[src].alive) return;  // already declared lost: ignore its traffic
    HeaderReader reader(frames[1]);
    const int dst = reader.i32();
    if (dst < 0 || dst >= worldSize_) {
      malformed(identity, "DATA to rank " + std::to_string(dst) + " out of range");
      return;
    }
    if (!slots_[dst].alive) return;  // the sender got (or will get) PEER_LOST for dst
    const std::uint64_t tagOrNext = reader.u64();
    const std::uint64_t seq = type == Type::kData ? reader.u64() : 0;
    if (reader.u64() != slots_[dst].incarnation) {
      // Sent to an earlier node of that rank, before the sender learned that
      // it was replaced: never deliver it to the new one.
      bump([](ZmqRelayStats& s) { ++s.stale; });
      return;
    }
    const std::uint64_t srcIncarnation = slots_[src].incarnation;
    std::vector<zmq::message_t> out;
    if (type != Type::kData) {
      out.push_back(HeaderWriter(type).i32(src).u64(tagOrNext).u64(srcIncarnation).message());
    } else {
      out.push_back(
          HeaderWriter(Type::kData).i32(src).u64(tagOrNext).u64(seq).u64(srcIncarnation).message());
      out.push_back(std::move(frames[2]));  // zero-copy forward of the payload
    }
    if (sendTo(slots_[dst].identity, out)) {
      if (type == Type::kData) bump([](ZmqRelayStats& s) { ++s.forwarded; });
      if (type == Type::kAck) bump([](ZmqRelayStats& s) { ++s.forwardedAcks; });
    } else {
      markLost(dst, "unreachable");
    }
  }

  void checkHeartbeats() {
    const auto now = Clock::now();
    for (int r = 0; r < worldSize_; ++r) {
      Slot& slot = slots_[r];
      if (!slot.alive || now - slot.lastSeen <= options_.heartbeatTimeout) continue;
      if (!complete_) {
        dropJoiner(r);
      } else {
        markLost(
            r, "silent for more than " + std::to_string(options_.heartbeatTimeout.count()) + " ms");
      }
    }
  }

  // Declares a member lost; the announcement happens in processLosses so that
  // a failing announcement can itself declare another loss without recursion.
  void markLost(int rank, const std::string& reason) {
    Slot& slot = slots_[rank];
    if (!slot.alive) return;
    if (!complete_) {
      dropJoiner(rank);
      return;
    }
    slot.alive = false;
    ++epoch_;
    bump([this](ZmqRelayStats& s) {
      ++s.lost;
      s.epoch = epoch_;
    });
    log("hearth relay: rank " + std::to_string(rank) + " lost (" + reason + "), epoch " +
        std::to_string(epoch_));
    losses_.push_back({rank, epoch_, reason});
  }

  void processLosses() {
    while (!losses_.empty()) {
      Loss loss = losses_.front();
      losses_.pop_front();
      const std::string reason =
          "rank " + std::to_string(loss.rank) + " lost at the relay: " + loss.reason;
      for (int r = 0; r < worldSize_; ++r) {
        if (!slots_[r].alive) continue;
        std::vector<zmq::message_t> frames;
        frames.push_back(HeaderWriter(Type::kPeerLost).i32(loss.rank).u64(loss.epoch).message());
        frames.emplace_back(reason.data(), reason.size());
        if (!sendTo(slots_[r].identity, frames)) markLost(r, "unreachable");
      }
    }
  }

  struct Loss {
    int rank;
    std::uint64_t epoch;
    std::string reason;
  };

  ZmqRelayOptions options_;
  zmq::context_t context_;
  zmq::socket_t socket_;
  zmq::socket_t zap_;              // REP on inproc://zeromq.zap.01; only with an allowlist
  std::set<std::string> allowed_;  // raw 32-byte public keys
  std::string publicKey_;
  CurveKeyPair keys_;  // the relay's own keypair (probes are CURVE clients with it)
  std::string endpoint_;
  std::atomic<bool> stopRequested_{false};
  std::thread thread_;

  // Owned by the serving thread.
  std::vector<Slot> slots_;
  std::map<std::string, int> byIdentity_;
  int joinedCount_ = 0;
  bool complete_ = false;
  int minWorld_ = 1;
  int maxWorld_ = 1;
  // The range of ranks: maxWorld_ until the world is sealed, then its size.
  int worldSize_ = 1;
  Clock::time_point lastJoin_ = Clock::now();
  bool waitingLogged_ = false;
  std::uint64_t epoch_ = 0;
  std::deque<Loss> losses_;
  std::vector<Probe> probes_;

  mutable std::mutex statsMu_;
  ZmqRelayStats stats_;
};

ZmqRelay::ZmqRelay(ZmqRelayOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
ZmqRelay::~ZmqRelay() = default;
std::string ZmqRelay::endpoint() const {
  return impl_->endpoint();
}
std::string ZmqRelay::publicKey() const {
  return impl_->publicKey();
}
void ZmqRelay::run() {
  impl_->run();
}
void ZmqRelay::requestStop() {
  impl_->requestStop();
}
void ZmqRelay::start() {
  impl_->start();
}
void ZmqRelay::stop() {
  impl_->stop();
}
ZmqRelayStats ZmqRelay::stats() const {
  return impl_->stats();
}

}  // namespace hearth
