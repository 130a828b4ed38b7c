// hearth/transport/zmq_mesh.h — factory for the ZeroMQ Mesh backend: every
// node connects out to a hearth relay (zmq_relay.h) with one DEALER socket and
// joins the run; pairs of nodes where one end accepts connections from outside
// talk over a direct link, the others through the relay.
// Protocol: docs/transport_protocol.md.
//
// Contract (in addition to mesh.h)
// - connectZmqMesh() blocks until the relay has admitted this node, the
//   world is complete (MEMBERSHIP) and every planned direct link is up or has
//   failed (at most directConnectTimeout), or options.joinTimeout elapsed
//   (throws MeshTimeout, peer -1). A relay that refuses the node (wrong run id or
//   token, rank taken, run full) makes it throw MeshRejected whose what()
//   carries the relay's reason. Bad options throw MeshUsageError.
// - World size: worldSize() is the size in the first MEMBERSHIP (the world
//   the relay sealed). WELCOME's size is only an upper bound: with an elastic
//   relay (min:max) it is max, and the world may be sealed smaller.
// - Threading: each Mesh owns one I/O thread, the only user of its socket;
//   caller threads hand it work through a mutex-guarded queue and an eventfd.
//   Every Mesh method is thread-safe and non-blocking except the blocking
//   send()/recv() and MeshRequest::wait(), which honour their timeouts.
// - A send completes when the I/O thread has handed the message to libzmq
//   (payload not copied: libzmq takes the buffer). Sends to self never touch
//   the network. High-water marks are 0 (unbounded) on both ends, so libzmq
//   never drops or refuses a frame for queue space; memory is the bound.
// - Process-wide side effect: the first connectZmqMesh() (and the first
//   ZmqRelay::start()) raises glibc's M_MMAP_THRESHOLD to 32 MiB and
//   M_TRIM_THRESHOLD to 64 MiB, so that freed message buffers are reused
//   instead of being faulted in afresh for every received chunk (up to ~64
//   MiB of freed memory per malloc arena stays mapped). Skipped when the
//   environment sets glibc malloc options itself or HEARTH_MALLOC_TUNING=0
//   (transport/zmq/message_buffer_malloc.h); rank 0 logs the decision.
// - Heartbeats: the node sends PING every heartbeatInterval; the relay
//   answers PONG. No traffic from the relay for heartbeatTimeout, or its
//   connection closing (socket monitor), means the relay is gone.
// - Relay restarts: once joined, a node that loses the relay keeps its rank,
//   its peers and its direct links (which go on working) and reconnects on a
//   fresh DEALER (ZMQ_RECONNECT_IVL 100 ms doubling to ZMQ_RECONNECT_IVL_MAX
//   2 s), sending HELLO with requestedRank = its rank (and its incarnation:
//   a relay that has declared it lost refuses to let it resume), for up to
//   relayReconnectTimeout (a new connection every heartbeatTimeout until a
//   WELCOME). A relay restarted at the same endpoint with the same run id,
//   token and world size rebuilds the membership from the re-joining nodes;
//   on its MEMBERSHIP the node resumes and sends each relayed peer a FENCE,
//   so frames lost inside the old relay surface as MeshPeerLost (see
//   "Ordering across paths"), not as silence. Meanwhile sends complete (their
//   frames wait on the node) and receives wait within their own timeouts. A
//   relay that is not back within relayReconnectTimeout (or that REJECTs the
//   node, e.g. the old relay still holding its rank), or any loss with
//   relayReconnectTimeout = 0: every peer is lost (MeshPeerLost naming the
//   peer, "relay lost" in what()) and epoch() increases. A node that has not
//   joined yet does not reconnect. The relay declares a silent
//   node lost after its own heartbeatTimeout and tells the others
//   (PEER_LOST), which fail calls involving it with MeshPeerLost.
// - Re-admission (epochs): once the world is complete, a new node may take a
//   lost rank: connectZmqMesh with requestedRank = that rank, or -1 = the
//   lowest lost rank (a live rank: MeshRejected "requested rank R is taken";
//   no lost rank: "run is full"). The relay increments its epoch, gives the
//   rank a new incarnation and sends every member the new MEMBERSHIP. On the
//   members: calls pending on the old node have failed with MeshPeerLost
//   (PEER_LOST came first); its unreceived messages are dropped; sequence
//   numbers restart for the pair; isPeerAlive(rank) is true again and later
//   calls go to the new node. Frames of (or addressed to) the old node are
//   never delivered as the new one's: every DATA/FENCE carries the
//   incarnation, checked by the relay and the receiver. A replacement's
//   pairs get direct links by the same rule as the first world's (the relay
//   probes its endpoint before announcing it). epoch() is the number of
//   membership changes this rank has seen: it increases on each loss (relay
//   PEER_LOST, a broken stream, the relay lost) and on each replacement
//   (max(epoch + 1, relay epoch)); it equals the relay's epoch on every rank
//   that saw only the relay's announcements. The replacement's epoch() starts
//   at the relay's epoch. Collective sequences are not carried across a
//   replacement: start new ones (fresh MeshCollectives, new tagBase) on all
//   ranks after it.
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
// - Direct links: with listenEndpoint set, the node binds a ROUTER there and
//   advertises advertiseEndpoint (or the bound endpoint) in HELLO. The relay
//   probes it from outside (PROBE with a nonce that must come back over this
//   node's own relay connection) and lists, in MEMBERSHIP, each node's
//   endpoint if the probe passed (plus its CURVE public key with CURVE). For
//   each pair: if both ends passed, the lower rank dials the higher; if one
//   did, the other dials it; else the pair stays relayed. The dialer sends
//   DIRECT_HELLO (rank, incarnation, run id, join token); the listener admits
//   only the current node of a rank of this run that is expected to dial it (with CURVE: whose
//   client key is that rank's key in MEMBERSHIP) and answers DIRECT_WELCOME. With CURVE the
//   listener is a CURVE server with this node's keypair and the dialer authenticates it by the key
//   from MEMBERSHIP. Mesh::pathTo(peer) says "self", "direct" or "relay".
// - Link failure: a direct link that is silent for heartbeatTimeout (PINGs
//   both ways every heartbeatInterval, plus ZMTP heartbeats), whose
//   connection closes (socket monitor) or whose peer is lost is marked down
//   for good and logged; frames libzmq had not taken yet, and all later
//   ones, go through the relay, followed by a FENCE telling the peer how many
//   frames were sent. The dialer of a failed link dials again 1 s later,
//   then after twice the previous wait after each failed attempt (at most
//   30 s), while the peer is alive and not replaced; the listener takes the
//   new connection (a dial while it still thinks the old link is up closes
//   the old one), and traffic goes direct again. Frames received on a link
//   before it went down are delivered. PEER_LOST for a peer that has had a
//   direct link takes effect once that link is closed and drained (at most
//   heartbeatTimeout later), so frames it sent just before leaving are not
//   overtaken; a leaving node lingers 200 ms on its direct sockets too.
//   Before it leaves (destructor or abort() of a joined node), a node waits
//   until every live peer has acknowledged every frame sent to it, at most
//   max(200 ms, heartbeatInterval): a socket closed with unread inbound bytes
//   resets its connection, which would take frames not yet read by the peer
//   with it. Receivers acknowledge within 20 ms when frames are owed an ACK.
// - Ordering across paths: every DATA frame carries a per-(sender, receiver)
//   sequence number; the receiver delivers strictly in sequence order and
//   holds at most 65536 early frames per sender. A gap (frames lost with a
//   failed link) that is not filled within heartbeatTimeout, more early frames
//   than that, or a duplicate makes the sender lost for this rank: pending
//   and future calls involving it fail with MeshPeerLost naming it ("frames
//   A..B from rank P never arrived ...") and epoch() increases. Never a
//   silent skip, never a hang.
// - Plaintext policy for the listener: a listenEndpoint that is not loopback
//   without CURVE throws MeshUsageError unless allowPlaintext is set; so do a
//   listenEndpoint that is not tcp://, an advertiseEndpoint that is not a
//   dialable tcp://HOST:PORT, and a wildcard listener without one.
#pragma once

#include <cstdint>
#include <functional>
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
  // When the relay connection is lost after joining (closed, or silent for
  // heartbeatTimeout): how long to keep reconnecting and re-HELLOing with
  // this node's rank before every peer is declared lost. 0: at once.
  Millis relayReconnectTimeout{30000};
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
  // Permit plaintext to a relay that is not on loopback (and plaintext
  // direct links on a listenEndpoint that is not loopback).
  bool allowPlaintext = false;

  // Direct links. Empty: this node accepts none (it still dials peers that
  // accept). Else a ROUTER is bound here, e.g. "tcp://0.0.0.0:30000" or
  // "tcp://127.0.0.1:0", and advertised to the relay, which probes it.
  std::string listenEndpoint;
  // What others dial, e.g. "tcp://198.18.0.12:30000" (a router's forwarded
  // port). Empty: the listener's own resolved endpoint, which must then not
  // be a wildcard address.
  std::string advertiseEndpoint;
  // How long a planned direct link may take to come up while joining; a
  // pair whose link is not up by then stays relayed.
  Millis directConnectTimeout{3000};
  // Plaintext direct links carry DATA on a bulk lane: a TCP connection of
  // their own next to the ZeroMQ socket, read and written by the mesh's I/O
  // thread (docs/transport_protocol.md "Bulk lanes"). The listener's lane
  // port is chosen by the kernel on the listener's host and offered over the
  // link; where it cannot be reached (e.g. only the ZeroMQ port is forwarded)
  // the link carries everything over ZeroMQ. false: never (for comparison).
  bool bulkLanes = true;
  // The port the bulk-lane listener binds (on the direct-link listener's
  // host) and offers: 0, the kernel picks one (fine on a LAN, or where the
  // router forwards every port). Behind a router that forwards only chosen
  // ports, forward this one too, to the same port number; where it cannot be
  // bound (in use), links carry DATA over ZeroMQ alone (logged).
  int lanePort = 0;
  // A bulk lane between two ranks on one host does not pace: where the
  // system's congestion control is BBR, such a lane uses cubic (else reno);
  // lanes to other hosts keep BBR (see BulkLane::dial in
  // transport/zmq/bulk_lane.h). false: every lane keeps the system's choice.
  bool unpacedLocalLanes = true;
  // A bulk lane between two processes on one host carries large DATA bodies
  // (64 KiB and more) by cross-memory read: the receiver copies them once,
  // straight out of the sender's memory (process_vm_readv), instead of twice
  // through the kernel's socket buffers. Each side proves its pid first
  // (docs/transport_protocol.md "Cross-memory reads"); where the kernel
  // forbids such reads (another user, Yama, seccomp) the lane carries bytes.
  // The sender keeps such a body until the peer acknowledges it: a lent send
  // (isendFrom) finishes on that ACK. false: lanes always carry bytes.
  bool crossMemoryLanes = true;
  // Members on one host (same boot, same network namespace) link directly
  // over loopback, whether or not the relay's probe reaches them: a node
  // without listenEndpoint listens on 127.0.0.1 for them (not advertised,
  // not probed); HELLO and MEMBERSHIP carry each node's host identity and
  // same-host endpoint (docs/transport_protocol.md "Direct links"). For the
  // workers of one multi-GPU machine, with cross-memory lanes between them.
  // Off here (so a plain ZmqMeshOptions keeps unreachable nodes relayed, as
  // the tests expect); hearth::init turns it on (HEARTH_SAME_HOST_LINKS=0:
  // off).
  bool sameHostLinks = false;
  // This host's identity for sameHostLinks; empty: from the kernel (boot id
  // and network namespace). Tests set it to make one process several hosts.
  std::string hostIdentity;
  // Receives one line per event (direct link up/down, refused dialers,
  // frames lost with a link). Empty: lines go to stderr.
  std::function<void(const std::string&)> log;
};

// Joins the run at options.relayEndpoint; see the contract above.
std::unique_ptr<Mesh> connectZmqMesh(const ZmqMeshOptions& options);

// What carries DATA from `mesh` to `peer` now: "none" (no direct link, or a
// direct link over ZeroMQ alone), "bytes" (the link's bulk lane) or
// "cross-memory" (a bulk lane whose bodies the peer reads out of this
// process). Lanes come up shortly after their links. Throws MeshUsageError
// for a Mesh that is not zmq or a rank out of range.
std::string zmqLaneTo(const Mesh& mesh, int peer);

// Test hooks (tests only). Throw MeshUsageError for a Mesh that is not zmq.
namespace zmqtesting {
// Closes every direct link of `mesh` and its listener, as if the network path
// had failed; later frames go through the relay (a peer that dials `mesh`
// again finds no listener).
void breakDirectLinks(Mesh& mesh);
// Closes every direct link of `mesh` but keeps its listener, as if the
// connections had dropped: traffic goes through the relay until the dialer
// of each pair dials again (about a second later).
void dropDirectConnections(Mesh& mesh);
// The next frame to `peer` skips one sequence number, as if a frame had been
// lost with a failed link: `peer` must report the gap as a typed error.
void skipSequenceNumber(Mesh& mesh, int peer);
}  // namespace zmqtesting

}  // namespace hearth
