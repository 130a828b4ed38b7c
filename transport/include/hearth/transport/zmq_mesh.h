// hearth/transport/zmq_mesh.h — factory for the ZeroMQ Mesh backend, relayed
// path: every node connects out to a hearth relay (zmq_relay.h) with one
// DEALER socket, joins the run, and all traffic goes through the relay.
// Protocol: docs/transport_protocol.md.
//
// Contract (in addition to mesh.h)
// - connectZmqMesh() blocks until the relay has admitted this node and the
//   world is complete (MEMBERSHIP), or options.joinTimeout elapsed (throws
//   MeshTimeout, peer -1). A relay that refuses the node (wrong run id or
//   token, rank taken, run full) makes it throw MeshRejected whose what()
//   carries the relay's reason. Bad options throw MeshUsageError.
// - Threading: each Mesh owns one I/O thread, the only user of its socket;
//   caller threads hand it work through a mutex-guarded queue and an eventfd.
//   Every Mesh method is thread-safe and non-blocking except the blocking
//   send()/recv() and MeshRequest::wait(), which honour their timeouts.
// - A send completes when the I/O thread has handed the message to libzmq
//   (payload not copied: libzmq takes the buffer). Sends to self never touch
//   the network. High-water marks are 0 (unbounded) on both ends, so libzmq
//   never drops or refuses a frame for queue space; memory is the bound.
// - Heartbeats: the node sends PING every heartbeatInterval; the relay
//   answers PONG. No traffic from the relay for heartbeatTimeout means the
//   relay is gone: every peer is then lost (MeshPeerLost naming the peer,
//   "relay lost" in what()) and epoch() increases. The relay declares a silent
//   node lost after its own heartbeatTimeout and tells the others
//   (PEER_LOST), which fail calls involving it with MeshPeerLost.
// - A malformed frame from the relay breaks the mesh: every pending and future
//   call fails with MeshProtocolError.
// - abort() / the destructor: pending calls fail with MeshAborted; the node
//   sends LEAVE (unless announceLeave is false) and closes its socket. The
//   destructor joins the I/O thread (bounded by ~linger, 200 ms).
// - CURVE (docs/security.md): with relayPublicKey set, the DEALER is a CURVE
//   client of the relay: traffic is encrypted and the relay is authenticated.
//   The node's own keypair comes from curveSecretKeyFile, or is generated
//   afresh per connection when that is empty (enough unless the relay has an
//   allowlist). A failed handshake with the relay while joining ends the join
//   at once with MeshRejected (peer -1) naming the reason: the relay's
//   allowlist refused this node's key (ZAP status 400), the relay public key
//   is wrong or the relay runs without CURVE, or one side is plaintext and
//   the other CURVE (mechanism mismatch). It is detected with a socket
//   monitor on the DEALER (ZMQ_EVENT_HANDSHAKE_FAILED_*), typically within
//   tens of milliseconds, instead of libzmq retrying silently until
//   joinTimeout.
// - Plaintext policy: a relayEndpoint that is not loopback
//   (isLoopbackEndpoint) without relayPublicKey throws MeshUsageError unless
//   allowPlaintext is set. A malformed relayPublicKey or an unreadable,
//   malformed or group/world-readable secret key file throws MeshUsageError
//   naming the file.
// - Not yet: reconnect with backoff, direct links (see the protocol doc).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "hearth/transport/mesh.h"

namespace hearth {

struct ZmqMeshOptions {
  // The relay, e.g. "tcp://127.0.0.1:5555".
  std::string relayEndpoint;
  std::string runId;
  std::string joinToken;
  // -1: the relay assigns ranks in join order.
  int requestedRank = -1;
  Millis joinTimeout{30000};
  Millis heartbeatInterval{500};
  Millis heartbeatTimeout{5000};
  // Largest message accepted from the relay (ZMQ_MAXMSGSIZE).
  std::int64_t maxMessageBytes = std::int64_t{4} << 30;
  // abort() tells the relay with LEAVE, so peers learn of it at once. false:
  // the node just goes silent, as after kill -9 (for tests of heartbeat loss).
  bool announceLeave = true;
  // The relay's CURVE public key (Z85, 40 characters). Empty: plaintext.
  std::string relayPublicKey;
  // This node's CURVE secret key file (curve_keys.h). Empty: an ephemeral
  // keypair. Ignored without relayPublicKey.
  std::string curveSecretKeyFile;
  // Permit plaintext to a relay that is not on loopback.
  bool allowPlaintext = false;
};

// Joins the run at options.relayEndpoint; see the contract above.
std::unique_ptr<Mesh> connectZmqMesh(const ZmqMeshOptions& options);

}  // namespace hearth
