// Internal to transport/zmq: who shares this host, for direct links between
// the members of one host (ZmqMeshOptions::sameHostLinks).
//
// Contract
// - thisHostIdentity(): a string equal for two processes exactly when they
//   share this boot of this machine and this network namespace (so loopback
//   reaches one from the other): "<boot id>/<netns inode>". "" when either
//   cannot be read (then no same-host links). Never throws.
// - sameHostEndpointOf(bound): where members on this host dial a listener
//   bound to `bound` (tcp://HOST:PORT as libzmq reports it): a wildcard host
//   becomes loopback, any other host stays (it is one of ours).
#pragma once

#include <string>

namespace hearth {
namespace zmqhost {

// Where a listener for members on this host only binds.
inline constexpr const char* kSameHostListen = "tcp://127.0.0.1:0";

std::string thisHostIdentity();
std::string sameHostEndpointOf(const std::string& bound);

}  // namespace zmqhost
}  // namespace hearth
