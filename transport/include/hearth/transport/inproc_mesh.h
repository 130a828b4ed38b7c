// hearth/transport/inproc_mesh.h — factory for the inproc Mesh backend: N ranks
// as threads of one process, plus a fault injector (LevelDB fault_injection
// style) to test what upper layers do when the network misbehaves.
//
// Contract
// - makeInprocMesh(n, options) returns n Mesh objects (element i is rank i)
//   sharing one hub, and an InprocFaults handle onto that hub. Everything is
//   thread-safe; faults may be changed at any time while traffic flows.
// - Without delay or bandwidth cap a message is moved (not copied) into the
//   receiver's mailbox inside isend(), so sends complete immediately.
// - With delay/cap, a send completes when the message is delivered (a
//   background thread delivers it); per-(sender, receiver) order is kept even
//   when the delay changes mid-stream.
// - killRank(r) is "kill -9" of rank r: rank r's own calls fail with
//   MeshAborted, every pending and future call on the other ranks involving r
//   fails with MeshPeerLost naming r, and every epoch() increases by one.
//   Mesh::abort() on rank r has the same effect.
// - corruptNext/truncateNext mutate the next message(s) from `from` to `to`.
//   The inproc Mesh itself does not detect this (it has no checksums): it is
//   for testing protocol-violation handling in the layers above.
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

#include "hearth/transport/mesh.h"

namespace hearth {

struct InprocFaultOptions {
  // Extra latency added to every message.
  Millis delay{0};
  // Cap on each rank's outgoing bandwidth in bytes per second (a send
  // occupies the sender's "uplink" for size / cap seconds); 0 = unlimited.
  double bytesPerSecond = 0;
};

class InprocFaults {
 public:
  virtual ~InprocFaults() = default;
  // Kills rank r (see contract). Idempotent.
  virtual void killRank(int rank) = 0;
  // Applies to messages sent from now on.
  virtual void setDelay(Millis delay) = 0;
  // Outgoing cap of `rank` (bytes/s, 0 = unlimited), for messages sent from now on.
  virtual void setBandwidth(int rank, double bytesPerSecond) = 0;
  // The next `count` messages from `from` to `to` get one byte flipped (the
  // middle one; empty messages are delivered unchanged).
  virtual void corruptNext(int from, int to, int count = 1) = 0;
  // The next `count` messages from `from` to `to` are cut to at most `keepBytes`.
  virtual void truncateNext(int from, int to, std::size_t keepBytes, int count = 1) = 0;
};

struct InprocMeshGroup {
  std::vector<std::unique_ptr<Mesh>> ranks;
  std::shared_ptr<InprocFaults> faults;
};

// REQUIRES: worldSize >= 1. Throws MeshUsageError otherwise.
InprocMeshGroup makeInprocMesh(int worldSize, InprocFaultOptions options = {});

}  // namespace hearth
