// Bulk lanes: non-blocking plain TCP for a direct link's DATA frames.
#include "bulk_lane.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>

namespace hearth {
namespace zmqlane {
namespace {

constexpr char kHelloMagic[8] = {'h', 'e', 'a', 'r', 't', 'h', 'L', '1'};
// Frames gathered into one sendmsg.
constexpr std::size_t kMaxIovecs = 64;

using zmqwire::getLe;
using zmqwire::putLe;

std::string errnoText(const char* what) {
  return std::string(what) + ": " + std::strerror(errno);
}

bool wouldBlock() {
  return errno == EAGAIN || errno == EWOULDBLOCK;
}

// A socket address for a numeric host and port; false if host is not numeric.
bool makeAddress(const std::string& host, int port, sockaddr_storage* addr, socklen_t* len) {
  std::memset(addr, 0, sizeof(*addr));
  auto* v4 = reinterpret_cast<sockaddr_in*>(addr);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<std::uint16_t>(port));
    *len = sizeof(sockaddr_in);
    return true;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(addr);
  if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<std::uint16_t>(port));
    *len = sizeof(sockaddr_in6);
    return true;
  }
  return false;
}

void setNoDelay(int fd) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

// ---- Pacing (see unpaceLocal in bulk_lane.h) ----

std::string congestionControlOf(int fd) {
  char name[16] = {};
  socklen_t len = sizeof name;
  if (::getsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, name, &len) != 0) return "";
  return std::string(name, strnlen(name, sizeof name));
}

bool setCongestionControl(int fd, const std::string& name) {
  return ::setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, name.data(),
                      static_cast<socklen_t>(name.size())) == 0;
}

// Congestion controls that pace every connection by themselves.
bool pacesByItself(const std::string& name) {
  return name.rfind("bbr", 0) == 0;
}

// A socket not connected yet whose congestion control paces by itself gets
// one that does not (cubic, else reno, which every kernel has). Returns the
// one it had, or "" when nothing changed.
std::string unpace(int fd) {
  const std::string had = congestionControlOf(fd);
  if (!pacesByItself(had)) return "";
  for (const char* name : {"cubic", "reno"}) {
    if (setCongestionControl(fd, name)) return had;
  }
  return "";
}

bool sameIp(const sockaddr* a, const sockaddr* b) {
  if (a->sa_family != b->sa_family) return false;
  if (a->sa_family == AF_INET) {
    return reinterpret_cast<const sockaddr_in*>(a)->sin_addr.s_addr ==
           reinterpret_cast<const sockaddr_in*>(b)->sin_addr.s_addr;
  }
  return a->sa_family == AF_INET6 &&
         IN6_ARE_ADDR_EQUAL(&reinterpret_cast<const sockaddr_in6*>(a)->sin6_addr,
                            &reinterpret_cast<const sockaddr_in6*>(b)->sin6_addr);
}

// Whether `addr` is a loopback address or one of this host's (in this
// network namespace).
bool isThisHost(const sockaddr_storage& addr) {
  const auto* sa = reinterpret_cast<const sockaddr*>(&addr);
  if (sa->sa_family == AF_INET &&
      (ntohl(reinterpret_cast<const sockaddr_in*>(sa)->sin_addr.s_addr) >> 24) == 127) {
    return true;
  }
  if (sa->sa_family == AF_INET6 &&
      IN6_IS_ADDR_LOOPBACK(&reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr)) {
    return true;
  }
  ifaddrs* all = nullptr;
  if (::getifaddrs(&all) != 0) return false;
  bool found = false;
  for (const ifaddrs* i = all; i != nullptr && !found; i = i->ifa_next) {
    found = i->ifa_addr != nullptr && sameIp(i->ifa_addr, sa);
  }
  ::freeifaddrs(all);
  return found;
}

}  // namespace

LaneKey randomKey() {
  std::random_device device;
  LaneKey key;
  for (std::size_t i = 0; i < key.size(); i += 4) {
    putLe(key.data() + i, device(), 4);
  }
  return key;
}

std::string numericHostOf(const std::string& endpoint) {
  if (endpoint.rfind("tcp://", 0) != 0) return "";
  const std::string rest = endpoint.substr(6);
  const auto colon = rest.rfind(':');
  if (colon == std::string::npos || colon == 0) return "";
  std::string host = rest.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  sockaddr_storage addr;
  socklen_t len;
  return makeAddress(host, 0, &addr, &len) ? host : "";
}

// ---- LaneListener ----

std::unique_ptr<LaneListener> LaneListener::open(const std::string& host, std::string* why,
                                                 bool unpaceLocal, int port) {
  sockaddr_storage addr;
  socklen_t len;
  if (port < 0 || port > 65535 || !makeAddress(host, port, &addr, &len)) {
    *why = "'" + host + ":" + std::to_string(port) + "' is not a numeric address and port";
    return nullptr;
  }
  const int fd = ::socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *why = errnoText("socket");
    return nullptr;
  }
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);  // a chosen port, again soon
  // Accepted connections inherit this; service() gives the system's choice
  // back to those from other hosts.
  const std::string systemChoice = unpaceLocal ? unpace(fd) : "";
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0 || ::listen(fd, 64) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    *why = errnoText(("bind/listen on port " + std::to_string(port)).c_str());
    ::close(fd);
    return nullptr;
  }
  const int bound =
      ntohs(addr.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&addr)->sin_port
                                      : reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port);
  return std::unique_ptr<LaneListener>(new LaneListener(fd, bound, systemChoice));
}

LaneListener::~LaneListener() {
  for (const Pending& p : pending_) ::close(p.fd);
  ::close(fd_);
}

void LaneListener::pollFds(std::vector<int>* fds) const {
  fds->push_back(fd_);
  for (const Pending& p : pending_) fds->push_back(p.fd);
}

std::vector<LaneListener::Arrival> LaneListener::service(std::chrono::milliseconds helloTimeout) {
  const auto now = Clock::now();
  for (;;) {
    const int fd = ::accept4(fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) break;  // EAGAIN, or a connection that went away meanwhile
    if (pending_.size() >= kMaxPendingHellos) {
      ::close(fd);
      ++refused_;
      continue;
    }
    sockaddr_storage peer{};
    socklen_t len = sizeof peer;
    const bool thisHost =
        ::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len) == 0 && isThisHost(peer);
    if (!remoteCongestionControl_.empty() && !thisHost) {
      setCongestionControl(fd, remoteCongestionControl_);
    }
    pending_.push_back(Pending{fd, thisHost, now, {}, 0});
  }
  std::vector<Arrival> arrivals;
  for (auto it = pending_.begin(); it != pending_.end();) {
    bool closeIt = false;
    while (it->have < kHelloBytes) {
      const ssize_t n = ::recv(it->fd, it->hello.data() + it->have, kHelloBytes - it->have, 0);
      if (n > 0) {
        it->have += static_cast<std::size_t>(n);
        continue;
      }
      closeIt = n == 0 || !wouldBlock();
      break;
    }
    if (it->have == kHelloBytes) {
      const std::uint8_t* h = it->hello.data();
      if (std::memcmp(h, kHelloMagic, sizeof kHelloMagic) == 0 && getLe(h + 12, 4) == 0) {
        Arrival a{static_cast<int>(static_cast<std::int32_t>(getLe(h + 8, 4))),
                  {},
                  it->fd,
                  it->peerOnThisHost};
        std::memcpy(a.key.data(), h + 16, kKeyBytes);
        setNoDelay(it->fd);
        arrivals.push_back(a);
        it = pending_.erase(it);
        continue;
      }
      closeIt = true;
    }
    if (closeIt || now - it->since > helloTimeout) {
      ::close(it->fd);
      ++refused_;
      it = pending_.erase(it);
      continue;
    }
    ++it;
  }
  return arrivals;
}

// ---- BulkLane ----

std::unique_ptr<BulkLane> BulkLane::dial(const std::string& host, int port, int myRank,
                                         const LaneKey& key, std::int64_t maxFrameBytes,
                                         std::shared_ptr<BufferPool> pool, std::string* why,
                                         LaneOptions options) {
  sockaddr_storage addr;
  socklen_t len;
  if (port < 1 || port > 65535 || !makeAddress(host, port, &addr, &len)) {
    *why = "cannot dial '" + host + ":" + std::to_string(port) + "' (numeric hosts only)";
    return nullptr;
  }
  const int fd = ::socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *why = errnoText("socket");
    return nullptr;
  }
  setNoDelay(fd);
  const bool thisHost = isThisHost(addr);
  if (options.unpaceLocal && thisHost) unpace(fd);
  const int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), len);
  if (rc != 0 && errno != EINPROGRESS) {
    *why = errnoText("connect");
    ::close(fd);
    return nullptr;
  }
  std::unique_ptr<BulkLane> lane(new BulkLane(fd, rc == 0, maxFrameBytes, std::move(pool)));
  Outgoing hello{{}, kHelloBytes, zmq::message_t(), 0};
  std::memcpy(hello.header.data(), kHelloMagic, sizeof kHelloMagic);
  putLe(hello.header.data() + 8, static_cast<std::uint32_t>(myRank), 4);
  putLe(hello.header.data() + 12, 0, 4);
  std::memcpy(hello.header.data() + 16, key.data(), kKeyBytes);
  lane->out_.push_back(std::move(hello));
  lane->offerCrossMemory(options, thisHost);
  return lane;
}

std::unique_ptr<BulkLane> BulkLane::adopt(int fd, std::int64_t maxFrameBytes,
                                          std::shared_ptr<BufferPool> pool, LaneOptions options,
                                          bool peerOnThisHost) {
  std::unique_ptr<BulkLane> lane(new BulkLane(fd, true, maxFrameBytes, std::move(pool)));
  lane->offerCrossMemory(options, peerOnThisHost);
  return lane;
}

BulkLane::~BulkLane() {
  // Fences first: a read the peer makes of a described body from now on fails.
  while (!remote_.empty()) letGo(remote_.begin());
  ::close(fd_);
}

void BulkLane::offerCrossMemory(const LaneOptions& options, bool peerOnThisHost) {
  crossMemory_ = options.crossMemory && peerOnThisHost;
  if (!crossMemory_) return;
  std::uint8_t pid[8];
  putLe(pid, static_cast<std::uint64_t>(::getpid()), 8);
  enqueueControl(LaneKind::kOffer, 0, pid, sizeof pid);
}

namespace {
// A frame header of `kind`.
void putHeader(std::uint8_t* h, LaneKind kind, MeshTag tag, std::uint64_t seq, std::uint64_t size) {
  putLe(h, kLaneFrameMagic, 4);
  putLe(h + 4, static_cast<std::uint32_t>(kind), 4);
  putLe(h + 8, tag, 8);
  putLe(h + 16, seq, 8);
  putLe(h + 24, size, 8);
}
}  // namespace

void BulkLane::enqueueControl(LaneKind kind, std::uint64_t seq, const std::uint8_t* body,
                              std::size_t size) {
  Outgoing o{{}, kFrameHeaderBytes, zmq::message_t(body, size), 0, false};
  putHeader(o.header.data(), kind, 0, seq, size);
  out_.push_back(std::move(o));
}

bool BulkLane::enqueue(MeshTag tag, std::uint64_t seq, zmq::message_t body, bool lent) {
  if (sendsRemote_ && body.size() >= kRemoteMinBytes) {
    if (const auto fence = fences_->take()) {
      Outgoing o{{}, kFrameHeaderBytes, zmq::message_t(24), 0, false};
      putHeader(o.header.data(), LaneKind::kRemoteData, tag, seq, body.size());
      auto* d = static_cast<std::uint8_t*>(o.body.data());
      putLe(d, static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(body.data())), 8);
      putLe(d + 8, fence->address, 8);
      putLe(d + 16, fence->value, 8);
      remote_.push_back(Described{seq, fence->slot, std::move(body), lent});
      out_.push_back(std::move(o));
      return true;
    }
  }
  Outgoing o{{}, kFrameHeaderBytes, std::move(body), 0, lent};
  putHeader(o.header.data(), LaneKind::kData, tag, seq, o.body.size());
  out_.push_back(std::move(o));
  return false;
}

void BulkLane::enqueueAck(std::uint64_t next) {
  enqueueControl(LaneKind::kAck, next, nullptr, 0);
}

std::deque<BulkLane::Described>::iterator BulkLane::letGo(std::deque<Described>::iterator it) {
  fences_->revoke(it->fenceSlot);  // before the body can go
  return remote_.erase(it);
}

void BulkLane::acknowledged(std::uint64_t next) {
  for (auto it = remote_.begin(); it != remote_.end();) it = it->seq < next ? letGo(it) : it + 1;
}

bool BulkLane::finishConnect(std::string* why) {
  pollfd p{fd_, POLLOUT, 0};
  if (::poll(&p, 1, 0) <= 0) return true;  // still connecting
  int error = 0;
  socklen_t len = sizeof(error);
  if (::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &error, &len) != 0) error = errno;
  if (error != 0) {
    *why = std::string("connect: ") + std::strerror(error);
    return false;
  }
  connected_ = true;
  return true;
}

bool BulkLane::flush(std::string* why) {
  if (!connected_ && !finishConnect(why)) return false;
  while (connected_ && !out_.empty()) {
    iovec iov[kMaxIovecs];
    std::size_t n = 0;
    for (auto it = out_.begin(); it != out_.end() && n + 2 <= kMaxIovecs; ++it) {
      std::size_t skip = it->written;
      if (skip < it->headerBytes) {
        iov[n++] = {it->header.data() + skip, it->headerBytes - skip};
        skip = 0;
      } else {
        skip -= it->headerBytes;
      }
      if (it->body.size() > skip) {
        iov[n++] = {static_cast<std::uint8_t*>(it->body.data()) + skip, it->body.size() - skip};
      }
    }
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = n;
    const ssize_t sent = ::sendmsg(fd_, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (sent < 0) {
      if (wouldBlock()) return true;
      if (errno == EINTR) continue;
      *why = errnoText("send");
      return false;
    }
    auto left = static_cast<std::size_t>(sent);
    while (!out_.empty()) {
      Outgoing& o = out_.front();
      const std::size_t rest = o.headerBytes + o.body.size() - o.written;
      if (left < rest) {
        o.written += left;
        break;
      }
      left -= rest;
      out_.pop_front();
    }
  }
  return true;
}

// The size of a control frame's body on the wire, or -1 for an unknown kind.
static int controlBytes(LaneKind kind) {
  switch (kind) {
    case LaneKind::kRemoteData:
      return 24;
    case LaneKind::kOffer:
    case LaneKind::kProof:
      return 8;
    case LaneKind::kChallenge:
      return static_cast<int>(kChallengeBytes);
    case LaneKind::kAccept:
    case LaneKind::kAck:
      return 0;
    case LaneKind::kData:
      break;
  }
  return -1;
}

// Header of the next frame complete: checks it; DATA chooses its body's
// place, other kinds read their small body next.
bool BulkLane::startFrame(LaneSink& sink, std::string* why) {
  const std::uint8_t* h = header_.data();
  const auto kind = static_cast<LaneKind>(getLe(h + 4, 4));
  const int wire = kind == LaneKind::kData ? 0 : controlBytes(kind);
  if (getLe(h, 4) != kLaneFrameMagic || wire < 0) {
    *why = "malformed frame header";
    return false;
  }
  tag_ = getLe(h + 8, 8);
  seq_ = getLe(h + 16, 8);
  const std::uint64_t size = getLe(h + 24, 8);
  if (size > static_cast<std::uint64_t>(maxFrameBytes_)) {
    *why =
        "a " + std::to_string(size) + "-byte frame (limit " + std::to_string(maxFrameBytes_) + ")";
    return false;
  }
  bodySize_ = static_cast<std::size_t>(size);
  if (kind == LaneKind::kData) {
    startBody(sink);
    return true;
  }
  if (kind != LaneKind::kRemoteData && size != static_cast<std::uint64_t>(wire)) {
    *why = "a control frame of kind " + std::to_string(static_cast<int>(kind)) + " with " +
           std::to_string(size) + " bytes";
    return false;
  }
  inControl_ = true;
  controlKind_ = kind;
  controlSize_ = static_cast<std::size_t>(wire);
  controlHave_ = 0;
  return true;
}

void BulkLane::startBody(LaneSink& sink) {
  placedAt_ = sink.place(tag_, seq_, bodySize_);
  body_ = placedAt_ != nullptr ? MeshBytes() : pool_->take(bodySize_);  // written by the read
  bodyHave_ = 0;
  inBody_ = true;
}

void BulkLane::unplaceBody() {
  if (!placingBody()) return;
  body_ = pool_->take(bodySize_);
  if (bodyHave_ > 0) std::memcpy(body_.data(), placedAt_, bodyHave_);
  placedAt_ = nullptr;
}

void BulkLane::detachLent() {
  for (Outgoing& o : out_) {
    if (!o.lent) continue;
    o.body = zmq::message_t(o.body.data(), o.body.size());
    o.lent = false;
  }
  for (auto it = remote_.begin(); it != remote_.end();) it = it->lent ? letGo(it) : it + 1;
}

// A control frame's body is in: acts on it.
bool BulkLane::finishControl(LaneSink& sink, std::size_t* read, std::string* why) {
  inControl_ = false;
  headerHave_ = 0;
  const std::uint8_t* b = control_.data();
  switch (controlKind_) {
    case LaneKind::kRemoteData:
      *read += bodySize_;
      return readDescribed(sink, why);
    case LaneKind::kOffer:
      if (offerSeen_) {
        *why = "a second cross-memory OFFER";
        return false;
      }
      offerSeen_ = true;
      if (!crossMemory_) return true;  // not offered here: bytes it is
      peerPid_ = static_cast<std::int64_t>(getLe(b, 8));
      challenge_ = randomKey();
      enqueueControl(LaneKind::kChallenge, 0, challenge_.data(), challenge_.size());
      challengeSent_ = true;
      return true;
    case LaneKind::kChallenge:
      if (!crossMemory_ || proof_) {
        *why = "a cross-memory CHALLENGE that was not asked for";
        return false;
      }
      proof_ = std::make_unique<std::array<std::uint8_t, kChallengeBytes>>();
      std::memcpy(proof_->data(), b, kChallengeBytes);
      {
        std::uint8_t at[8];
        putLe(at, static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(proof_->data())), 8);
        enqueueControl(LaneKind::kProof, 0, at, sizeof at);
      }
      return true;
    case LaneKind::kProof: {
      if (!challengeSent_ || readsRemote_) {
        *why = "a cross-memory PROOF that was not asked for";
        return false;
      }
      std::array<std::uint8_t, kChallengeBytes> seen{};
      std::string failed;
      if (!readProcessMemory(peerPid_, getLe(b, 8), seen.data(), seen.size(), &failed)) {
        note_ = "no cross-memory reads (" + failed + "): the lane carries bytes";
      } else if (seen != challenge_) {
        note_ = "no cross-memory reads (process " + std::to_string(peerPid_) +
                " is not the peer): the lane carries bytes";
      } else {
        readsRemote_ = true;
        note_ = "cross-memory reads from process " + std::to_string(peerPid_);
        enqueueControl(LaneKind::kAccept, 0, nullptr, 0);
      }
      return true;
    }
    case LaneKind::kAccept:
      if (!proof_ || sendsRemote_) {
        *why = "a cross-memory ACCEPT that was not asked for";
        return false;
      }
      sendsRemote_ = true;
      fences_ = std::make_unique<FenceTable>(kFenceSlots);
      return true;
    case LaneKind::kAck:
      acknowledged(seq_);
      sink.acknowledged(seq_);
      return true;
    case LaneKind::kData:
      break;
  }
  *why = "malformed frame header";
  return false;
}

// REMOTE_DATA's descriptor is in: copies the body out of the peer's memory
// (where the sink places it, else into a pool buffer), checks the fence and
// delivers it.
bool BulkLane::readDescribed(LaneSink& sink, std::string* why) {
  if (!readsRemote_) {
    *why = "a REMOTE_DATA frame on a lane without cross-memory reads";
    return false;
  }
  const std::uint8_t* d = control_.data();
  const std::uint64_t from = getLe(d, 8);
  const std::uint64_t fenceAt = getLe(d + 8, 8);
  const std::uint64_t fenceValue = getLe(d + 16, 8);
  std::uint8_t* placed = sink.place(tag_, seq_, bodySize_);
  MeshBytes body = placed != nullptr ? MeshBytes() : pool_->take(bodySize_);
  std::uint8_t* into = placed != nullptr ? placed : body.data();
  std::uint64_t fence = 0;
  if (!readProcessMemory(peerPid_, from, into, bodySize_, why) ||
      !readProcessMemory(peerPid_, fenceAt, &fence, sizeof fence, why)) {
    return false;
  }
  if (fence != fenceValue || fenceValue == 0) {
    *why = "frame " + std::to_string(seq_) + " was taken back by its sender before it was read";
    return false;
  }
  sink.deliver(LaneFrame{tag_, seq_, std::move(body), placed != nullptr, true});
  return true;
}

// The frame whose body is complete, to the sink.
void BulkLane::finishBody(LaneSink& sink) {
  LaneFrame frame{tag_, seq_, std::move(body_), placedAt_ != nullptr};
  body_ = MeshBytes();
  placedAt_ = nullptr;
  inBody_ = false;
  headerHave_ = 0;
  sink.deliver(std::move(frame));
}

bool BulkLane::readFrames(LaneSink& sink, std::size_t maxBytes, std::string* why) {
  std::size_t read = 0;
  while (read < maxBytes) {
    if (inBody_ && bodyHave_ == bodySize_) {
      finishBody(sink);
      continue;
    }
    if (inControl_ && controlHave_ == controlSize_) {
      if (!finishControl(sink, &read, why)) return false;
      continue;
    }
    std::uint8_t* into;
    std::size_t want;
    if (inBody_) {
      into = (placedAt_ != nullptr ? placedAt_ : body_.data()) + bodyHave_;
      want = bodySize_ - bodyHave_;
    } else if (inControl_) {
      into = control_.data() + controlHave_;
      want = controlSize_ - controlHave_;
    } else {
      into = header_.data() + headerHave_;
      want = kFrameHeaderBytes - headerHave_;
    }
    const ssize_t n = ::recv(fd_, into, want, MSG_DONTWAIT);
    if (n == 0) {
      *why = "closed by the peer";
      return false;
    }
    if (n < 0) {
      if (wouldBlock()) return true;
      if (errno == EINTR) continue;
      *why = errnoText("recv");
      return false;
    }
    read += static_cast<std::size_t>(n);
    if (inBody_) {
      bodyHave_ += static_cast<std::size_t>(n);
    } else if (inControl_) {
      controlHave_ += static_cast<std::size_t>(n);
    } else if ((headerHave_ += static_cast<std::size_t>(n)) == kFrameHeaderBytes) {
      if (!startFrame(sink, why)) return false;
    }
  }
  if (inBody_ && bodyHave_ == bodySize_) finishBody(sink);
  if (inControl_ && controlHave_ == controlSize_) return finishControl(sink, &read, why);
  return true;
}

}  // namespace zmqlane
}  // namespace hearth
