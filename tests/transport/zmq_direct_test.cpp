// Direct links of the zmq Mesh backend (docs/transport_protocol.md): nodes
// with a listen endpoint are probed by the relay and dialed by their peers;
// traffic then bypasses the relay. Paths (Mesh::pathTo), the fallback to the
// relay when a link fails, in-order delivery across a path switch, a lost
// frame surfacing as a typed error, CURVE on direct links, strangers at a
// listener, and the conformance suite with direct links. All on 127.0.0.1.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cross_memory.h"
#include "hearth/transport/curve_keys.h"
#include "hearth/transport/inproc_mesh.h"
#include "hearth/transport/mesh_collectives.h"
#include "hearth/transport/zmq_mesh.h"
#include "hearth/transport/zmq_relay.h"
#include "mesh_conformance.h"
#include "zmq_test_util.h"

namespace hearth {
namespace testing {
namespace {

using Clock = std::chrono::steady_clock;
constexpr Millis kLong{10000};
constexpr char kRun[] = "direct-run";
constexpr char kToken[] = "direct-token";
constexpr char kLoopbackAny[] = "tcp://127.0.0.1:0";

MeshBytes numbered(std::uint32_t i, std::size_t size = 8) {
  MeshBytes b(std::max<std::size_t>(size, 4), static_cast<std::uint8_t>(i * 7));
  for (int k = 0; k < 4; ++k) b[k] = static_cast<std::uint8_t>(i >> (8 * k));
  return b;
}
std::uint32_t numberOf(const MeshBytes& b) {
  std::uint32_t i = 0;
  for (int k = 0; k < 4; ++k) i |= std::uint32_t{b.at(k)} << (8 * k);
  return i;
}

std::unique_ptr<ZmqRelay> startRelay(int worldSize, const std::string& secretKeyFile = "",
                                     Millis probeTimeout = Millis(1000)) {
  ZmqRelayOptions options;
  options.runId = kRun;
  options.worldSize = worldSize;
  options.joinToken = kToken;
  options.heartbeatTimeout = Millis(1500);
  options.probeTimeout = probeTimeout;
  options.curveSecretKeyFile = secretKeyFile;
  if (std::getenv("HEARTH_TEST_VERBOSE") == nullptr) options.log = [](const std::string&) {};
  auto relay = std::make_unique<ZmqRelay>(options);
  relay->start();
  return relay;
}

ZmqMeshOptions nodeOptions(const ZmqRelay& relay, const std::string& listen = kLoopbackAny) {
  ZmqMeshOptions options;
  options.relayEndpoint = relay.endpoint();
  options.runId = kRun;
  options.joinToken = kToken;
  options.relayPublicKey = relay.publicKey();
  options.joinTimeout = kLong;
  options.heartbeatInterval = Millis(100);
  options.heartbeatTimeout = Millis(1500);
  options.listenEndpoint = listen;
  options.directConnectTimeout = Millis(2000);
  if (std::getenv("HEARTH_TEST_VERBOSE") == nullptr) options.log = [](const std::string&) {};
  return options;
}

// Joins one node per options entry concurrently (requestedRank = its index);
// returns them ordered by rank.
std::vector<std::unique_ptr<Mesh>> joinAll(std::vector<ZmqMeshOptions> options) {
  std::vector<std::future<std::unique_ptr<Mesh>>> joins;
  for (std::size_t i = 0; i < options.size(); ++i) {
    options[i].requestedRank = static_cast<int>(i);
    joins.push_back(std::async(std::launch::async, [o = options[i]] { return connectZmqMesh(o); }));
  }
  std::vector<std::unique_ptr<Mesh>> ranks;
  for (auto& j : joins) ranks.push_back(j.get());
  return ranks;
}

// Waits (bounded) until pathTo(peer) == want.
bool waitForPath(const Mesh& mesh, int peer, const std::string& want, Millis timeout) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (mesh.pathTo(peer) == want) return true;
    std::this_thread::sleep_for(Millis(10));
  }
  return mesh.pathTo(peer) == want;
}

// Sends n numbered messages a -> b on `tag` and checks they arrive in order.
void exchangeInOrder(Mesh& a, Mesh& b, MeshTag tag, int n, std::size_t size = 64) {
  std::vector<std::unique_ptr<MeshRequest>> sends;
  for (int i = 0; i < n; ++i) sends.push_back(a.isend(b.rank(), tag, numbered(i, size)));
  for (int i = 0; i < n; ++i) {
    ASSERT_EQ(numberOf(b.recv(a.rank(), tag, kLong)), static_cast<std::uint32_t>(i));
  }
  for (auto& s : sends) ASSERT_TRUE(s->wait(kLong));
}

class TempKeys {
 public:
  std::string relayKeyFile() {
    const std::string path = dir_.file("relay.key");
    writeCurveSecretKeyFile(path, generateCurveKeyPair(), false);
    return path;
  }

 private:
  zmqtest::TempDir dir_{"hearth_direct_test"};
};

TEST(ZmqDirect, TwoListenersGoDirectBothWaysAndBypassTheRelay) {
  auto relay = startRelay(2);
  auto ranks = joinAll({nodeOptions(*relay), nodeOptions(*relay)});
  EXPECT_EQ(ranks[0]->pathTo(0), "self");
  EXPECT_EQ(ranks[0]->pathTo(1), "direct");
  EXPECT_EQ(ranks[1]->pathTo(0), "direct");
  EXPECT_THROW(ranks[0]->pathTo(2), MeshUsageError);
  exchangeInOrder(*ranks[0], *ranks[1], 1, 200);
  exchangeInOrder(*ranks[1], *ranks[0], 1, 200);
  MeshBytes big(8 << 20);
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<std::uint8_t>(i * 13 + 1);
  ranks[0]->send(1, 2, big, kLong);
  EXPECT_EQ(ranks[1]->recv(0, 2, kLong), big);
  const auto stats = relay->stats();
  EXPECT_EQ(stats.forwarded, 0u) << "direct traffic went through the relay";
  EXPECT_EQ(stats.forwardedAcks, 0u) << "acknowledgements of direct traffic went through the relay";
  EXPECT_EQ(stats.probesOk, 2u);
  EXPECT_EQ(stats.probesFailed, 0u);
}

TEST(ZmqDirect, UnreachableAdvertisedEndpointStaysRelayed) {
  auto relay = startRelay(2, "", Millis(400));
  auto unreachable = nodeOptions(*relay);
  unreachable.advertiseEndpoint = "tcp://127.0.0.1:1";  // nobody listens there
  const auto start = Clock::now();
  auto ranks = joinAll({unreachable, nodeOptions(*relay, "")});
  EXPECT_LT(msSince(start), 3000);
  EXPECT_EQ(ranks[0]->pathTo(1), "relay");
  EXPECT_EQ(ranks[1]->pathTo(0), "relay");
  exchangeInOrder(*ranks[0], *ranks[1], 1, 20);
  exchangeInOrder(*ranks[1], *ranks[0], 1, 20);
  const auto stats = relay->stats();
  EXPECT_EQ(stats.forwarded, 40u);
  EXPECT_EQ(stats.probesOk, 0u);
  EXPECT_EQ(stats.probesFailed, 1u);
}

TEST(ZmqDirect, OnlyPairsWithAReachableEndGoDirect) {
  // Rank 0 accepts direct links; ranks 1 and 2 accept none (behind NAT).
  auto relay = startRelay(3);
  auto ranks = joinAll({nodeOptions(*relay), nodeOptions(*relay, ""), nodeOptions(*relay, "")});
  EXPECT_EQ(ranks[0]->pathTo(1), "direct");
  EXPECT_EQ(ranks[0]->pathTo(2), "direct");
  EXPECT_EQ(ranks[1]->pathTo(0), "direct");
  EXPECT_EQ(ranks[2]->pathTo(0), "direct");
  EXPECT_EQ(ranks[1]->pathTo(2), "relay");
  EXPECT_EQ(ranks[2]->pathTo(1), "relay");
  exchangeInOrder(*ranks[1], *ranks[0], 1, 10);
  exchangeInOrder(*ranks[0], *ranks[2], 1, 10);
  EXPECT_EQ(relay->stats().forwarded, 0u);
  exchangeInOrder(*ranks[1], *ranks[2], 1, 10);
  exchangeInOrder(*ranks[2], *ranks[1], 1, 10);
  EXPECT_EQ(zmqtest::forwardedOnceAtLeast(*relay, 20), 20u);
}

TEST(ZmqDirect, BrokenLinkFallsBackToTheRelayAndOrderHolds) {
  auto relay = startRelay(2);
  auto ranks = joinAll({nodeOptions(*relay), nodeOptions(*relay)});
  ASSERT_EQ(ranks[0]->pathTo(1), "direct");
  exchangeInOrder(*ranks[0], *ranks[1], 5, 100);
  exchangeInOrder(*ranks[1], *ranks[0], 5, 100);
  zmqtesting::breakDirectLinks(*ranks[1]);  // rank 1 accepted the link: its listener closes
  EXPECT_TRUE(waitForPath(*ranks[1], 0, "relay", Millis(1000)));
  EXPECT_TRUE(waitForPath(*ranks[0], 1, "relay", Millis(3000)));
  // The same tag carries on, in order, through the relay.
  exchangeInOrder(*ranks[0], *ranks[1], 5, 100);
  exchangeInOrder(*ranks[1], *ranks[0], 5, 100);
  // 200 frames after the break, plus the frames sent over the link (200)
  // that were not acknowledged yet when it broke, resent once each (the
  // receiver drops the copies it has).
  const std::uint64_t forwarded = zmqtest::forwardedOnceAtLeast(*relay, 200);
  EXPECT_GE(forwarded, 200u);
  EXPECT_LE(forwarded, 200u + 200u);
  EXPECT_TRUE(ranks[0]->isPeerAlive(1));
  EXPECT_TRUE(ranks[1]->isPeerAlive(0));
}

TEST(ZmqDirect, DroppedLinkIsDialedAgainAndTrafficGoesDirectAgain) {
  auto relay = startRelay(2);
  auto ranks = joinAll({nodeOptions(*relay), nodeOptions(*relay)});
  ASSERT_EQ(ranks[0]->pathTo(1), "direct");  // rank 0 dials rank 1
  exchangeInOrder(*ranks[0], *ranks[1], 5, 50);
  zmqtesting::dropDirectConnections(*ranks[0]);  // the dialer's connection drops
  EXPECT_TRUE(waitForPath(*ranks[0], 1, "relay", Millis(1000)));
  EXPECT_TRUE(waitForPath(*ranks[1], 0, "relay", Millis(3000)));
  // Meanwhile the relay carries the traffic, in order.
  exchangeInOrder(*ranks[0], *ranks[1], 5, 50);
  exchangeInOrder(*ranks[1], *ranks[0], 5, 50);
  EXPECT_GE(zmqtest::forwardedOnceAtLeast(*relay, 100), 100u);
  // About a second later the dialer dials again and both ends go direct.
  ASSERT_TRUE(waitForPath(*ranks[0], 1, "direct", Millis(8000)));
  ASSERT_TRUE(waitForPath(*ranks[1], 0, "direct", Millis(3000)));
  const std::uint64_t forwardedBefore = relay->stats().forwarded;
  exchangeInOrder(*ranks[0], *ranks[1], 5, 200);
  exchangeInOrder(*ranks[1], *ranks[0], 5, 200);
  EXPECT_EQ(relay->stats().forwarded, forwardedBefore) << "traffic still went through the relay";
  EXPECT_TRUE(ranks[0]->isPeerAlive(1));
  EXPECT_TRUE(ranks[1]->isPeerAlive(0));
  EXPECT_EQ(ranks[0]->epoch(), 0u);
}

TEST(ZmqDirect, LinkBrokenMidStreamLosesNothingAndKeepsOrder) {
  // A stream of numbered messages while the link dies under it: the frames
  // the receiver had not acknowledged are resent through the relay, so every
  // message arrives, each exactly once and in order, without a hang.
  auto relay = startRelay(2);
  auto ranks = joinAll({nodeOptions(*relay), nodeOptions(*relay)});
  ASSERT_EQ(ranks[0]->pathTo(1), "direct");
  constexpr int kCount = 3000;
  std::atomic<bool> broke{false};
  auto sender = std::async(std::launch::async, [&] {
    std::vector<std::unique_ptr<MeshRequest>> sends;
    for (int i = 0; i < kCount; ++i) {
      sends.push_back(ranks[0]->isend(1, 9, numbered(i, 4096)));
      if (i == kCount / 3) {
        zmqtesting::breakDirectLinks(*ranks[0]);
        broke = true;
      }
      if (i % 100 == 0) std::this_thread::sleep_for(Millis(2));
    }
  });
  int received = 0;
  const auto start = Clock::now();
  for (; received < kCount; ++received) {
    const auto bytes = ranks[1]->recv(0, 9, kLong);
    ASSERT_EQ(numberOf(bytes), static_cast<std::uint32_t>(received)) << "out of order";
  }
  EXPECT_THROW(ranks[1]->recv(0, 9, Millis(200)), MeshTimeout);  // no copy delivered twice
  sender.get();
  EXPECT_TRUE(broke);
  EXPECT_LT(msSince(start), 9000);
  EXPECT_EQ(received, kCount);
  EXPECT_EQ(ranks[0]->pathTo(1), "relay");
}

TEST(ZmqDirect, LostFrameIsATypedErrorNamingThePeer) {
  auto relay = startRelay(2);
  auto ranks = joinAll({nodeOptions(*relay), nodeOptions(*relay)});
  ranks[0]->send(1, 3, numbered(0), kLong);
  EXPECT_EQ(numberOf(ranks[1]->recv(0, 3, kLong)), 0u);
  zmqtesting::skipSequenceNumber(*ranks[0], 1);  // as if frame 1 were lost with a link
  ranks[0]->send(1, 3, numbered(2), kLong);
  auto pending = ranks[1]->irecv(0, 3);
  const auto start = Clock::now();
  try {
    pending->wait(kLong);
    FAIL() << "a recv behind a lost frame succeeded";
  } catch (const MeshPeerLost& e) {
    EXPECT_EQ(e.peer(), 0);
    EXPECT_NE(std::string(e.what()).find("frames 1..1 from rank 0 never arrived"),
              std::string::npos)
        << e.what();
  }
  const long took = msSince(start);
  EXPECT_LT(took, 1500 + 1000);  // heartbeatTimeout plus slack, not the recv's 10 s
  EXPECT_FALSE(ranks[1]->isPeerAlive(0));
  EXPECT_EQ(ranks[1]->epoch(), 1u);
}

TEST(ZmqDirect, FenceRevealsFramesLostWithALinkEvenWithoutLaterFrames) {
  auto relay = startRelay(2);
  auto ranks = joinAll({nodeOptions(*relay), nodeOptions(*relay)});
  ranks[0]->send(1, 3, numbered(0), kLong);
  EXPECT_EQ(numberOf(ranks[1]->recv(0, 3, kLong)), 0u);
  auto pending = ranks[1]->irecv(0, 3);
  zmqtesting::skipSequenceNumber(*ranks[0], 1);  // frame 1 "was sent" on the link and lost
  std::this_thread::sleep_for(Millis(200));      // (applied by rank 0's I/O thread)
  zmqtesting::breakDirectLinks(*ranks[0]);       // the FENCE through the relay says 2 were sent
  try {
    pending->wait(kLong);
    FAIL() << "a recv behind a lost frame succeeded";
  } catch (const MeshPeerLost& e) {
    EXPECT_EQ(e.peer(), 0);
    EXPECT_NE(std::string(e.what()).find("frames 1..1 from rank 0 never arrived"),
              std::string::npos)
        << e.what();
  }
}

TEST(ZmqDirect, RelayRestartKeepsDirectLinksAndRelayedPairsCarryOn) {
  auto relay = startRelay(3);
  const std::string endpoint = relay->endpoint();
  std::vector<ZmqMeshOptions> options = {nodeOptions(*relay), nodeOptions(*relay, ""),
                                         nodeOptions(*relay, "")};
  auto ranks = joinAll(options);
  ASSERT_EQ(ranks[1]->pathTo(0), "direct");
  ASSERT_EQ(ranks[1]->pathTo(2), "relay");
  exchangeInOrder(*ranks[1], *ranks[2], 4, 20);
  relay.reset();
  // Direct links do not need the relay.
  exchangeInOrder(*ranks[1], *ranks[0], 4, 20);
  // Relayed traffic issued while no relay runs waits and arrives after the restart.
  std::vector<std::unique_ptr<MeshRequest>> sends;
  for (int i = 20; i < 40; ++i) sends.push_back(ranks[1]->isend(2, 4, numbered(i)));
  std::this_thread::sleep_for(Millis(300));
  ZmqRelayOptions again;
  again.bindEndpoint = endpoint;
  again.runId = kRun;
  again.worldSize = 3;
  again.joinToken = kToken;
  again.log = [](const std::string&) {};
  relay = std::make_unique<ZmqRelay>(again);
  relay->start();
  for (int i = 20; i < 40; ++i) {
    EXPECT_EQ(numberOf(ranks[2]->recv(1, 4, kLong)), static_cast<std::uint32_t>(i));
  }
  exchangeInOrder(*ranks[2], *ranks[1], 4, 20);
  EXPECT_EQ(ranks[1]->pathTo(0), "direct");
  EXPECT_EQ(ranks[2]->pathTo(1), "relay");
  for (int r = 0; r < 3; ++r) EXPECT_EQ(ranks[r]->epoch(), 0u);
}

TEST(ZmqDirect, FramesSentJustBeforeLeavingStillArrive) {
  // PEER_LOST through the relay can overtake the last frames on the direct
  // link: the loss waits until that link has drained and closed.
  auto relay = startRelay(2);
  auto ranks = joinAll({nodeOptions(*relay), nodeOptions(*relay)});
  ASSERT_EQ(ranks[0]->pathTo(1), "direct");
  std::vector<std::unique_ptr<MeshRequest>> sends;
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 200; ++i)
      sends.push_back(ranks[0]->isend(1, 6 + round, numbered(i, 16384)));
  }
  for (auto& send : sends) ASSERT_TRUE(send->wait(kLong));  // handed to libzmq
  sends.clear();
  ranks[0].reset();  // leaves (LEAVE) right after
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 200; ++i) {
      ASSERT_EQ(numberOf(ranks[1]->recv(0, 6 + round, kLong)), static_cast<std::uint32_t>(i));
    }
  }
  EXPECT_THROW(ranks[1]->recv(0, 6, kLong), MeshPeerLost);
  EXPECT_FALSE(ranks[1]->isPeerAlive(0));
}

TEST(ZmqDirect, FramesSentBeforeLeavingArriveWhileThePeerKeepsSending) {
  // The peer's traffic reaches the leaving node while it closes: a socket
  // closed with unread bytes resets the connection, which would take the
  // leaving node's last frames with it. A leaving node therefore waits until
  // its frames are acknowledged before it closes.
  auto relay = startRelay(2);
  auto ranks = joinAll({nodeOptions(*relay), nodeOptions(*relay)});
  ASSERT_EQ(ranks[0]->pathTo(1), "direct");
  std::atomic<bool> stop{false};
  std::thread chatter([&] {
    for (std::uint32_t i = 0; !stop.load(); ++i) {
      try {
        ranks[1]->send(0, 20, numbered(i, 4096), kLong);
      } catch (const MeshError&) {
        return;  // rank 0 is gone
      }
    }
  });
  struct Joiner {  // also when an assertion returns early
    std::atomic<bool>& stop;
    std::thread& thread;
    ~Joiner() {
      stop = true;
      thread.join();
    }
  } joiner{stop, chatter};
  std::vector<std::unique_ptr<MeshRequest>> sends;
  for (int i = 0; i < 600; ++i) sends.push_back(ranks[0]->isend(1, 21, numbered(i, 16384)));
  for (auto& send : sends) ASSERT_TRUE(send->wait(kLong));
  sends.clear();
  ranks[0].reset();  // leaves right after, with the peer's frames arriving
  for (int i = 0; i < 600; ++i) {
    ASSERT_EQ(numberOf(ranks[1]->recv(0, 21, kLong)), static_cast<std::uint32_t>(i));
  }
  EXPECT_THROW(ranks[1]->recv(0, 21, kLong), MeshPeerLost);
}

TEST(ZmqDirect, CurveLinksCarryTrafficWithoutTheRelay) {
  TempKeys keys;
  auto relay = startRelay(3, keys.relayKeyFile());
  ASSERT_FALSE(relay->publicKey().empty());
  auto ranks = joinAll({nodeOptions(*relay), nodeOptions(*relay), nodeOptions(*relay, "")});
  EXPECT_EQ(ranks[0]->pathTo(1), "direct");
  EXPECT_EQ(ranks[2]->pathTo(1), "direct");
  exchangeInOrder(*ranks[0], *ranks[1], 1, 50, 100000);
  exchangeInOrder(*ranks[2], *ranks[1], 1, 50);
  exchangeInOrder(*ranks[1], *ranks[2], 1, 50);
  EXPECT_EQ(relay->stats().forwarded, 0u);
  EXPECT_EQ(relay->stats().probesOk, 2u);
  // A dropped CURVE link is dialed again, with the keys checked again.
  zmqtesting::dropDirectConnections(*ranks[2]);  // rank 2 dialed rank 1
  EXPECT_TRUE(waitForPath(*ranks[2], 1, "relay", Millis(1000)));
  exchangeInOrder(*ranks[2], *ranks[1], 1, 20);
  ASSERT_TRUE(waitForPath(*ranks[2], 1, "direct", Millis(8000)));
  ASSERT_TRUE(waitForPath(*ranks[1], 2, "direct", Millis(3000)));
  const std::uint64_t forwardedBefore = relay->stats().forwarded;
  exchangeInOrder(*ranks[2], *ranks[1], 1, 50);
  exchangeInOrder(*ranks[1], *ranks[2], 1, 50);
  EXPECT_EQ(relay->stats().forwarded, forwardedBefore);
}

// A hand-made DEALER that dials `endpoint` and sends DIRECT_HELLO claiming
// to be incarnation `incarnation` of `rank`, with this run's id and `token`.
zmq::socket_t dialWithHello(zmq::context_t& ctx, const std::string& endpoint, std::uint8_t rank,
                            std::uint8_t incarnation, const std::string& token) {
  zmq::socket_t socket(ctx, zmq::socket_type::dealer);
  socket.set(zmq::sockopt::linger, 0);
  socket.connect(endpoint);
  std::vector<zmq::message_t> hello;
  hello.push_back(zmqtest::header(
      {zmqtest::kWireVersion, 12, rank, 0, 0, 0, incarnation, 0, 0, 0, 0, 0, 0, 0}));
  hello.emplace_back(std::string(kRun));
  hello.emplace_back(token);
  zmq::send_multipart(socket, hello);
  return socket;
}

// The first reply on a hand-made socket within `patience`, or none.
std::vector<zmq::message_t> replyWithin(zmq::socket_t& socket, Millis patience) {
  std::vector<zmq::message_t> reply;
  zmq::pollitem_t items[] = {{socket.handle(), 0, ZMQ_POLLIN, 0}};
  if (zmq::poll(items, 1, patience) == 1 &&
      !zmq::recv_multipart(socket, std::back_inserter(reply))) {
    reply.clear();
  }
  return reply;
}

// Rank 0 listens on a free loopback port known in advance (so that a
// hand-made socket can dial it too) and logs into `lines`; rank 1 dials it.
struct ListenerAndDialer {
  explicit ListenerAndDialer(bool lanes = true, bool crossMemoryLanes = true,
                             int listenerLanePort = 0)
      : bulkLanes(lanes), crossMemory(crossMemoryLanes), lanePort(listenerLanePort) {}
  bool bulkLanes;    // ZmqMeshOptions::bulkLanes of both nodes
  bool crossMemory;  // ZmqMeshOptions::crossMemoryLanes of both nodes
  int lanePort;      // ZmqMeshOptions::lanePort of the listening node
  std::string endpoint = freeLoopbackEndpoint();
  std::unique_ptr<ZmqRelay> relay = startRelay(2);
  std::mutex linesMu;
  std::vector<std::string> lines;
  std::vector<std::unique_ptr<Mesh>> ranks = join();

  static std::string freeLoopbackEndpoint() {
    zmq::context_t ctx;
    zmq::socket_t probe(ctx, zmq::socket_type::router);
    probe.set(zmq::sockopt::linger, 0);
    probe.bind(kLoopbackAny);
    return probe.get(zmq::sockopt::last_endpoint);
  }
  std::vector<std::unique_ptr<Mesh>> join() {
    auto listening = nodeOptions(*relay, endpoint);
    listening.log = [this](const std::string& line) {
      std::lock_guard<std::mutex> lock(linesMu);
      lines.push_back(line);
    };
    listening.bulkLanes = bulkLanes;
    listening.crossMemoryLanes = crossMemory;
    listening.lanePort = lanePort;
    auto dialing = nodeOptions(*relay, "");
    dialing.bulkLanes = bulkLanes;
    dialing.crossMemoryLanes = crossMemory;
    return joinAll({listening, dialing});
  }
  // A hand-made DEALER that dials rank 0's listener and sends DIRECT_HELLO
  // claiming rank 1 with `token`.
  zmq::socket_t dialAsRank1(zmq::context_t& ctx, const std::string& token) const {
    return dialWithHello(ctx, endpoint, 1, 0, token);
  }
  // Whether rank 0 logs a line containing `text` within `patience`.
  bool logsWithin(const std::string& text, Millis patience) {
    const auto until = std::chrono::steady_clock::now() + patience;
    while (!logged(text) && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(Millis(5));
    }
    return logged(text);
  }
  // Whether rank 0 logged a line containing `text`.
  bool logged(const std::string& text) {
    std::lock_guard<std::mutex> lock(linesMu);
    return std::any_of(lines.begin(), lines.end(), [&](const std::string& line) {
      return line.find(text) != std::string::npos;
    });
  }
};

TEST(ZmqDirect, StrangersAtAListenerAreRefusedAndIgnored) {
  ListenerAndDialer run;
  ASSERT_EQ(run.ranks[1]->pathTo(0), "direct");
  auto& ranks = run.ranks;

  zmq::context_t ctx;
  zmq::socket_t stranger = run.dialAsRank1(ctx, "guessed-token");
  zmq::pollitem_t items[] = {{stranger.handle(), 0, ZMQ_POLLIN, 0}};
  ASSERT_EQ(zmq::poll(items, 1, kLong), 1);
  std::vector<zmq::message_t> reply;
  ASSERT_TRUE(zmq::recv_multipart(stranger, std::back_inserter(reply)));
  ASSERT_EQ(reply.size(), 2u);
  EXPECT_EQ(static_cast<const std::uint8_t*>(reply[0].data())[1], 3);  // REJECT
  EXPECT_NE(reply[1].to_string().find("join token"), std::string::npos) << reply[1].to_string();
  {
    // DATA from an unadmitted connection is ignored, not delivered.
    std::vector<zmq::message_t> data;
    std::uint8_t header[30] = {zmqtest::kWireVersion, 5, 1};
    header[6] = 3;  // tag 3
    data.emplace_back(header, sizeof(header));
    data.emplace_back(std::string("forged"));
    zmq::send_multipart(stranger, data);
  }
  // The real rank 1 is unaffected and its frames on tag 3 are the only ones.
  ranks[1]->send(0, 3, numbered(42), kLong);
  EXPECT_EQ(numberOf(ranks[0]->recv(1, 3, kLong)), 42u);
  EXPECT_THROW(ranks[0]->recv(1, 3, Millis(200)), MeshTimeout);
  EXPECT_EQ(ranks[1]->pathTo(0), "direct");
  EXPECT_TRUE(run.logged("refused a direct link"));
}

TEST(ZmqDirect, AckClaimingAnotherSenderOnADirectLinkDropsThatPeer) {
  ListenerAndDialer run;
  ASSERT_EQ(run.ranks[1]->pathTo(0), "direct");
  auto& ranks = run.ranks;

  // A connection that knows the run id and token dials as rank 1 (taken as
  // rank 1 dialing again), then sends an ACK that names rank 0 as its sender.
  zmq::context_t ctx;
  zmq::socket_t forger = run.dialAsRank1(ctx, kToken);
  zmq::pollitem_t items[] = {{forger.handle(), 0, ZMQ_POLLIN, 0}};
  ASSERT_EQ(zmq::poll(items, 1, kLong), 1);
  std::vector<zmq::message_t> reply;
  ASSERT_TRUE(zmq::recv_multipart(forger, std::back_inserter(reply)));
  ASSERT_EQ(static_cast<const std::uint8_t*>(reply[0].data())[1], 13);  // DIRECT_WELCOME
  // ACK: i32 sender 0 (not 1), u64 next 1, u64 incarnation 0.
  std::array<zmq::message_t, 1> ack{zmqtest::header(
      {zmqtest::kWireVersion, 15, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})};
  zmq::send_multipart(forger, ack);

  EXPECT_THROW(ranks[0]->recv(1, 3, kLong), MeshPeerLost);  // rank 1 can no longer be trusted
  EXPECT_FALSE(ranks[0]->isPeerAlive(1));
  EXPECT_TRUE(run.logged("ACK claims to come from rank 0"));
}

TEST(ZmqDirect, BadListenOptionsAreUsageErrors) {
  auto relay = startRelay(1);
  auto options = nodeOptions(*relay, "tcp://0.0.0.0:0");  // wildcard, nothing to advertise
  EXPECT_THROW(connectZmqMesh(options), MeshUsageError);  // plaintext off loopback
  options.allowPlaintext = true;
  EXPECT_THROW(connectZmqMesh(options), MeshUsageError);  // no dialable endpoint to advertise
  options = nodeOptions(*relay, "ipc:///tmp/x");
  EXPECT_THROW(connectZmqMesh(options), MeshUsageError);
  options = nodeOptions(*relay);
  options.advertiseEndpoint = "tcp://*:5";
  EXPECT_THROW(connectZmqMesh(options), MeshUsageError);
}

MeshBackend zmqDirectBackend() {
  MeshBackend backend;
  backend.name = "ZmqDirect";
  backend.make = [](int worldSize) {
    static std::unique_ptr<ZmqRelay> relay;  // retired by the next world (see zmq_mesh_test)
    relay = startRelay(worldSize);
    ZmqMeshOptions options = nodeOptions(*relay);
    options.announceLeave = false;  // abort()/kill look like kill -9
    MeshWorld world;
    world.ranks = joinAll(std::vector<ZmqMeshOptions>(worldSize, options));
    for (int r = 0; r < worldSize; ++r) {
      for (int p = 0; p < worldSize; ++p) {
        EXPECT_EQ(world.ranks[r]->pathTo(p), p == r ? "self" : "direct");
      }
    }
    return world;
  };
  backend.largeMessageBytes = std::size_t{256} << 20;
  backend.peerLossBound = Millis(2500);
  return backend;
}

INSTANTIATE_TEST_SUITE_P(ZmqDirect, MeshConformance, ::testing::Values(zmqDirectBackend()),
                         meshBackendName);

// Whether zmqLaneTo(mesh, peer) says `kind` within a few seconds (lanes and
// their cross-memory set-up come up shortly after the links).
bool laneBecomes(const Mesh& mesh, int peer, const std::string& kind) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (zmqLaneTo(mesh, peer) != kind && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(Millis(5));
  }
  return zmqLaneTo(mesh, peer) == kind;
}

TEST(ZmqDirect, BulkLanesCarryDirectDataAndCanBeTurnedOff) {
  for (const bool lanes : {true, false}) {
    SCOPED_TRACE(lanes ? "bulk lanes on" : "bulk lanes off");
    ListenerAndDialer run(lanes);
    ASSERT_EQ(run.ranks[1]->pathTo(0), "direct");
    if (lanes) {
      EXPECT_TRUE(run.logsWithin("bulk lane to rank 1 up (accepted)", Millis(3000)));
    }
    auto& ranks = run.ranks;
    exchangeInOrder(*ranks[1], *ranks[0], 1, 30);
    exchangeInOrder(*ranks[0], *ranks[1], 1, 30);
    // Large messages both ways, intact.
    MeshBytes big(std::size_t{9} << 20);
    for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<std::uint8_t>(i * 31 + 7);
    ranks[0]->send(1, 5, big, kLong);
    ranks[1]->send(0, 5, big, kLong);
    EXPECT_TRUE(ranks[1]->recv(0, 5, kLong) == big);
    EXPECT_TRUE(ranks[0]->recv(1, 5, kLong) == big);
    EXPECT_EQ(run.relay->stats().forwarded, 0u) << "direct traffic went through the relay";
    EXPECT_FALSE(run.logged("refused"));
    EXPECT_EQ(run.logged("bulk lane"), lanes);
    std::string whyNot;
    const bool crossMemory = zmqlane::crossMemoryReadsPermitted(&whyNot);
    EXPECT_TRUE(laneBecomes(*ranks[0], 1,
                            !lanes        ? "none"
                            : crossMemory ? "cross-memory"
                                          : "bytes"));
  }
  const InprocMeshGroup inproc = makeInprocMesh(2);
  EXPECT_THROW(zmqLaneTo(*inproc.ranks[0], 1), MeshUsageError);
  ListenerAndDialer run;
  EXPECT_THROW(zmqLaneTo(*run.ranks[0], 2), MeshUsageError);  // a rank outside the world
}

// A lane connection to rank 0's lane port claiming rank 1 with a key it was
// never offered (all zero) is refused and logged.
void forgedLaneIsRefused(ListenerAndDialer& run, int lanePort) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(lanePort));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  std::uint8_t hello[32] = {'h', 'e', 'a', 'r', 't', 'h', 'L', '1', 1};  // rank 1, key all zero
  ASSERT_EQ(::send(fd, hello, sizeof hello, 0), 32);
  EXPECT_TRUE(run.logsWithin("refused a bulk lane connection claiming rank 1", kLong));
  ::close(fd);
}

// A fixed lane port (for routers that forward chosen ports) is the one
// offered; one already taken leaves the link on ZeroMQ, which still works.
TEST(ZmqDirect, BulkLanesListenOnTheChosenPortOrNotAtAll) {
  const int port = std::stoi(
      ListenerAndDialer::freeLoopbackEndpoint().substr(std::string("tcp://127.0.0.1:").size()));
  {
    ListenerAndDialer run(true, true, port);
    ASSERT_TRUE(run.logsWithin("bulk lane to rank 1 up (accepted)", Millis(3000)));
    // The port is the lane listener's: a connection there is read as a lane.
    forgedLaneIsRefused(run, port);
  }
  zmq::context_t ctx;
  zmq::socket_t squatter(ctx, zmq::socket_type::router);
  squatter.set(zmq::sockopt::linger, 0);
  squatter.bind("tcp://127.0.0.1:" + std::to_string(port));
  ListenerAndDialer run(true, true, port);
  EXPECT_TRUE(
      run.logsWithin("no bulk lanes (bind/listen on port " + std::to_string(port), Millis(3000)));
  run.ranks[1]->send(0, 3, numbered(7), kLong);
  EXPECT_EQ(numberOf(run.ranks[0]->recv(1, 3, kLong)), 7u);
  EXPECT_EQ(run.ranks[1]->pathTo(0), "direct");
  EXPECT_EQ(run.relay->stats().forwarded, 0u);
}

TEST(ZmqDirect, ALaneConnectionWithoutTheOfferedKeyIsRefused) {
  ListenerAndDialer run(true);
  ASSERT_TRUE(run.logsWithin("bulk lane to rank 1 up (accepted)", Millis(3000)));
  auto& ranks = run.ranks;
  // A forger that knows the run id and token dials as rank 1 and so learns
  // the lane port (from LANE_OFFER), but not the key the real rank 1 got.
  zmq::context_t ctx;
  zmq::socket_t forger = run.dialAsRank1(ctx, kToken);
  int lanePort = -1;
  for (int i = 0; i < 2 && lanePort < 0; ++i) {
    zmq::pollitem_t items[] = {{forger.handle(), 0, ZMQ_POLLIN, 0}};
    ASSERT_EQ(zmq::poll(items, 1, kLong), 1);
    std::vector<zmq::message_t> reply;
    ASSERT_TRUE(zmq::recv_multipart(forger, std::back_inserter(reply)));
    const auto* header = static_cast<const std::uint8_t*>(reply[0].data());
    if (header[1] == 16) lanePort = header[2] | (header[3] << 8);  // LANE_OFFER
  }
  ASSERT_GT(lanePort, 0);
  forgedLaneIsRefused(run, lanePort);
  // The real rank 1 still reaches rank 0.
  ranks[1]->send(0, 3, numbered(42), kLong);
  EXPECT_EQ(numberOf(ranks[0]->recv(1, 3, kLong)), 42u);
}

// ---- zero-copy forms over bulk lanes (Mesh::irecvInto, Mesh::isendFrom) ----

MeshBytes patternOf(std::size_t n, std::uint8_t seed) {
  MeshBytes bytes(n);
  for (std::size_t i = 0; i < n; ++i) bytes[i] = static_cast<std::uint8_t>(seed + i * 13);
  return bytes;
}

TEST(ZmqZeroCopy, IrecvIntoOnABulkLaneReadsStraightIntoTheBuffer) {
  ListenerAndDialer run;
  ASSERT_TRUE(run.logsWithin("bulk lane to rank 1 up (accepted)", Millis(3000)));
  auto& ranks = run.ranks;
  const MeshBytes sent = patternOf(std::size_t{1} << 20, 3);
  std::vector<std::uint8_t> buffer(sent.size(), 0);
  auto recv = ranks[0]->irecvInto(1, 7, buffer.data(), buffer.size());
  ranks[1]->send(0, 7, sent, kLong);
  ASSERT_TRUE(recv->wait(kLong));
  MeshBytes got = recv->take();
  EXPECT_EQ(got.data(), buffer.data()) << "not read in place";
  EXPECT_TRUE(std::equal(buffer.begin(), buffer.end(), sent.begin()));
  // A message of another size is handed over as a buffer of its own.
  std::vector<std::uint8_t> small(100, 0xEE);
  auto other = ranks[0]->irecvInto(1, 8, small.data(), small.size());
  ranks[1]->send(0, 8, sent, kLong);
  ASSERT_TRUE(other->wait(kLong));
  MeshBytes whole = other->take();
  EXPECT_NE(whole.data(), small.data());
  EXPECT_TRUE(whole == sent);
  EXPECT_TRUE(std::all_of(small.begin(), small.end(), [](std::uint8_t b) { return b == 0xEE; }));
}

TEST(ZmqZeroCopy, CancellingAnIrecvIntoMidMessageLosesNothing) {
  ListenerAndDialer run;
  ASSERT_TRUE(run.logsWithin("bulk lane to rank 1 up (accepted)", Millis(3000)));
  auto& ranks = run.ranks;
  const MeshBytes sent = patternOf(std::size_t{48} << 20, 5);
  for (int delayUs : {0, 200, 2000, 20000}) {
    SCOPED_TRACE("cancel after " + std::to_string(delayUs) + " us");
    auto buffer = std::make_unique<std::vector<std::uint8_t>>(sent.size(), 0);
    auto recv = ranks[0]->irecvInto(1, 9, buffer->data(), buffer->size());
    auto send = ranks[1]->isend(0, 9, sent);
    std::this_thread::sleep_for(std::chrono::microseconds(delayUs));
    if (recv->cancel()) {
      buffer.reset();  // the mesh no longer writes into it: free it at once
      EXPECT_TRUE(ranks[0]->recv(1, 9, kLong) == sent);  // the message waits for the next recv
    } else {
      ASSERT_TRUE(recv->wait(kLong));  // it had finished
      MeshBytes got = recv->take();
      EXPECT_TRUE(got == sent);
    }
    ASSERT_TRUE(send->wait(kLong));
  }
}

TEST(ZmqZeroCopy, IsendFromLendsTheBufferOnlyUntilItsRequestIsDone) {
  ListenerAndDialer run;
  ASSERT_TRUE(run.logsWithin("bulk lane to rank 1 up (accepted)", Millis(3000)));
  auto& ranks = run.ranks;
  const MeshBytes original = patternOf(std::size_t{8} << 20, 7);
  for (const bool wait : {true, false}) {
    SCOPED_TRACE(wait ? "waited" : "dropped at once");
    std::vector<std::uint8_t> buffer(original.begin(), original.end());
    auto send = ranks[1]->isendFrom(0, 11, buffer.data(), buffer.size());
    if (wait) {
      ASSERT_TRUE(send->wait(kLong));
    }
    send.reset();  // from here on the bytes are the caller's again
    std::fill(buffer.begin(), buffer.end(), 0);
    EXPECT_TRUE(ranks[0]->recv(1, 11, kLong) == original);
    // With cross-memory lanes the wait lasted until the peer had read the
    // bytes (its ACK), rather than taking them back from under its read.
    if (wait) EXPECT_FALSE(run.logged("taken back"));
  }
}

// Two nodes of one process are two "processes" on one host to the lanes:
// cross-memory reads set up (the pid proven), large messages read out of
// the sender's memory arrive intact, nothing goes through the relay, no
// link breaks; turned off, the lanes carry bytes.
TEST(ZmqZeroCopy, CrossMemoryLanesCarryLargeMessagesAndCanBeTurnedOff) {
  std::string whyNot;
  if (!zmqlane::crossMemoryReadsPermitted(&whyNot)) GTEST_SKIP() << whyNot;
  for (const bool crossMemory : {true, false}) {
    SCOPED_TRACE(crossMemory ? "cross-memory on" : "cross-memory off");
    ListenerAndDialer run(true, crossMemory);
    ASSERT_TRUE(run.logsWithin("bulk lane to rank 1 up (accepted)", Millis(3000)));
    if (crossMemory) {
      ASSERT_TRUE(run.logsWithin(
          "bulk lane to rank 1: cross-memory reads from process " + std::to_string(::getpid()),
          Millis(3000)));
    }
    auto& ranks = run.ranks;
    for (int i = 0; i < 20; ++i) {
      const MeshBytes big =
          patternOf((std::size_t{1} << 20) + 4097 * i, static_cast<std::uint8_t>(i));
      const MeshBytes small = patternOf(100 + i, static_cast<std::uint8_t>(i));
      ranks[0]->send(1, 5, big, kLong);
      ranks[1]->send(0, 5, small, kLong);
      ranks[1]->send(0, 5, big, kLong);
      EXPECT_TRUE(ranks[1]->recv(0, 5, kLong) == big) << i;
      EXPECT_TRUE(ranks[0]->recv(1, 5, kLong) == small) << i;
      EXPECT_TRUE(ranks[0]->recv(1, 5, kLong) == big) << i;
    }
    EXPECT_EQ(run.relay->stats().forwarded, 0u) << "direct traffic went through the relay";
    EXPECT_FALSE(run.logged(" down"));
    EXPECT_EQ(run.logged("cross-memory"), crossMemory);
    const std::string kind = crossMemory ? "cross-memory" : "bytes";
    for (int r : {0, 1}) EXPECT_TRUE(laneBecomes(*ranks[r], 1 - r, kind)) << "rank " << r;
  }
}

// Lent sends whose loans end while their peer is reading them by
// cross-memory read (a burst of them, all requests dropped at once): the
// caller overwrites its buffers at once, yet every message arrives intact
// and once, in order (a read that catches a body taken back fails its fence
// check, and the frame goes again as a copy).
TEST(ZmqZeroCopy, LentSendsTakenBackDuringACrossMemoryReadArriveIntactOnce) {
  std::string whyNot;
  if (!zmqlane::crossMemoryReadsPermitted(&whyNot)) GTEST_SKIP() << whyNot;
  ListenerAndDialer run;
  ASSERT_TRUE(run.logsWithin("cross-memory reads", Millis(3000)));
  auto& ranks = run.ranks;
  constexpr int kRounds = 3;
  constexpr int kBurst = 24;
  std::vector<MeshBytes> originals;
  for (int i = 0; i < kRounds * kBurst; ++i) {
    originals.push_back(patternOf(std::size_t{1} << 20, static_cast<std::uint8_t>(i)));
  }
  auto receiving = std::async(std::launch::async, [&] {
    for (std::size_t i = 0; i < originals.size(); ++i) {
      if (!(ranks[0]->recv(1, 12, kLong) == originals[i])) return static_cast<int>(i);
    }
    return -1;
  });
  std::vector<std::vector<std::uint8_t>> buffers(kBurst);
  for (int round = 0; round < kRounds; ++round) {
    std::vector<std::unique_ptr<MeshRequest>> sends;
    for (int k = 0; k < kBurst; ++k) {
      const MeshBytes& original = originals[round * kBurst + k];
      buffers[k].assign(original.begin(), original.end());
      sends.push_back(ranks[1]->isendFrom(0, 12, buffers[k].data(), buffers[k].size()));
    }
    std::this_thread::sleep_for(std::chrono::microseconds(300 * round));
    sends.clear();  // every loan is over: the bytes are the caller's again
    for (auto& b : buffers) std::fill(b.begin(), b.end(), 0xFF);
  }
  EXPECT_EQ(receiving.get(), -1) << "a message arrived changed or out of order";
}

// Every rank's allreduce result over meshes whose pairs all have bulk lanes:
// rank-unique values, a size that is not a multiple of anything.
void exactAllreduceEverywhere(std::vector<std::unique_ptr<MeshCollectives>>& colls, std::size_t n) {
  const int world = static_cast<int>(colls.size());
  std::vector<std::future<void>> runs;
  for (int r = 0; r < world; ++r) {
    runs.push_back(std::async(std::launch::async, [&, r] {
      std::vector<float> data(n);
      for (std::size_t i = 0; i < n; ++i) data[i] = float((r + 1) * ((i % 97) + 1));
      colls[r]->allreduceSum(data.data(), n, kLong);
      const float sum = float(world) * float(world + 1) / 2;
      for (std::size_t i = 0; i < n; ++i) {
        if (data[i] != sum * float((i % 97) + 1)) {
          throw std::runtime_error("rank " + std::to_string(r) + ": wrong sum at " +
                                   std::to_string(i));
        }
      }
    }));
  }
  for (auto& run : runs) run.get();
}

// sameHostLinks: members of one host link over loopback although none
// listens for the relay (all behind NAT, say): ranks 0 and 1 share a host
// identity, rank 2 claims another host and rank 3 has the option off. Only
// the 0-1 pair goes direct (plaintext: with a cross-memory lane where
// permitted; CURVE: encrypted, no lane); every other pair stays relayed; an
// allreduce over all four is exact.
void membersOfOneHostLinkOverLoopback(bool curve) {
  TempKeys keys;
  auto relay = startRelay(4, curve ? keys.relayKeyFile() : "");
  std::vector<ZmqMeshOptions> options;
  for (int r = 0; r < 4; ++r) {
    options.push_back(nodeOptions(*relay, ""));
    options.back().sameHostLinks = r != 3;
    options.back().hostIdentity = r == 2 ? "another-host" : "";  // "": this host's
  }
  auto ranks = joinAll(options);
  EXPECT_EQ(ranks[0]->pathTo(1), "direct");
  EXPECT_EQ(ranks[1]->pathTo(0), "direct");
  for (int a = 0; a < 4; ++a) {
    for (int b = 0; b < 4; ++b) {
      if (a == b || (a < 2 && b < 2)) continue;
      EXPECT_EQ(ranks[a]->pathTo(b), "relay") << a << " -> " << b;
    }
  }
  exchangeInOrder(*ranks[0], *ranks[1], 1, 10);
  exchangeInOrder(*ranks[1], *ranks[0], 1, 10);
  EXPECT_EQ(relay->stats().forwarded, 0u) << "the same-host pair went through the relay";
  std::string whyNot;
  const bool crossMemory = zmqlane::crossMemoryReadsPermitted(&whyNot);
  EXPECT_TRUE(laneBecomes(*ranks[0], 1, curve ? "none" : crossMemory ? "cross-memory" : "bytes"));
  EXPECT_EQ(zmqLaneTo(*ranks[0], 2), "none");
  std::vector<std::unique_ptr<MeshCollectives>> colls;
  for (auto& m : ranks) colls.push_back(makeMeshCollectives(std::shared_ptr<Mesh>(std::move(m))));
  exactAllreduceEverywhere(colls, 1000003);
}

TEST(ZmqDirect, MembersOfOneHostLinkOverLoopbackWithoutListening) {
  membersOfOneHostLinkOverLoopback(false);
}

TEST(ZmqDirect, MembersOfOneHostLinkOverLoopbackWithCurve) {
  membersOfOneHostLinkOverLoopback(true);
}

TEST(ZmqZeroCopy, RingAllreduceOverBulkLanesIsExactAndSurvivesABrokenLink) {
  auto relay = startRelay(3);
  auto ranks = joinAll({nodeOptions(*relay), nodeOptions(*relay), nodeOptions(*relay)});
  std::vector<Mesh*> meshes;
  std::vector<std::unique_ptr<MeshCollectives>> colls;
  for (auto& m : ranks) {
    meshes.push_back(m.get());
    colls.push_back(makeMeshCollectives(std::shared_ptr<Mesh>(std::move(m))));
  }
  ASSERT_EQ(meshes[0]->pathTo(1), "direct");
  std::this_thread::sleep_for(Millis(200));     // lanes connect right after their links
  constexpr std::size_t kFloats = 3 * 1000003;  // ~12 MB: many chunks per segment
  exactAllreduceEverywhere(colls, kFloats);
  exactAllreduceEverywhere(colls, 5);
  // Links break while allreduces run (also while a lane reads into a
  // tensor): the frames go through the relay, the results stay exact.
  for (int round = 0; round < 3; ++round) {
    auto during = std::async(std::launch::async, [&] {
      for (int i = 0; i < 3; ++i) exactAllreduceEverywhere(colls, kFloats);
    });
    std::this_thread::sleep_for(Millis(15 + 10 * round));
    zmqtesting::dropDirectConnections(*meshes[round]);
    during.get();
  }
  exactAllreduceEverywhere(colls, kFloats);
}

// Three listening nodes (rank 0 on a port known in advance); rank 2 dies
// without LEAVE and a new node takes its rank, listening or not. The new
// node gets direct links to both others (it is probed like a first-world
// node; the pair's roles follow from the new MEMBERSHIP on both ends), its
// traffic bypasses the relay, collectives over it are exact, and a dialer
// claiming to be the replaced node is refused. With CURVE the new node's
// key is the one its peers check.
// Rank 2 dies without LEAVE (abort + destruction look like kill -9); ranks
// 0 and 1 see it lost.
void loseRankTwo(std::vector<std::unique_ptr<Mesh>>& ranks) {
  ranks[2]->abort();
  ranks[2].reset();
  for (int r = 0; r < 2; ++r) {
    const auto until = Clock::now() + kLong;
    while (ranks[r]->isPeerAlive(2) && Clock::now() < until) {
      std::this_thread::sleep_for(Millis(10));
    }
    ASSERT_FALSE(ranks[r]->isPeerAlive(2)) << "rank " << r;
  }
}

// After a node took rank 2: ranks 0 and 1 and it reach each other directly
// (waited for), their traffic bypasses the relay, and an allreduce over all
// three is exact. Returns the collectives the meshes moved into.
std::vector<std::unique_ptr<MeshCollectives>> replacementLinksDirectly(
    std::vector<std::unique_ptr<Mesh>>& ranks, const ZmqRelay& relay) {
  for (int r = 0; r < 2; ++r) {
    EXPECT_TRUE(waitForPath(*ranks[r], 2, "direct", kLong)) << "rank " << r;
    EXPECT_TRUE(waitForPath(*ranks[2], r, "direct", kLong)) << "to rank " << r;
  }
  const std::uint64_t forwardedBefore = relay.stats().forwarded;
  for (int r = 0; r < 2; ++r) {
    exchangeInOrder(*ranks[2], *ranks[r], 4, 50);
    exchangeInOrder(*ranks[r], *ranks[2], 4, 50);
  }
  EXPECT_EQ(relay.stats().forwarded, forwardedBefore) << "traffic with the new node was relayed";
  std::vector<std::unique_ptr<MeshCollectives>> colls;
  for (auto& m : ranks) colls.push_back(makeMeshCollectives(std::shared_ptr<Mesh>(std::move(m))));
  exactAllreduceEverywhere(colls, 1000003);
  return colls;
}

void replacementGoesDirect(bool replacementListens, bool curve = false) {
  TempKeys keys;
  auto relay = startRelay(3, curve ? keys.relayKeyFile() : "");
  const std::string rank0Endpoint = ListenerAndDialer::freeLoopbackEndpoint();
  std::vector<ZmqMeshOptions> options{nodeOptions(*relay, rank0Endpoint), nodeOptions(*relay),
                                      nodeOptions(*relay)};
  for (auto& o : options) o.announceLeave = false;  // abort() + destruction look like kill -9
  auto ranks = joinAll(options);
  ASSERT_EQ(ranks[0]->pathTo(2), "direct");
  ASSERT_EQ(ranks[1]->pathTo(2), "direct");

  ASSERT_NO_FATAL_FAILURE(loseRankTwo(ranks));
  ZmqMeshOptions replacement = nodeOptions(*relay, replacementListens ? kLoopbackAny : "");
  replacement.requestedRank = 2;
  replacement.announceLeave = false;
  ranks[2] = connectZmqMesh(replacement);
  ASSERT_EQ(relay->stats().readmitted, 1u);
  auto colls = replacementLinksDirectly(ranks, *relay);
  EXPECT_EQ(relay->stats().probesOk, replacementListens ? 4u : 3u);
  if (curve) return;  // a hand-made socket cannot speak CURVE

  // The replaced node (incarnation 0) cannot take the link back.
  zmq::context_t ctx;
  zmq::socket_t stale = dialWithHello(ctx, rank0Endpoint, 2, 0, kToken);
  const auto reply = replyWithin(stale, kLong);
  ASSERT_EQ(reply.size(), 2u);
  EXPECT_EQ(static_cast<const std::uint8_t*>(reply[0].data())[1], 3);  // REJECT
  EXPECT_NE(reply[1].to_string().find("was replaced"), std::string::npos) << reply[1].to_string();
  exactAllreduceEverywhere(colls, 4099);
}

TEST(ZmqDirect, ANodeThatTakesALostRankGetsDirectLinks) {
  replacementGoesDirect(true);
}

TEST(ZmqDirect, AnUnreachableNodeThatTakesALostRankDialsItsPeers) {
  replacementGoesDirect(false);
}

TEST(ZmqDirect, ANodeThatTakesALostRankGetsCurveLinksWithItsOwnKey) {
  replacementGoesDirect(true, true);
}

// Same-host links with a replacement: three members of one host, none
// listening for the relay; rank 2 dies without LEAVE and a new node of the
// same host takes its rank. Both others link with it over loopback (from the
// MEMBERSHIP that announces it), nothing new goes through the relay, and an
// allreduce is exact.
TEST(ZmqDirect, ANodeThatTakesALostRankLinksWithItsHousematesOverLoopback) {
  auto relay = startRelay(3);
  std::vector<ZmqMeshOptions> options(3, nodeOptions(*relay, ""));
  for (auto& o : options) {
    o.sameHostLinks = true;
    o.announceLeave = false;  // abort() + destruction look like kill -9
  }
  auto ranks = joinAll(options);
  ASSERT_EQ(ranks[0]->pathTo(2), "direct");
  ASSERT_EQ(ranks[1]->pathTo(2), "direct");
  ASSERT_NO_FATAL_FAILURE(loseRankTwo(ranks));
  ZmqMeshOptions replacement = options[2];
  replacement.requestedRank = 2;
  ranks[2] = connectZmqMesh(replacement);
  replacementLinksDirectly(ranks, *relay);
  EXPECT_EQ(relay->stats().probesOk + relay->stats().probesFailed, 0u) << "nothing to probe";
}

TEST(ZmqDirect, ADialerFromALaterIncarnationWaitsForItsMembership) {
  ListenerAndDialer run;
  ASSERT_EQ(run.ranks[1]->pathTo(0), "direct");
  // Claims a node of rank 1 that the relay has not announced (it may be on
  // its way): held, not answered, and the real rank 1's link stays.
  zmq::context_t ctx;
  zmq::socket_t early = dialWithHello(ctx, run.endpoint, 1, 5, kToken);
  EXPECT_TRUE(replyWithin(early, Millis(300)).empty());
  run.ranks[1]->send(0, 3, numbered(7), kLong);
  EXPECT_EQ(numberOf(run.ranks[0]->recv(1, 3, kLong)), 7u);
  EXPECT_EQ(run.ranks[0]->pathTo(1), "direct");
  EXPECT_EQ(run.ranks[1]->pathTo(0), "direct");
}

}  // namespace
}  // namespace testing
}  // namespace hearth
