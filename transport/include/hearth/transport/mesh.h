// hearth/transport/mesh.h — point-to-point messaging between the ranks of one
// run: a rank's view of its peers. Backends: inproc (threads in one process,
// with fault injection; inproc_mesh.h) and zmq (zmq_mesh.h). Collectives are built
// on top of this interface; it knows nothing of torch and moves byte buffers.
//
// Contract
// - One Mesh object is one rank. rank() is in [0, worldSize()). Messages are
//   byte buffers (possibly empty) addressed by (peer, tag). A rank may send to
//   itself.
// - Ordering: messages from one sender to one receiver with one tag are
//   received in the order the sends were issued. Different tags, and different
//   senders, are independent: a recv on tag B never waits for tag A traffic.
//   Several recvs posted for the same (peer, tag) are matched in posting order.
// - Sends are eager: a send completes once the message has been accepted for
//   delivery to the peer (inproc: placed in its mailbox); it does not wait for
//   a matching recv. The message buffer is moved in; the caller keeps nothing.
//   A received MeshBytes (mesh_bytes.h) may wrap the backend's own receive
//   buffer (zmq, large messages); it is the receiver's to read, write and
//   send on, like any other.
// - Thread-safety: every method may be called from any thread concurrently.
//   "Issue order" for concurrent sends from different threads is the order in
//   which the isend/send calls take effect.
// - Blocking: send()/recv() block until done or `timeout` elapsed, then throw
//   MeshTimeout and withdraw the call (a timed-out recv consumes no message).
//   isend()/irecv() never block; they return a MeshRequest.
// - Errors are exceptions derived from MeshError (itself a CollectiveError),
//   carrying kind() and the peer() involved (-1 when none). Bad arguments (a
//   rank outside [0, worldSize())) throw MeshUsageError from the call itself.
// - Peer loss: when a peer dies or leaves, every pending and future call that
//   involves it fails with MeshPeerLost naming it, and epoch() increases.
//   Messages that had already arrived from it before the loss can still be
//   received (until a backend that supports re-admission gives the rank to a
//   new node, which discards them).
// - abort() may be called from any thread and never blocks: pending and future
//   calls on this rank fail promptly with MeshAborted, and the other ranks see
//   this rank as lost. The destructor aborts.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "hearth/transport/collectives.h"
#include "hearth/transport/mesh_bytes.h"

namespace hearth {

using MeshTag = std::uint64_t;

// Waits with this timeout never time out.
constexpr Millis kMeshNoTimeout = Millis::max();

enum class MeshErrorKind {
  kTimeout,    // the call did not finish within its timeout
  kPeerLost,   // the peer died, was dropped, or left the mesh
  kCancelled,  // the request was cancelled by the caller
  kAborted,    // this rank called abort(), was killed, or the mesh was torn down
  kRejected,   // the peer or the relay refused this rank or message
  kProtocol,   // the peer sent something that violates the wire protocol
  kUsage,      // bad argument from the caller (e.g. a rank out of range)
};

inline const char* meshErrorKindName(MeshErrorKind kind) {
  switch (kind) {
    case MeshErrorKind::kTimeout:
      return "timed out";
    case MeshErrorKind::kPeerLost:
      return "peer lost";
    case MeshErrorKind::kCancelled:
      return "cancelled";
    case MeshErrorKind::kAborted:
      return "aborted";
    case MeshErrorKind::kRejected:
      return "rejected";
    case MeshErrorKind::kProtocol:
      return "protocol violation";
    case MeshErrorKind::kUsage:
      return "usage error";
  }
  return "unknown";
}

// Base of every Mesh failure. what() names the operation, the peer and the tag.
class MeshError : public CollectiveError {
 public:
  MeshError(MeshErrorKind kind, int peer, const std::string& what)
      : CollectiveError(what), kind_(kind), peer_(peer) {}
  MeshErrorKind kind() const { return kind_; }
  // The peer rank involved, or -1 when none (e.g. abort of this rank).
  int peer() const { return peer_; }

 private:
  MeshErrorKind kind_;
  int peer_;
};

#define HEARTH_MESH_ERROR(Name, Kind)                                                       \
  class Name : public MeshError {                                                           \
   public:                                                                                  \
    Name(int peer, const std::string& what) : MeshError(MeshErrorKind::Kind, peer, what) {} \
  };
HEARTH_MESH_ERROR(MeshTimeout, kTimeout)
HEARTH_MESH_ERROR(MeshPeerLost, kPeerLost)
HEARTH_MESH_ERROR(MeshCancelled, kCancelled)
HEARTH_MESH_ERROR(MeshAborted, kAborted)
HEARTH_MESH_ERROR(MeshRejected, kRejected)
HEARTH_MESH_ERROR(MeshProtocolError, kProtocol)
HEARTH_MESH_ERROR(MeshUsageError, kUsage)
#undef HEARTH_MESH_ERROR

// A pending isend or irecv. Thread-safe. Destroying a pending irecv cancels
// it (it will not consume a message); destroying a pending isend detaches it:
// the message is still delivered, and its outcome is no longer reported.
// Requests of the zero-copy forms (Mesh::irecvInto, Mesh::isendFrom) may
// wait in cancel() and in their destructor, briefly, until the backend no
// longer uses the caller's memory.
class MeshRequest {
 public:
  virtual ~MeshRequest() = default;

  // Non-blocking: true once the request finished (successfully or not).
  virtual bool test() = 0;

  // Blocks until the request finished or `timeout` elapsed. Returns true on
  // success, false if still pending (the request stays posted; cancel() it or
  // wait again). Throws the request's MeshError if it failed.
  virtual bool wait(Millis timeout) = 0;

  // Withdraws a pending request: it fails with MeshCancelled and a recv will
  // not consume a message. Returns false (and does nothing) if it had already
  // finished. Never blocks (but see the zero-copy forms above).
  virtual bool cancel() = 0;

  // For a successfully finished irecv: moves the received message out (once).
  // Throws MeshUsageError for a send or a request that did not succeed.
  virtual MeshBytes take() = 0;

  virtual int peer() const = 0;
  virtual MeshTag tag() const = 0;
};

class Mesh {
 public:
  virtual ~Mesh() = default;

  virtual int rank() const = 0;
  virtual int worldSize() const = 0;
  // Membership epoch: starts at 0, increases every time membership changes
  // (a peer is lost; with the zmq backend also when a new node takes a lost
  // peer's rank, see zmq_mesh.h). Equal on all ranks once they observed the
  // same changes.
  virtual std::uint64_t epoch() const = 0;
  // False once `peer` is known to be lost. REQUIRES: valid rank.
  virtual bool isPeerAlive(int peer) const = 0;
  // Short backend name for logs: "inproc", "zmq".
  virtual std::string backendName() const = 0;
  // How messages to `peer` travel now: "self" (peer == rank()), "direct" (a
  // direct connection between the two nodes) or "relay" (through a relay or
  // any other intermediary; the default for backends without direct links,
  // e.g. inproc). It may change over time (e.g. a failed direct link falls
  // back to "relay"). Throws MeshUsageError for a rank out of range.
  virtual std::string pathTo(int peer) const {
    if (peer < 0 || peer >= worldSize()) {
      throw MeshUsageError(peer, backendName() + " mesh rank " + std::to_string(rank()) +
                                     ": pathTo: rank " + std::to_string(peer) +
                                     " is out of range [0, " + std::to_string(worldSize()) + ")");
    }
    return peer == rank() ? "self" : "relay";
  }

  virtual std::unique_ptr<MeshRequest> isend(int peer, MeshTag tag, MeshBytes bytes) = 0;
  virtual std::unique_ptr<MeshRequest> irecv(int peer, MeshTag tag) = 0;

  // Zero-copy forms, for buffers the caller owns (the ring collectives use
  // them; a backend may implement them as the copying forms, as here).
  //
  // irecvInto: receives the next message from `peer` with `tag`, meant for
  // the `size` bytes at `into`. The backend may read it straight into `into`;
  // then take() returns a MeshBytes that views `into` (data() == into).
  // Otherwise (always for a message of another size) take() returns a
  // buffer of the backend's, as irecv's does, and `into` is untouched.
  // `into` must stay valid until the request finished; cancelling or
  // destroying the request may wait, briefly, until the backend has stopped
  // writing into it.
  virtual std::unique_ptr<MeshRequest> irecvInto(int peer, MeshTag tag, std::uint8_t* into,
                                                 std::size_t size) {
    (void)into;
    (void)size;
    return irecv(peer, tag);
  }
  // isendFrom: sends the `size` bytes at `data`. The backend may send them
  // from `data` itself; they must then stay valid and unchanged until the
  // request finished, which (unlike isend) covers the backend's last use of
  // them: wait() may copy what the peer has not acknowledged yet so as to
  // finish, and cancel() or destroying the request does so and waits for it
  // (the message is still delivered). Where the peer reads the bytes
  // straight out of this process (zmq: cross-memory lanes between processes
  // of one host), wait() instead lasts until the peer acknowledged them, at
  // most its timeout (false then, like any pending request) or until the
  // peer is lost. Here: a copy, then isend.
  virtual std::unique_ptr<MeshRequest> isendFrom(int peer, MeshTag tag, const std::uint8_t* data,
                                                 std::size_t size) {
    return isend(peer, tag, MeshBytes(data, data + size));
  }

  // Blocking forms (see the contract above): irecv/isend + wait + cancel on
  // timeout, throwing MeshTimeout.
  void send(int peer, MeshTag tag, MeshBytes bytes, Millis timeout) {
    auto request = isend(peer, tag, std::move(bytes));
    finishBlocking(*request, timeout, "send to");
  }
  MeshBytes recv(int peer, MeshTag tag, Millis timeout) {
    auto request = irecv(peer, tag);
    finishBlocking(*request, timeout, "recv from");
    return request->take();
  }

  virtual void abort() = 0;

  // What the blocking forms do after posting: waits for `request` up to
  // `timeout`; past it, cancels it and throws MeshTimeout ("<backend> mesh
  // rank R: <op> rank P tag T: timed out after N ms"), unless it finished
  // meanwhile. Throws the request's error if it failed.
  void finishBlocking(MeshRequest& request, Millis timeout, const char* op) {
    if (request.wait(timeout)) return;
    if (request.cancel()) {
      throw MeshTimeout(request.peer(), backendName() + " mesh rank " + std::to_string(rank()) +
                                            ": " + op + " rank " + std::to_string(request.peer()) +
                                            " tag " + std::to_string(request.tag()) +
                                            ": timed out after " + std::to_string(timeout.count()) +
                                            " ms");
    }
    request.wait(kMeshNoTimeout);  // finished meanwhile: return or throw its outcome
  }
};

}  // namespace hearth
