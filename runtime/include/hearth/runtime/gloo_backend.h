// hearth/runtime/gloo_backend.h — the Collectives interface over c10d's
// ProcessGroupGloo (TCP), the dense backend of this release.
//
// makeGlooProcessGroup() builds a process group on a c10d store; it blocks
// until all ranks joined or `timeout` passed (then throws CollectiveTimeout).
// makeGlooCollectives() adapts a group to hearth::Collectives: calls block
// until done or the group's timeout, and c10d/Gloo failures are rethrown as
// CollectiveError/CollectiveTimeout naming the operation. abort() makes
// future calls fail at once; a call already blocked in Gloo ends by the
// group's own timeout (c10d in LibTorch 1.13 has no abort for Gloo).
//
// Compatibility shim: LibTorch 1.13 and 2.x both have the concrete class
// c10d::ProcessGroupGloo (in 2.x it derives from c10d::Backend); hearth only
// calls the concrete class, through the GlooGroup alias.
#pragma once

#include <memory>
#include <string>

#include <c10/util/intrusive_ptr.h>

#include "hearth/transport/collectives.h"

namespace c10d {
class Store;
class ProcessGroupGloo;
}  // namespace c10d

namespace hearth {

using GlooGroup = c10d::ProcessGroupGloo;

// deviceHost: the local address Gloo binds to ("127.0.0.1" for loopback runs).
// An empty deviceHost lets Gloo pick the interface (GLOO_SOCKET_IFNAME, or
// the address the host name resolves to).
c10::intrusive_ptr<GlooGroup> makeGlooProcessGroup(const c10::intrusive_ptr<c10d::Store>& store,
                                                   int rank, int worldSize, Millis timeout,
                                                   const std::string& deviceHost);

std::unique_ptr<Collectives> makeGlooCollectives(c10::intrusive_ptr<GlooGroup> group,
                                                 Millis timeout);

// The process group behind a Collectives made by makeGlooCollectives(), or
// nullptr for other backends. For baselines and advanced users.
GlooGroup* glooGroupOf(Collectives& collectives);

}  // namespace hearth
