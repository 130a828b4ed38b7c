// Bulk lanes (transport/zmq/bulk_lane.h) and their buffer pool on real
// loopback sockets: the hello, frames both ways, hostile input, failures.
#include "bulk_lane.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include "buffer_pool.h"
#include "cross_memory.h"

namespace hearth {
namespace zmqlane {
namespace {

using std::chrono::milliseconds;
constexpr std::int64_t kMaxFrame = std::int64_t{64} << 20;
constexpr auto kPatience = std::chrono::seconds(10);

// A sink that collects the frames a lane delivers.
class LaneFrames : public LaneSink {
 public:
  void deliver(LaneFrame frame) override { frames.push_back(std::move(frame)); }
  std::vector<LaneFrame> frames;
};

LaneKey keyOf(std::uint8_t seed) {
  LaneKey key;
  for (std::size_t i = 0; i < key.size(); ++i) key[i] = static_cast<std::uint8_t>(seed + i);
  return key;
}

zmq::message_t patterned(std::size_t n, std::uint8_t seed) {
  zmq::message_t m(n);
  auto* p = static_cast<std::uint8_t*>(m.data());
  for (std::size_t i = 0; i < n; ++i) p[i] = static_cast<std::uint8_t>(seed + i * 7);
  return m;
}

bool isPatterned(const MeshBytes& b, std::size_t n, std::uint8_t seed) {
  if (b.size() != n) return false;
  for (std::size_t i = 0; i < n; ++i) {
    if (b[i] != static_cast<std::uint8_t>(seed + i * 7)) return false;
  }
  return true;
}

// Flushes the dialer (its hello) and services the listener until the hello
// is in.
LaneListener::Arrival arrivalAt(LaneListener& listener, BulkLane& dialer) {
  const auto until = std::chrono::steady_clock::now() + kPatience;
  std::string why;
  while (std::chrono::steady_clock::now() < until) {
    EXPECT_TRUE(dialer.flush(&why)) << why;
    auto arrivals = listener.service(milliseconds(5000));
    if (!arrivals.empty()) return arrivals.front();
    std::this_thread::sleep_for(milliseconds(1));
  }
  ADD_FAILURE() << "no hello arrived";
  return {-1, {}, -1, false};
}

// A dialed lane, connected and its hello read by the listener.
struct LanePair {
  std::shared_ptr<BufferPool> pool = BufferPool::create(std::size_t{16} << 20);
  std::unique_ptr<LaneListener> listener;
  std::unique_ptr<BulkLane> dialer;
  std::unique_ptr<BulkLane> acceptor;
  LaneListener::Arrival arrival{};

  explicit LanePair(LaneOptions dialing = {}, LaneOptions accepting = {}) {
    std::string why;
    listener = LaneListener::open("127.0.0.1", &why);
    EXPECT_TRUE(listener) << why;
    dialer =
        BulkLane::dial("127.0.0.1", listener->port(), 3, keyOf(9), kMaxFrame, pool, &why, dialing);
    EXPECT_TRUE(dialer) << why;
    arrival = arrivalAt(*listener, *dialer);
    acceptor = BulkLane::adopt(arrival.fd, kMaxFrame, pool, accepting, arrival.peerOnThisHost);
    EXPECT_TRUE(dialer->flush(&why)) << why;
    EXPECT_TRUE(dialer->connected());
  }
};

// Flushes `from` and reads `to` until `count` frames arrived (or time is up).
std::vector<LaneFrame> pump(BulkLane& from, BulkLane& to, std::size_t count) {
  LaneFrames got;
  const auto until = std::chrono::steady_clock::now() + kPatience;
  std::string why;
  while (got.frames.size() < count && std::chrono::steady_clock::now() < until) {
    EXPECT_TRUE(from.flush(&why)) << why;
    EXPECT_TRUE(to.readFrames(got, std::size_t{1} << 20, &why)) << why;
  }
  return std::move(got.frames);
}

TEST(BulkLane, HelloCarriesTheDialersRankAndKey) {
  LanePair pair;
  EXPECT_EQ(pair.arrival.rank, 3);
  EXPECT_EQ(pair.arrival.key, keyOf(9));
  EXPECT_EQ(pair.listener->refused(), 0);
}

TEST(BulkLane, FramesOfEverySizeArriveIntactAndInOrderBothWays) {
  LanePair pair;
  const std::size_t sizes[] = {0, 1, 13, 65536, 5 << 20};
  for (std::size_t i = 0; i < std::size(sizes); ++i) {
    pair.dialer->enqueue(100 + i, 7 + i, patterned(sizes[i], static_cast<std::uint8_t>(i)));
    pair.acceptor->enqueue(200 + i, 50 + i, patterned(sizes[i], static_cast<std::uint8_t>(i + 1)));
  }
  const auto there = pump(*pair.dialer, *pair.acceptor, std::size(sizes));
  const auto back = pump(*pair.acceptor, *pair.dialer, std::size(sizes));
  ASSERT_EQ(there.size(), std::size(sizes));
  ASSERT_EQ(back.size(), std::size(sizes));
  for (std::size_t i = 0; i < std::size(sizes); ++i) {
    EXPECT_EQ(there[i].tag, 100 + i);
    EXPECT_EQ(there[i].seq, 7 + i);
    EXPECT_TRUE(isPatterned(there[i].bytes, sizes[i], static_cast<std::uint8_t>(i))) << i;
    EXPECT_EQ(back[i].tag, 200 + i);
    EXPECT_EQ(back[i].seq, 50 + i);
    EXPECT_TRUE(isPatterned(back[i].bytes, sizes[i], static_cast<std::uint8_t>(i + 1))) << i;
  }
  EXPECT_FALSE(pair.dialer->wantsWrite());
}

TEST(BulkLane, ReceiveBuffersGoBackToThePoolAndAreReused) {
  LanePair pair;
  pair.dialer->enqueue(1, 0, patterned(1 << 20, 1));
  auto first = pump(*pair.dialer, *pair.acceptor, 1);
  ASSERT_EQ(first.size(), 1u);
  const std::uint8_t* buffer = first[0].bytes.data();
  EXPECT_EQ(pair.pool->pooledBytes(), 0u);
  first.clear();  // the last holder lets go
  EXPECT_EQ(pair.pool->pooledBytes(), std::size_t{1} << 20);
  pair.dialer->enqueue(1, 1, patterned(1 << 20, 2));
  auto second = pump(*pair.dialer, *pair.acceptor, 1);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].bytes.data(), buffer);
  EXPECT_TRUE(isPatterned(second[0].bytes, 1 << 20, 2));
}

TEST(BulkLane, BuffersOutliveTheirPoolAndThePoolKeepsItsCap) {
  auto pool = BufferPool::create(std::size_t{1} << 20);
  MeshBytes a = pool->take(std::size_t{1} << 20);
  MeshBytes b = pool->take(std::size_t{1} << 20);
  MeshBytes small = pool->take(100);
  a = MeshBytes();
  b = MeshBytes();  // over the cap: freed, not kept
  small = MeshBytes();
  EXPECT_EQ(pool->pooledBytes(), std::size_t{1} << 20);
  MeshBytes kept = pool->take(std::size_t{1} << 20);
  pool.reset();
  std::memset(kept.data(), 1, kept.size());  // still valid after the pool is gone
  EXPECT_EQ(kept[kept.size() - 1], 1);
}

// Raw bytes into a lane from a plain socket: the reader must refuse them.
std::string readAfterRaw(const std::uint8_t* bytes, std::size_t n) {
  int fds[2];
  EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  auto lane = BulkLane::adopt(fds[0], 1024, BufferPool::create(0));
  EXPECT_EQ(::send(fds[1], bytes, n, 0), static_cast<ssize_t>(n));
  LaneFrames frames;
  std::string why;
  EXPECT_FALSE(lane->readFrames(frames, 1 << 20, &why));
  EXPECT_TRUE(frames.frames.empty());
  ::close(fds[1]);
  return why;
}

TEST(BulkLane, MalformedOrOversizedHeadersAreErrorsNotFrames) {
  std::uint8_t header[kFrameHeaderBytes] = {};
  std::memcpy(header, "junk", 4);
  EXPECT_NE(readAfterRaw(header, sizeof header).find("malformed frame header"), std::string::npos);
  const std::uint32_t magic = kLaneFrameMagic;
  std::memcpy(header, &magic, 4);
  const std::uint64_t huge = 4096;  // over the lane's 1024-byte limit
  std::memcpy(header + 24, &huge, 8);
  EXPECT_NE(readAfterRaw(header, sizeof header).find("limit 1024"), std::string::npos);
}

TEST(BulkLane, PeerClosingMidFrameIsAnErrorAndDeliversNothingPartial) {
  LanePair pair;
  pair.dialer->enqueue(1, 0, patterned(4 << 20, 1));
  std::string why;
  ASSERT_TRUE(pair.dialer->flush(&why)) << why;  // part of it, at least
  pair.dialer.reset();                           // closed mid-frame
  LaneFrames frames;
  const auto until = std::chrono::steady_clock::now() + kPatience;
  bool ok = true;
  while (ok && std::chrono::steady_clock::now() < until) {
    ok = pair.acceptor->readFrames(frames, std::size_t{64} << 20, &why);
  }
  EXPECT_FALSE(ok);
  EXPECT_TRUE(frames.frames.empty());
  EXPECT_TRUE(why.find("closed by the peer") != std::string::npos ||
              why.find("recv") != std::string::npos)
      << why;
}

TEST(BulkLane, ListenerRefusesABadHelloAndOneThatNeverComes) {
  std::string why;
  auto listener = LaneListener::open("127.0.0.1", &why);
  ASSERT_TRUE(listener) << why;
  auto connectRaw = [&] {
    auto probe = BulkLane::dial("127.0.0.1", listener->port(), 0, keyOf(0), kMaxFrame,
                                BufferPool::create(0), &why);
    EXPECT_TRUE(probe) << why;
    return probe;
  };
  // A stranger's bytes instead of a hello.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  {
    auto lane = connectRaw();  // only to learn that connects work; closed at once
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(listener->port()));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  const char junk[kHelloBytes] = "GET / HTTP/1.1\r\n\r\n";
  ASSERT_EQ(::send(fd, junk, sizeof junk, 0), static_cast<ssize_t>(sizeof junk));
  // A silent connection, refused after the hello timeout.
  int silent = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_EQ(::connect(silent, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  const auto until = std::chrono::steady_clock::now() + kPatience;
  while (listener->refused() < 3 && std::chrono::steady_clock::now() < until) {
    EXPECT_TRUE(listener->service(milliseconds(200)).empty());
    std::this_thread::sleep_for(milliseconds(5));
  }
  // The closed probe, the junk and the silent one.
  EXPECT_EQ(listener->refused(), 3);
  ::close(fd);
  ::close(silent);
}

TEST(BulkLane, ListenerKeepsAtMostABoundedNumberOfSilentConnections) {
  std::string why;
  auto listener = LaneListener::open("127.0.0.1", &why);
  ASSERT_TRUE(listener) << why;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(listener->port()));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const int extra = 10;
  std::vector<int> fds;
  for (std::size_t i = 0; i < LaneListener::kMaxPendingHellos + extra; ++i) {
    fds.push_back(::socket(AF_INET, SOCK_STREAM, 0));
    ASSERT_EQ(::connect(fds.back(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_TRUE(listener->service(milliseconds(5000)).empty());  // keeps the backlog short
  }
  EXPECT_TRUE(listener->service(milliseconds(5000)).empty());
  EXPECT_EQ(listener->refused(), extra);
  std::vector<int> polled;
  listener->pollFds(&polled);
  EXPECT_EQ(polled.size(), LaneListener::kMaxPendingHellos + 1);  // + the listening socket
  for (int fd : fds) ::close(fd);
}

TEST(BulkLane, DialingAClosedPortFailsWithTheReason) {
  std::string why;
  int port;
  {
    auto listener = LaneListener::open("127.0.0.1", &why);
    ASSERT_TRUE(listener) << why;
    port = listener->port();
  }  // closed: nothing listens there now
  auto lane =
      BulkLane::dial("127.0.0.1", port, 0, keyOf(0), kMaxFrame, BufferPool::create(0), &why);
  if (!lane) {
    EXPECT_NE(why.find("connect"), std::string::npos) << why;
    return;
  }
  bool ok = true;
  const auto until = std::chrono::steady_clock::now() + kPatience;
  while (ok && !lane->connected() && std::chrono::steady_clock::now() < until) {
    ok = lane->flush(&why);
    std::this_thread::sleep_for(milliseconds(1));
  }
  EXPECT_FALSE(ok);
  EXPECT_NE(why.find("connect"), std::string::npos) << why;
}

std::string congestionControl(int fd) {
  char name[16] = {};
  socklen_t len = sizeof name;
  if (::getsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, name, &len) != 0) return "?";
  return std::string(name, strnlen(name, sizeof name));
}

// What a fresh TCP socket gets: the system's congestion control.
std::string systemCongestionControl() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  const std::string name = congestionControl(fd);
  ::close(fd);
  return name;
}

TEST(BulkLane, ASameHostLaneDoesNotPaceWhereTheSystemWouldUseBbr) {
  const std::string system = systemCongestionControl();
  for (const bool unpaceLocal : {true, false}) {
    SCOPED_TRACE(unpaceLocal ? "unpaceLocal" : "system's choice");
    auto pool = BufferPool::create(std::size_t{16} << 20);
    std::string why;
    auto listener = LaneListener::open("127.0.0.1", &why, unpaceLocal);
    ASSERT_TRUE(listener) << why;
    auto dialer = BulkLane::dial("127.0.0.1", listener->port(), 3, keyOf(9), kMaxFrame, pool, &why,
                                 LaneOptions{unpaceLocal});
    ASSERT_TRUE(dialer) << why;
    const LaneListener::Arrival arrival = arrivalAt(*listener, *dialer);
    auto acceptor = BulkLane::adopt(arrival.fd, kMaxFrame, pool);
    // Only BBR paces by itself; any other choice is kept, as it is without
    // unpaceLocal.
    const bool unpaced = unpaceLocal && system.rfind("bbr", 0) == 0;
    for (const int fd : {dialer->fd(), acceptor->fd()}) {
      const std::string now = congestionControl(fd);
      if (unpaced) {
        EXPECT_TRUE(now == "cubic" || now == "reno") << now;
      } else {
        EXPECT_EQ(now, system);
      }
    }
    dialer->enqueue(5, 0, patterned(std::size_t{3} << 20, 1));
    const auto got = pump(*dialer, *acceptor, 1);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_TRUE(isPatterned(got[0].bytes, std::size_t{3} << 20, 1));
  }
}

// ---- cross-memory reads (LaneOptions::crossMemory) ----

constexpr LaneOptions kCrossMemory{false, true};

// Skips a test that needs cross-memory reads where this process may not make
// them (a seccomp filter); the lanes then carry bytes, as tested elsewhere.
#define SKIP_WITHOUT_CROSS_MEMORY()                                  \
  do {                                                               \
    std::string whyNot;                                              \
    if (!crossMemoryReadsPermitted(&whyNot)) GTEST_SKIP() << whyNot; \
  } while (false)

// Runs both sides' I/O until `done` or time is up; frames each side got go
// to `toAcceptor` / `toDialer`.
template <class Done>
bool settle(LanePair& pair, Done done, LaneFrames* toAcceptor = nullptr,
            LaneFrames* toDialer = nullptr) {
  LaneFrames ignoredA, ignoredD;
  const auto until = std::chrono::steady_clock::now() + kPatience;
  std::string why;
  while (!done() && std::chrono::steady_clock::now() < until) {
    EXPECT_TRUE(pair.dialer->flush(&why)) << why;
    EXPECT_TRUE(pair.acceptor->flush(&why)) << why;
    EXPECT_TRUE(pair.acceptor->readFrames(toAcceptor ? *toAcceptor : ignoredA, 64 << 20, &why))
        << why;
    EXPECT_TRUE(pair.dialer->readFrames(toDialer ? *toDialer : ignoredD, 64 << 20, &why)) << why;
  }
  return done();
}

// A sink that also records ACKs.
class AckedFrames : public LaneFrames {
 public:
  void acknowledged(std::uint64_t next) override { acks.push_back(next); }
  std::vector<std::uint64_t> acks;
};

TEST(BulkLane, CrossMemoryLanesReadLargeBodiesOnceAndSendSmallOnesAsBytes) {
  SKIP_WITHOUT_CROSS_MEMORY();
  LanePair pair(kCrossMemory, kCrossMemory);
  ASSERT_TRUE(settle(pair, [&] {
    return pair.dialer->sendsRemote() && pair.acceptor->sendsRemote() &&
           pair.dialer->readsRemote() && pair.acceptor->readsRemote();
  }));
  EXPECT_NE(pair.dialer->takeNote().find("cross-memory reads from process"), std::string::npos);
  EXPECT_EQ(pair.dialer->takeNote(), "");  // once
  const std::size_t big = std::size_t{5} << 20;
  EXPECT_TRUE(pair.dialer->enqueue(1, 0, patterned(big, 1)));
  EXPECT_FALSE(pair.dialer->enqueue(2, 1, patterned(kRemoteMinBytes - 1, 2)));
  EXPECT_TRUE(pair.dialer->enqueue(3, 2, patterned(kRemoteMinBytes, 3)));
  EXPECT_EQ(pair.dialer->describedBodies(), 2u);
  const auto got = pump(*pair.dialer, *pair.acceptor, 3);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_TRUE(got[0].remote);
  EXPECT_TRUE(isPatterned(got[0].bytes, big, 1));
  EXPECT_FALSE(got[1].remote);
  EXPECT_TRUE(isPatterned(got[1].bytes, kRemoteMinBytes - 1, 2));
  EXPECT_TRUE(got[2].remote);
  EXPECT_TRUE(isPatterned(got[2].bytes, kRemoteMinBytes, 3));
  // Described bodies are kept until the ACK that covers them.
  EXPECT_EQ(pair.dialer->describedBodies(), 2u);
  pair.acceptor->enqueueAck(1);
  AckedFrames acked;
  ASSERT_TRUE(settle(
      pair, [&] { return !acked.acks.empty(); }, nullptr, &acked));
  EXPECT_EQ(acked.acks, std::vector<std::uint64_t>{1});
  EXPECT_EQ(pair.dialer->describedBodies(), 1u);  // frame 2 still lent to the reader
  pair.dialer->acknowledged(3);
  EXPECT_EQ(pair.dialer->describedBodies(), 0u);
}

TEST(BulkLane, CrossMemoryNeedsBothSidesToOfferIt) {
  for (const bool dialerOffers : {true, false}) {
    SCOPED_TRACE(dialerOffers ? "only the dialer offers" : "only the acceptor offers");
    LanePair pair(dialerOffers ? kCrossMemory : LaneOptions{},
                  dialerOffers ? LaneOptions{} : kCrossMemory);
    pair.dialer->enqueue(1, 0, patterned(1 << 20, 1));
    pair.acceptor->enqueue(1, 0, patterned(1 << 20, 2));
    const auto there = pump(*pair.dialer, *pair.acceptor, 1);
    const auto back = pump(*pair.acceptor, *pair.dialer, 1);
    ASSERT_EQ(there.size(), 1u);
    ASSERT_EQ(back.size(), 1u);
    EXPECT_FALSE(there[0].remote);
    EXPECT_FALSE(back[0].remote);
    EXPECT_TRUE(isPatterned(there[0].bytes, 1 << 20, 1));
    EXPECT_FALSE(pair.dialer->sendsRemote() || pair.dialer->readsRemote());
    EXPECT_FALSE(pair.acceptor->sendsRemote() || pair.acceptor->readsRemote());
  }
}

TEST(BulkLane, ABodyTakenBackBeforeItIsReadFailsTheLaneAndDeliversNothing) {
  SKIP_WITHOUT_CROSS_MEMORY();
  LanePair pair(kCrossMemory, kCrossMemory);
  ASSERT_TRUE(settle(pair, [&] { return pair.dialer->sendsRemote(); }));
  // The test keeps the body's memory mapped (a lender's buffer outlives its
  // loan): what stops the read is the fence, not an unmapped page.
  zmq::message_t lent = patterned(1 << 20, 1);
  zmq::message_t stillMapped;
  stillMapped.copy(lent);  // shares the buffer
  ASSERT_TRUE(pair.dialer->enqueue(1, 0, std::move(lent), /*lent=*/true));
  ASSERT_TRUE(pair.dialer->enqueue(2, 1, patterned(1 << 20, 2), /*lent=*/false));
  std::string why;
  ASSERT_TRUE(pair.dialer->flush(&why)) << why;
  pair.dialer->detachLent();                      // its lender wants the memory back
  EXPECT_EQ(pair.dialer->describedBodies(), 1u);  // the one not lent stays
  LaneFrames got;
  bool ok = true;
  const auto until = std::chrono::steady_clock::now() + kPatience;
  while (ok && std::chrono::steady_clock::now() < until) {
    ok = pair.acceptor->readFrames(got, 64 << 20, &why);
  }
  EXPECT_FALSE(ok);
  EXPECT_NE(why.find("frame 0 was taken back by its sender"), std::string::npos) << why;
  EXPECT_TRUE(got.frames.empty());
}

// A peer that speaks the lane protocol by hand over a real loopback
// connection to a lane that offers cross-memory reads.
struct HandMadePeer {
  std::shared_ptr<BufferPool> pool = BufferPool::create(0);
  std::unique_ptr<LaneListener> listener;
  int fd = -1;
  std::unique_ptr<BulkLane> lane;

  HandMadePeer() {
    std::string why;
    listener = LaneListener::open("127.0.0.1", &why);
    EXPECT_TRUE(listener) << why;
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(listener->port()));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    std::uint8_t hello[kHelloBytes] = {'h', 'e', 'a', 'r', 't', 'h', 'L', '1', 1};
    EXPECT_EQ(::send(fd, hello, sizeof hello, 0), static_cast<ssize_t>(sizeof hello));
    const auto until = std::chrono::steady_clock::now() + kPatience;
    while (std::chrono::steady_clock::now() < until) {
      auto arrivals = listener->service(milliseconds(5000));
      if (!arrivals.empty()) {
        lane = BulkLane::adopt(arrivals.front().fd, kMaxFrame, pool, kCrossMemory,
                               arrivals.front().peerOnThisHost);
        break;
      }
      std::this_thread::sleep_for(milliseconds(1));
    }
    EXPECT_TRUE(lane);
  }
  ~HandMadePeer() { ::close(fd); }

  void send(LaneKind kind, std::uint64_t seq, std::uint64_t size, const void* body,
            std::size_t bodyBytes) {
    std::uint8_t h[kFrameHeaderBytes] = {};
    const std::uint32_t magic = kLaneFrameMagic;
    const auto k = static_cast<std::uint32_t>(kind);
    std::memcpy(h, &magic, 4);
    std::memcpy(h + 4, &k, 4);
    std::memcpy(h + 16, &seq, 8);
    std::memcpy(h + 24, &size, 8);
    ASSERT_EQ(::send(fd, h, sizeof h, 0), static_cast<ssize_t>(sizeof h));
    if (bodyBytes > 0) {
      ASSERT_EQ(::send(fd, body, bodyBytes, 0), static_cast<ssize_t>(bodyBytes));
    }
  }
  // Services the lane until it sent a frame of `kind` (others skipped): its
  // body.
  std::vector<std::uint8_t> expect(LaneKind kind) {
    std::string why;
    LaneFrames none;
    const auto until = std::chrono::steady_clock::now() + kPatience;
    while (std::chrono::steady_clock::now() < until) {
      EXPECT_TRUE(lane->readFrames(none, 1 << 20, &why)) << why;
      EXPECT_TRUE(lane->flush(&why)) << why;
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 10) <= 0) continue;
      std::uint8_t h[kFrameHeaderBytes];
      if (!readAll(h, sizeof h)) break;
      std::uint64_t size;
      std::uint32_t k;
      std::memcpy(&k, h + 4, 4);
      std::memcpy(&size, h + 24, 8);
      std::vector<std::uint8_t> body(size);
      if (!readAll(body.data(), body.size())) break;
      if (k == static_cast<std::uint32_t>(kind)) return body;
    }
    ADD_FAILURE() << "no frame of kind " << static_cast<int>(kind);
    return {};
  }
  bool readAll(std::uint8_t* into, std::size_t n) {
    timeval tv{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    for (std::size_t have = 0; have < n;) {
      const ssize_t got = ::recv(fd, into + have, n - have, 0);
      if (got <= 0) return false;
      have += static_cast<std::size_t>(got);
    }
    return true;
  }
  // Reads what the lane got until it fails or `patience` passes; why.
  std::string readUntilError(LaneFrames* frames) {
    std::string why;
    const auto until = std::chrono::steady_clock::now() + milliseconds(3000);
    while (std::chrono::steady_clock::now() < until) {
      if (!lane->readFrames(*frames, 64 << 20, &why)) return why;
    }
    return "";
  }
  // OFFER our pid and answer the lane's CHALLENGE with a PROOF pointing at
  // `proof` (which holds the challenge if `honest`).
  void prove(std::array<std::uint8_t, kChallengeBytes>* proof, bool honest) {
    const std::uint64_t pid = static_cast<std::uint64_t>(::getpid());
    send(LaneKind::kOffer, 0, 8, &pid, 8);
    LaneFrames none;
    const auto until = std::chrono::steady_clock::now() + kPatience;
    std::string why;
    const auto challenge = expect(LaneKind::kChallenge);
    ASSERT_EQ(challenge.size(), kChallengeBytes);
    std::memcpy(proof->data(), challenge.data(), kChallengeBytes);
    if (!honest) (*proof)[0] ^= 0xFF;
    const auto at = static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(proof->data()));
    send(LaneKind::kProof, 0, 8, &at, 8);
    while (lane->takeNote().empty() && std::chrono::steady_clock::now() < until) {
      ASSERT_TRUE(lane->readFrames(none, 1 << 20, &why)) << why;
    }
  }
};

TEST(BulkLane, AProofThatDoesNotMatchLeavesTheLaneOnBytesAndRefusesDescriptors) {
  HandMadePeer peer;
  std::array<std::uint8_t, kChallengeBytes> proof{};
  peer.prove(&proof, /*honest=*/false);
  EXPECT_FALSE(peer.lane->readsRemote());
  const std::uint64_t descriptor[3] = {0, 0, 0};
  peer.send(LaneKind::kRemoteData, 0, 1 << 20, descriptor, sizeof descriptor);
  LaneFrames got;
  const std::string why = peer.readUntilError(&got);
  EXPECT_NE(why.find("REMOTE_DATA frame on a lane without cross-memory reads"), std::string::npos)
      << why;
  EXPECT_TRUE(got.frames.empty());
}

TEST(BulkLane, DescriptorsThatPointNowhereOrWereTakenBackAreErrorsNotFrames) {
  SKIP_WITHOUT_CROSS_MEMORY();
  for (const bool badAddress : {true, false}) {
    SCOPED_TRACE(badAddress ? "body at an unmapped address" : "fence revoked");
    HandMadePeer peer;
    std::array<std::uint8_t, kChallengeBytes> proof{};
    peer.prove(&proof, /*honest=*/true);
    ASSERT_TRUE(peer.lane->readsRemote());
    static const std::vector<std::uint8_t> body(1 << 20, 7);
    static const std::uint64_t fence = 0;  // revoked
    const std::uint64_t descriptor[3] = {
        badAddress ? std::uint64_t{16} : reinterpret_cast<std::uintptr_t>(body.data()),
        reinterpret_cast<std::uintptr_t>(&fence), 42};
    peer.send(LaneKind::kRemoteData, 0, body.size(), descriptor, sizeof descriptor);
    LaneFrames got;
    const std::string why = peer.readUntilError(&got);
    EXPECT_NE(why.find(badAddress ? "cross-memory read of process" : "taken back"),
              std::string::npos)
        << why;
    EXPECT_TRUE(got.frames.empty());
  }
}

TEST(BulkLane, ControlFramesOutOfTurnAreErrors) {
  {
    HandMadePeer peer;  // ACCEPT without a PROOF from the lane
    peer.send(LaneKind::kAccept, 0, 0, nullptr, 0);
    LaneFrames got;
    EXPECT_NE(peer.readUntilError(&got).find("ACCEPT that was not asked for"), std::string::npos);
  }
  {
    HandMadePeer peer;  // a PROOF without an OFFER
    const std::uint64_t at = 0;
    peer.send(LaneKind::kProof, 0, 8, &at, 8);
    LaneFrames got;
    EXPECT_NE(peer.readUntilError(&got).find("PROOF that was not asked for"), std::string::npos);
  }
  {
    HandMadePeer peer;  // an OFFER with a body of the wrong size
    const std::uint64_t pid[2] = {1, 2};
    peer.send(LaneKind::kOffer, 0, 16, pid, 16);
    LaneFrames got;
    EXPECT_NE(peer.readUntilError(&got).find("control frame of kind 2 with 16 bytes"),
              std::string::npos);
  }
}

TEST(BulkLane, AListenerPortOutOfRangeIsRefusedWithTheReason) {
  for (const int port : {-1, 65536}) {
    std::string why;
    EXPECT_FALSE(LaneListener::open("127.0.0.1", &why, false, port));
    EXPECT_NE(why.find("127.0.0.1:" + std::to_string(port) + "' is not a numeric address and port"),
              std::string::npos)
        << why;
  }
}

TEST(BulkLane, OnlyNumericHostsQualify) {
  EXPECT_EQ(numericHostOf("tcp://127.0.0.1:5555"), "127.0.0.1");
  EXPECT_EQ(numericHostOf("tcp://[::1]:5555"), "::1");
  EXPECT_EQ(numericHostOf("tcp://relay.example:5555"), "");
  EXPECT_EQ(numericHostOf("ipc:///tmp/x"), "");
  std::string why;
  EXPECT_FALSE(LaneListener::open("localhost", &why));
  EXPECT_NE(why.find("not a numeric address"), std::string::npos) << why;
}

}  // namespace
}  // namespace zmqlane
}  // namespace hearth
