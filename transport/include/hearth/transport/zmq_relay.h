// hearth/transport/zmq_relay.h — the hearth relay: the rendezvous of one run
// and the forwarder of its frames (protocol: docs/transport_protocol.md).
// Nodes connect out to it (DEALER -> ROUTER); nothing listens on a node.
//
// Contract
// - The constructor binds the ROUTER socket (port 0 -> an ephemeral port;
//   endpoint() reports the resolved address) and throws std::runtime_error
//   naming the endpoint when it cannot bind. It serves nothing until run() or
//   start().
// - A node joins with HELLO(run id, join token, requested rank or -1). A wrong
//   run id or token, a taken or out-of-range rank, an unsupported version, or
//   a full run is answered with REJECT naming the reason. Ranks are assigned
//   in join order unless requested. When worldSize nodes have joined, every
//   node gets MEMBERSHIP (epoch 0); from then on DATA frames are forwarded.
// - Elastic size (maxWorldSize > 0): the relay admits up to maxWorldSize
//   nodes (ranks in join order, or requested ranks below maxWorldSize; WELCOME
//   carries maxWorldSize as an upper bound) and seals the world as soon as
//   maxWorldSize have joined, or once at least minWorldSize have joined and
//   no node arrived for joinGrace. The sealed size is the number of joined
//   ranks 0..N-1 without a gap; a node holding a requested rank >= N is
//   refused with REJECT at sealing, and the world does not seal while that
//   prefix is below minWorldSize. MEMBERSHIP carries N, from which nodes take
//   their world size. Below minWorldSize nothing is sealed: the nodes wait
//   (bounded by their joinTimeout). After sealing the world is fixed at N and
//   behaves as a plain one (a full run is refused, lost ranks re-admitted,
//   requested ranks >= N refused).
// - Direct links: a node that advertises an endpoint in HELLO is probed from
//   the relay's side with a short-lived DEALER (a CURVE client of the node's
//   key with CURVE) that sends PROBE(nonce); the probe passes when the node
//   returns that nonce over its own relay connection (PROBE_ACK) within
//   probeTimeout. MEMBERSHIP waits for every probe and lists each node's
//   endpoint if it passed (and its key with CURVE); stats() counts probes.
//   DATA forwarded by the relay is counted in stats().forwarded, ACKs in
//   stats().forwardedAcks; direct traffic (DATA and ACK) never reaches the relay.
// - Restarts: the relay keeps no state on disk. Restarted with the same run
//   id, token and world size at the same endpoint, it admits the nodes that
//   re-HELLO with their old ranks (zmq_mesh.h: relayReconnectTimeout) and
//   announces the rebuilt membership as on a first join.
// - A member that sends nothing for heartbeatTimeout, or sends LEAVE, is lost:
//   the epoch increases and every other member gets PEER_LOST(rank, epoch).
//   A node that vanishes before the world is complete just frees its slot.
// - Re-admission: once the world is complete, a new node (right run id and
//   token/key) may take a lost rank: requestedRank = that rank, or -1 = the
//   lowest lost rank. A live rank is refused ("requested rank R is taken"),
//   a world without lost ranks too ("run is full"), and so is a lost node
//   that tries to resume its old place. The epoch increases, the rank gets a
//   new incarnation (= that epoch), and every member gets the new
//   MEMBERSHIP. DATA/FENCE carry the incarnation of the destination; frames
//   addressed to the replaced node are dropped (stats().stale), and the
//   lost node's identity no longer maps to the rank. A replacement with an
//   endpoint is probed first; the MEMBERSHIP that announces it goes out when
//   the probe is done and lists the endpoint if it passed (its pairs then
//   get direct links like the first world's).
// - Malformed frames are dropped with one log line; the relay keeps serving.
// - Threading: run() serves on the calling thread until requestStop();
//   start() serves on a background thread and stop() (or the destructor)
//   stops and joins it. requestStop() may be called from any thread and from a
//   signal handler (it only stores to a lock-free atomic); the loop notices it
//   within ~50 ms. stats() and endpoint() may be called from any thread.
// - High-water marks are 0 (unbounded): the relay never drops a frame for
//   lack of queue space; memory is the bound. ROUTER_MANDATORY is on, so a
//   frame to a node whose connection is gone is an error, handled as loss.
// - CURVE (docs/security.md): with curveSecretKeyFile the ROUTER is a CURVE
//   server; every connection is encrypted and nodes must know the relay's
//   public key. With allowKeysFile as well, a ZAP handler (served by the
//   relay's thread on inproc://zeromq.zap.01) admits only the listed node
//   public keys; others fail the handshake and never reach HELLO. The join
//   token is checked as well in every mode.
// - Plaintext policy: binding an endpoint that is not loopback
//   (isLoopbackEndpoint) without curveSecretKeyFile throws
//   std::runtime_error unless allowPlaintext is set. Key file errors throw
//   CurveKeyError (a std::runtime_error) naming the file.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace hearth {

struct ZmqRelayOptions {
  std::string bindEndpoint = "tcp://127.0.0.1:0";
  std::string runId;
  // Plain size: the world is sealed when exactly this many nodes joined. Used
  // when maxWorldSize is 0.
  int worldSize = 1;
  // Elastic size (see the contract above): enabled by maxWorldSize > 0; then
  // 1 <= minWorldSize <= maxWorldSize is REQUIRED and worldSize is ignored.
  int minWorldSize = 0;
  int maxWorldSize = 0;
  // With an elastic size: how long the relay waits for another node, once
  // minWorldSize have joined, before it seals a world below maxWorldSize.
  std::chrono::milliseconds joinGrace{5000};
  std::string joinToken;
  std::chrono::milliseconds heartbeatTimeout{5000};
  // Largest accepted message (ZMQ_MAXMSGSIZE on the socket); a peer that
  // sends a bigger one is disconnected by libzmq.
  std::int64_t maxMessageBytes = std::int64_t{4} << 30;
  // The relay's CURVE secret key file (curve_keys.h). Empty: no CURVE.
  std::string curveSecretKeyFile;
  // Node public keys admitted (one Z85 key per line, '#' comments). Needs
  // curveSecretKeyFile. Empty: any node key (the join token still applies).
  std::string allowKeysFile;
  // Permit a plaintext bind on a non-loopback endpoint.
  bool allowPlaintext = false;
  // How long the probe of a node's advertised endpoint may take (direct
  // links). The world is announced (MEMBERSHIP) only once every probe has
  // answered or timed out, so this bounds the extra join time.
  std::chrono::milliseconds probeTimeout{2000};
  // Receives one line per event (join, reject, loss, malformed frame).
  // Empty: lines go to stderr.
  std::function<void(const std::string&)> log;
};

struct ZmqRelayStats {
  std::uint64_t joined = 0;
  std::uint64_t rejected = 0;
  std::uint64_t forwarded = 0;
  std::uint64_t forwardedAcks = 0;  // ACK frames forwarded (relayed pairs only)
  std::uint64_t malformed = 0;
  std::uint64_t lost = 0;
  std::uint64_t epoch = 0;
  // CURVE handshakes refused by the allowlist.
  std::uint64_t keysRefused = 0;
  // Probes of advertised endpoints that succeeded / failed (timed out).
  std::uint64_t probesOk = 0;
  std::uint64_t probesFailed = 0;
  // New nodes admitted in place of lost ones (each also counts in joined).
  std::uint64_t readmitted = 0;
  // DATA/FENCE dropped because they were addressed to a replaced node.
  std::uint64_t stale = 0;
  bool worldComplete = false;
  // The sealed world size (0 until the world is complete).
  int worldSize = 0;
};

class ZmqRelay {
 public:
  // REQUIRES: options.worldSize >= 1, or with maxWorldSize > 0:
  // 1 <= minWorldSize <= maxWorldSize, and joinGrace >= 0 (else
  // std::invalid_argument). Binds; throws std::runtime_error.
  explicit ZmqRelay(ZmqRelayOptions options);
  ~ZmqRelay();
  ZmqRelay(const ZmqRelay&) = delete;
  ZmqRelay& operator=(const ZmqRelay&) = delete;

  // The bound endpoint, e.g. "tcp://127.0.0.1:41234".
  std::string endpoint() const;
  // The relay's CURVE public key (Z85), or "" without CURVE.
  std::string publicKey() const;
  // Serves until requestStop(). Call at most once, and not with start().
  void run();
  void requestStop();
  // run() on a background thread / stop and join it.
  void start();
  void stop();
  ZmqRelayStats stats() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hearth
