#include "net_util.h"

#include <random>

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <set>
#include <stdexcept>

#include "posix_util.h"

namespace hearth::launcher {
namespace {

std::string numericHost(const sockaddr* addr, socklen_t len) {
  char buffer[NI_MAXHOST];
  if (::getnameinfo(addr, len, buffer, sizeof(buffer), nullptr, 0, NI_NUMERICHOST) != 0) return "";
  return buffer;
}

std::string ownHostName() {
  char buffer[256] = {};
  if (::gethostname(buffer, sizeof(buffer) - 1) != 0) return "";
  return buffer;
}

struct AddrInfoDeleter {
  void operator()(addrinfo* info) const { ::freeaddrinfo(info); }
};
using AddrInfoPtr = std::unique_ptr<addrinfo, AddrInfoDeleter>;

AddrInfoPtr resolve(const std::string& host, int port, int socktype) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = socktype;
  addrinfo* raw = nullptr;
  std::string service = port > 0 ? std::to_string(port) : std::string();
  if (::getaddrinfo(host.c_str(), service.empty() ? nullptr : service.c_str(), &hints, &raw) != 0) {
    return AddrInfoPtr(nullptr);
  }
  return AddrInfoPtr(raw);
}

}  // namespace

namespace {

// Whether bindAddr:port can be bound right now.
bool canBind(const std::string& bindAddr, int port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  if (::inet_pton(AF_INET, bindAddr.c_str(), &addr.sin_addr) != 1) return false;
  return ::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
}

}  // namespace

int findFreePort(const std::string& bindAddr) {
  // Prefer ports below Linux's ephemeral range (32768+): a port the kernel
  // handed out for bind(0) can be taken by any outgoing connection before the
  // worker binds it, a port from this range only by another listener.
  std::random_device seed;
  std::mt19937 rng(seed());
  std::uniform_int_distribution<int> pick(kPreferredPortLow, kPreferredPortHigh - 1);
  for (int attempt = 0; attempt < 64; ++attempt) {
    const int port = pick(rng);
    if (canBind(bindAddr, port)) return port;
  }
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = 0;
  if (::inet_pton(AF_INET, bindAddr.c_str(), &addr.sin_addr) != 1) {
    throw std::runtime_error("findFreePort: not an IPv4 address: " + bindAddr);
  }
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    throw std::runtime_error("bind " + bindAddr + ":0: " + std::strerror(errno));
  }
  socklen_t len = sizeof(addr);
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    throw std::runtime_error(std::string("getsockname: ") + std::strerror(errno));
  }
  return ntohs(addr.sin_port);
}

bool isLocalHost(const std::string& host) {
  if (host == "localhost" || host == "127.0.0.1" || host == "::1" || host.rfind("127.", 0) == 0) {
    return true;
  }
  std::string own = ownHostName();
  if (!own.empty() &&
      (host == own || own.rfind(host + ".", 0) == 0 || host.rfind(own + ".", 0) == 0)) {
    return true;
  }
  std::set<std::string> localAddrs;
  ifaddrs* raw = nullptr;
  if (::getifaddrs(&raw) == 0) {
    for (ifaddrs* it = raw; it != nullptr; it = it->ifa_next) {
      if (it->ifa_addr == nullptr) continue;
      int family = it->ifa_addr->sa_family;
      if (family != AF_INET && family != AF_INET6) continue;
      socklen_t len = family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
      localAddrs.insert(numericHost(it->ifa_addr, len));
    }
    ::freeifaddrs(raw);
  }
  AddrInfoPtr info = resolve(host, 0, SOCK_STREAM);
  for (addrinfo* it = info.get(); it != nullptr; it = it->ai_next) {
    std::string numeric = numericHost(it->ai_addr, it->ai_addrlen);
    if (numeric.rfind("127.", 0) == 0 || numeric == "::1" || localAddrs.count(numeric) != 0) {
      return true;
    }
  }
  return false;
}

std::string localAddressTowards(const std::string& host, int port) {
  AddrInfoPtr info = resolve(host, port, SOCK_DGRAM);
  for (addrinfo* it = info.get(); it != nullptr; it = it->ai_next) {
    UniqueFd fd(::socket(it->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!fd.valid()) continue;
    if (::connect(fd.get(), it->ai_addr, it->ai_addrlen) != 0) continue;
    sockaddr_storage local{};
    socklen_t len = sizeof(local);
    if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&local), &len) != 0) continue;
    std::string numeric = numericHost(reinterpret_cast<sockaddr*>(&local), len);
    if (!numeric.empty()) return numeric;
  }
  std::string own = ownHostName();
  return own.empty() ? "127.0.0.1" : own;
}

bool canConnect(const std::string& host, int port, int timeoutMs) {
  AddrInfoPtr info = resolve(host, port, SOCK_STREAM);
  for (addrinfo* it = info.get(); it != nullptr; it = it->ai_next) {
    UniqueFd fd(::socket(it->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd.valid()) continue;
    if (::connect(fd.get(), it->ai_addr, it->ai_addrlen) == 0) return true;
    if (errno != EINPROGRESS) continue;
    pollfd pfd{fd.get(), POLLOUT, 0};
    if (::poll(&pfd, 1, timeoutMs) != 1) continue;
    int error = 0;
    socklen_t len = sizeof(error);
    if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &error, &len) == 0 && error == 0) return true;
  }
  return false;
}

}  // namespace hearth::launcher
