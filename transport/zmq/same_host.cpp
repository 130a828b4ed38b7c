// Host identities and same-host endpoints (same_host.h).
#include "same_host.h"

#include <sys/stat.h>

#include <fstream>

namespace hearth {
namespace zmqhost {

std::string thisHostIdentity() {
  std::ifstream in("/proc/sys/kernel/random/boot_id");
  std::string boot;
  if (!(in >> boot) || boot.empty()) return "";
  struct stat netns {};
  if (::stat("/proc/self/ns/net", &netns) != 0) return "";
  return boot + "/" + std::to_string(static_cast<unsigned long long>(netns.st_ino));
}

std::string sameHostEndpointOf(const std::string& bound) {
  for (const auto& [wildcard, loopback] :
       {std::pair<std::string, std::string>{"tcp://0.0.0.0:", "tcp://127.0.0.1:"},
        {"tcp://[::]:", "tcp://[::1]:"}}) {
    if (bound.rfind(wildcard, 0) == 0) return loopback + bound.substr(wildcard.size());
  }
  return bound;
}

}  // namespace zmqhost
}  // namespace hearth
