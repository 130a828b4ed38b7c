// The zmq Mesh backend over an in-process hearth relay on 127.0.0.1: the
// conformance suite, then relay tests (admission, membership, heartbeat loss,
// hostile frames, the hearth-relay executable).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <future>
#include <mutex>
#include <thread>

#include "hearth/transport/mesh_collectives.h"
#include "hearth/transport/zmq_mesh.h"
#include "hearth/transport/zmq_relay.h"
#include "mesh_conformance.h"
#include "zmq_test_util.h"

namespace hearth {
namespace testing {
namespace {

using Clock = std::chrono::steady_clock;
using zmqtest::header;
using zmqtest::kWireVersion;
using zmqtest::u64At;
using zmqtest::waitExit;
constexpr Millis kLong{10000};
constexpr char kRun[] = "run-1";
constexpr char kToken[] = "s3cret";

std::unique_ptr<ZmqRelay> startRelay(int worldSize, Millis heartbeatTimeout = Millis(1500),
                                     const std::string& bind = "tcp://127.0.0.1:0") {
  ZmqRelayOptions options;
  options.bindEndpoint = bind;
  options.runId = kRun;
  options.worldSize = worldSize;
  options.joinToken = kToken;
  options.heartbeatTimeout = heartbeatTimeout;
  options.log = [](const std::string&) {};  // keep test output quiet
  auto relay = std::make_unique<ZmqRelay>(options);
  relay->start();
  return relay;
}

ZmqMeshOptions nodeOptions(const ZmqRelay& relay) {
  return zmqtest::quietNodeOptions(relay.endpoint(), kRun, kToken);
}

// Joins `n` nodes concurrently; returns them ordered by rank.
std::vector<std::unique_ptr<Mesh>> joinAll(int n, const ZmqMeshOptions& options) {
  return zmqtest::joinAllByRank<std::unique_ptr<Mesh>>(n, options);
}

MeshBackend zmqBackend() {
  MeshBackend backend;
  backend.name = "Zmq";
  backend.make = [](int worldSize) {
    // The relay of the previous world is retired here: MeshWorld cannot own it
    // (its kill function is destroyed before its ranks), and tests run in turn.
    static std::unique_ptr<ZmqRelay> relay;
    relay = startRelay(worldSize);
    ZmqMeshOptions options = nodeOptions(*relay);
    options.announceLeave = false;  // abort()/kill look like kill -9: heartbeat-detected
    MeshWorld world;
    world.ranks = joinAll(worldSize, options);
    return world;
  };
  backend.largeMessageBytes = std::size_t{256} << 20;
  backend.peerLossBound = Millis(2500);
  return backend;
}

INSTANTIATE_TEST_SUITE_P(Zmq, MeshConformance, ::testing::Values(zmqBackend()), meshBackendName);

// ---- a raw DEALER speaking the wire protocol by hand ----

zmq::message_t str(const std::string& s) {
  return zmq::message_t(s.data(), s.size());
}

void sendFrames(zmq::socket_t& s, std::vector<zmq::message_t> frames) {
  zmq::send_multipart(s, frames);
}

std::vector<zmq::message_t> recvFrames(zmq::socket_t& s, Millis timeout) {
  zmq::pollitem_t items[] = {{s.handle(), 0, ZMQ_POLLIN, 0}};
  zmq::poll(items, 1, timeout);
  std::vector<zmq::message_t> frames;
  if (items[0].revents & ZMQ_POLLIN) {
    if (!zmq::recv_multipart(s, std::back_inserter(frames))) frames.clear();
  }
  return frames;
}

// HELLO (type 1, requested rank -1, a new node; no advertised endpoint, no
// key, no same-host endpoint, no host identity).
std::vector<zmq::message_t> hello(const std::string& run, const std::string& token) {
  std::vector<zmq::message_t> f;
  f.push_back(header(
      {kWireVersion, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}));
  f.push_back(str(run));
  f.push_back(str(token));
  f.push_back(str(""));
  f.push_back(str(""));
  f.push_back(str(""));
  f.push_back(str(""));
  return f;
}

TEST(ZmqRelay, WrongTokenOrRunIsRejectedWithTheReason) {
  auto relay = startRelay(2);
  ZmqMeshOptions options = nodeOptions(*relay);
  options.joinToken = "guess";
  try {
    connectZmqMesh(options);
    FAIL() << "joined with a wrong token";
  } catch (const MeshRejected& e) {
    EXPECT_EQ(e.kind(), MeshErrorKind::kRejected);
    EXPECT_NE(std::string(e.what()).find("bad join token"), std::string::npos) << e.what();
  }
  options = nodeOptions(*relay);
  options.runId = "other-run";
  try {
    connectZmqMesh(options);
    FAIL() << "joined another run";
  } catch (const MeshRejected& e) {
    EXPECT_NE(std::string(e.what()).find("unknown run id"), std::string::npos) << e.what();
  }
  EXPECT_EQ(relay->stats().rejected, 2u);
  EXPECT_EQ(relay->stats().joined, 0u);
}

TEST(ZmqRelay, WorldCompletesWithDistinctRanksAndHonoursRequestedRank) {
  auto relay = startRelay(4);
  ZmqMeshOptions options = nodeOptions(*relay);
  // The node asking for rank 2 joins first (a join-order node could take rank 2
  // otherwise, and the requester would be rejected: "requested rank 2 is taken").
  ZmqMeshOptions wants2 = options;
  wants2.requestedRank = 2;
  auto fixed = std::async(std::launch::async, [wants2] { return connectZmqMesh(wants2); });
  const auto deadline = Clock::now() + kLong;
  while (relay->stats().joined < 1 && Clock::now() < deadline)
    std::this_thread::sleep_for(Millis(5));
  std::vector<std::future<std::unique_ptr<Mesh>>> joins;
  for (int i = 0; i < 3; ++i) {
    joins.push_back(std::async(std::launch::async, [options] { return connectZmqMesh(options); }));
  }
  std::vector<std::unique_ptr<Mesh>> meshes;
  for (auto& j : joins) meshes.push_back(j.get());
  auto two = fixed.get();
  EXPECT_EQ(two->rank(), 2);
  meshes.push_back(std::move(two));
  std::vector<int> ranks;
  for (auto& m : meshes) {
    EXPECT_EQ(m->worldSize(), 4);
    EXPECT_EQ(m->epoch(), 0u);
    ranks.push_back(m->rank());
  }
  std::sort(ranks.begin(), ranks.end());
  EXPECT_EQ(ranks, (std::vector<int>{0, 1, 2, 3}));
  EXPECT_TRUE(relay->stats().worldComplete);
  // A fifth node is refused: the run is full.
  try {
    connectZmqMesh(options);
    FAIL() << "a fifth node joined a world of four";
  } catch (const MeshRejected& e) {
    EXPECT_NE(std::string(e.what()).find("full"), std::string::npos) << e.what();
  }
}

TEST(ZmqRelay, SilentNodeIsLostWithinTheHeartbeatTimeout) {
  constexpr Millis kTimeout{600};
  auto relay = startRelay(2, kTimeout);
  zmq::context_t ctx;
  zmq::socket_t raw(ctx, zmq::socket_type::dealer);
  raw.set(zmq::sockopt::linger, 0);
  raw.connect(relay->endpoint());
  sendFrames(raw, hello(kRun, kToken));
  auto welcome = recvFrames(raw, kLong);
  ASSERT_EQ(welcome.size(), 1u);
  const auto joinedAt = Clock::now();  // the raw node never speaks again
  auto mesh = connectZmqMesh(nodeOptions(*relay));
  const int silent = 1 - mesh->rank();
  try {
    mesh->recv(silent, 0, kLong);
    FAIL() << "recv from a silent node returned";
  } catch (const MeshPeerLost& e) {
    EXPECT_EQ(e.peer(), silent);
  }
  const long took = msSince(joinedAt);
  EXPECT_GE(took, kTimeout.count() - 50);
  EXPECT_LT(took, kTimeout.count() + 500);
  EXPECT_FALSE(mesh->isPeerAlive(silent));
  EXPECT_EQ(mesh->epoch(), 1u);
  EXPECT_EQ(relay->stats().lost, 1u);
}

TEST(ZmqRelay, LeaveIsAnnouncedAtOnce) {
  auto relay = startRelay(2, Millis(5000));
  ZmqMeshOptions options = nodeOptions(*relay);
  options.heartbeatTimeout = Millis(5000);
  auto ranks = joinAll(2, options);
  auto pending = ranks[0]->irecv(1, 0);
  const auto start = Clock::now();
  ranks[1]->abort();  // announceLeave defaults to true
  EXPECT_THROW(pending->wait(kLong), MeshPeerLost);
  EXPECT_LT(msSince(start), 1000);
}

TEST(ZmqRelay, MalformedFramesAreDroppedAndTheRelayKeepsServing) {
  auto relay = startRelay(2);
  zmq::context_t ctx;
  zmq::socket_t raw(ctx, zmq::socket_type::dealer);
  raw.set(zmq::sockopt::linger, 0);
  raw.connect(relay->endpoint());
  std::vector<std::vector<zmq::message_t>> hostile;
  auto one = [](zmq::message_t m) {
    std::vector<zmq::message_t> f;
    f.push_back(std::move(m));
    return f;
  };
  hostile.push_back(one(header({})));                   // empty header
  hostile.push_back(one(header({3})));                  // too short
  hostile.push_back(one(header({200, 6})));             // unknown version, PING
  hostile.push_back(one(header({1, 6})));               // version 1 (before direct links), PING
  hostile.push_back(one(header({2, 6})));               // version 2 (before re-admission), PING
  hostile.push_back(one(header({kWireVersion, 200})));  // unknown type
  hostile.push_back(one(header({kWireVersion, 5, 0, 0, 0})));  // truncated DATA header
  hostile.push_back(one(header({kWireVersion,
                                5,
                                1,
                                0,
                                0,
                                0,
                                0,
                                0,
                                0,
                                0,
                                0,
                                0,
                                0,
                                0,
                                0,
                                0,
                                0,
                                0,
                                0,
                                0,
                                0,
                                0,
                                0,
                                0,
                                0,
                                0,
                                0,
                                0,
                                0,
                                0})));  // DATA, no payload
  {
    std::vector<zmq::message_t> f;  // DATA from a node that has not joined
    f.push_back(header({kWireVersion,
                        5,
                        1,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0}));
    f.push_back(str("payload"));
    hostile.push_back(std::move(f));
  }
  hostile.push_back(one(
      header({kWireVersion, 4, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0})));  // MEMBERSHIP from a node
  {
    std::vector<zmq::message_t> f;  // PROBE_ACK from a node that has not joined
    f.push_back(header({kWireVersion, 11}));
    f.push_back(str("0123456789abcdef"));
    hostile.push_back(std::move(f));
  }
  hostile.push_back(one(header({kWireVersion, 13, 0, 0, 0, 0})));  // DIRECT_WELCOME: not for relays
  {
    auto h = hello(kRun, kToken);  // a same-host endpoint that is not dialable
    h[5] = str("not an endpoint");
    hostile.push_back(std::move(h));
  }
  {
    auto h = hello(kRun, kToken);  // a host identity over 64 bytes
    h[6] = str(std::string(65, 'h'));
    hostile.push_back(std::move(h));
  }
  const std::size_t count = hostile.size();
  for (auto& f : hostile) sendFrames(raw, std::move(f));
  {
    auto h = hello(kRun, kToken);  // a HELLO with too many frames
    h.push_back(str("extra"));
    sendFrames(raw, std::move(h));
  }
  // The relay is still serving: a full world joins and talks.
  auto ranks = joinAll(2, nodeOptions(*relay));
  ranks[0]->send(1, 3, bytesOf("after the garbage"), kLong);
  EXPECT_EQ(stringOf(ranks[1]->recv(0, 3, kLong)), "after the garbage");
  // The relay reads connections fairly, so the raw node's last frames may be
  // read after the world's traffic: wait (bounded) for the count to settle.
  const auto deadline = Clock::now() + Millis(2000);
  while (relay->stats().malformed < count + 1 && Clock::now() < deadline) {
    std::this_thread::sleep_for(Millis(5));
  }
  EXPECT_EQ(relay->stats().malformed, count + 1);
  EXPECT_EQ(relay->stats().lost, 0u);
}

TEST(ZmqRelay, RelayThatDisappearsFailsPendingCallsWithinTheBound) {
  auto relay = startRelay(2);
  ZmqMeshOptions options = nodeOptions(*relay);
  options.heartbeatTimeout = Millis(800);
  options.relayReconnectTimeout = Millis(0);  // no reconnect: the relay is lost at once
  auto ranks = joinAll(2, options);
  auto pending = ranks[0]->irecv(1, 0);
  const auto start = Clock::now();
  relay.reset();
  // Sends issued after the relay died must not block the node's I/O thread
  // (which also runs the heartbeat clock).
  std::vector<std::unique_ptr<MeshRequest>> sends;
  for (int i = 0; i < 4; ++i) sends.push_back(ranks[0]->isend(1, 7, MeshBytes(8 << 20, 1)));
  try {
    pending->wait(kLong);
    FAIL() << "pending recv survived the relay";
  } catch (const MeshPeerLost& e) {
    EXPECT_EQ(e.peer(), 1);
    EXPECT_NE(std::string(e.what()).find("relay lost"), std::string::npos) << e.what();
  }
  EXPECT_LT(msSince(start), 800 + 500);
  EXPECT_THROW(ranks[0]->send(1, 0, bytesOf("x"), kLong), MeshPeerLost);
  // Sends to self still work.
  ranks[0]->send(0, 0, bytesOf("me"), kLong);
  EXPECT_EQ(stringOf(ranks[0]->recv(0, 0, kLong)), "me");
}

// ---- relay restarts ----

// Allreduce of rank-unique data on every rank at once; checks the sum.
void allreduceEverywhere(std::vector<std::unique_ptr<MeshCollectives>>& colls, std::size_t n,
                         Millis timeout) {
  const int world = static_cast<int>(colls.size());
  std::vector<std::future<void>> runs;
  for (int r = 0; r < world; ++r) {
    runs.push_back(std::async(std::launch::async, [&, r] {
      std::vector<float> data(n, float(r + 1));
      colls[r]->allreduceSum(data.data(), n, timeout);
      const float want = float(world) * float(world + 1) / 2;
      for (float v : data) {
        if (v != want) throw std::runtime_error("wrong allreduce sum on rank " + std::to_string(r));
      }
    }));
  }
  for (auto& run : runs) run.get();
}

TEST(ZmqRelayRestart, NodesRejoinARestartedRelayAndCollectivesCarryOn) {
  auto relay = startRelay(3);
  const std::string endpoint = relay->endpoint();
  ZmqMeshOptions options = nodeOptions(*relay);
  options.relayReconnectTimeout = Millis(10000);
  std::vector<std::string> lines;
  std::mutex linesMu;
  options.log = [&](const std::string& line) {
    std::lock_guard<std::mutex> lock(linesMu);
    lines.push_back(line);
  };
  auto ranks = joinAll(3, options);
  std::vector<std::unique_ptr<MeshCollectives>> colls;
  for (auto& m : ranks) colls.push_back(makeMeshCollectives(std::shared_ptr<Mesh>(std::move(m))));
  constexpr std::size_t kFloats = 300000;  // 1.2 MB: several chunks per step
  for (int i = 0; i < 3; ++i) allreduceEverywhere(colls, kFloats, kLong);

  relay.reset();  // the relay process dies between two allreduces of the sequence
  // The next allreduce starts while no relay runs: its frames wait on the nodes.
  auto during =
      std::async(std::launch::async, [&] { allreduceEverywhere(colls, kFloats, Millis(20000)); });
  std::this_thread::sleep_for(Millis(500));
  relay = startRelay(3, Millis(1500), endpoint);  // same run id, token, world size, endpoint
  during.get();
  for (int i = 0; i < 3; ++i) allreduceEverywhere(colls, kFloats, kLong);
  EXPECT_EQ(relay->stats().joined, 3u);
  EXPECT_EQ(relay->stats().lost, 0u);
  EXPECT_GT(relay->stats().forwarded, 0u);
  std::lock_guard<std::mutex> lock(linesMu);
  int rejoined = 0;
  for (const auto& line : lines) rejoined += line.find("rejoined the relay") != std::string::npos;
  EXPECT_EQ(rejoined, 3);
}

TEST(ZmqRelayRestart, RelayThatStaysAwayFailsCallsAfterTheReconnectTimeout) {
  auto relay = startRelay(2);
  ZmqMeshOptions options = nodeOptions(*relay);
  options.relayReconnectTimeout = Millis(1000);
  options.log = [](const std::string&) {};
  auto ranks = joinAll(2, options);
  auto pending = ranks[0]->irecv(1, 0);
  const auto start = Clock::now();
  relay.reset();
  try {
    pending->wait(kLong);
    FAIL() << "pending recv survived the relay";
  } catch (const MeshPeerLost& e) {
    EXPECT_EQ(e.peer(), 1);
    EXPECT_NE(std::string(e.what()).find("relay lost"), std::string::npos) << e.what();
  }
  const long took = msSince(start);
  EXPECT_GE(took, 900);
  EXPECT_LT(took, 1000 + 1500);
}

// Receives from a fake relay (a ROUTER: the header follows the node's
// identity), skipping the node's PINGs.
std::vector<zmq::message_t> recvNonPing(zmq::socket_t& s, Millis timeout) {
  return zmqtest::recvSkippingType(s, timeout, 1, 6);  // 6: PING
}

// WELCOME (rank 0 of 2) and MEMBERSHIP (epoch 0, both alive, no direct
// endpoints, no keys) from a fake relay to the node with identity `id`.
void admitRankZeroOfTwo(zmq::socket_t& fake, const std::string& id) {
  std::vector<zmq::message_t> f;
  f.push_back(str(id));
  f.push_back(header({kWireVersion, 2, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}));
  zmq::send_multipart(fake, f);
  f.clear();
  f.push_back(str(id));
  f.push_back(header({kWireVersion, 4, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0}));
  f.push_back(header({1, 1}));
  f.push_back(zmq::message_t(std::string(12, '\0')));  // directory: 2 empty entries
  f.push_back(zmq::message_t(std::string(16, '\0')));  // incarnations: 0, 0
  zmq::send_multipart(fake, f);
}

TEST(ZmqRelayRestart, RejoiningNodeResendsAndFencesWhatItSentThroughTheOldRelay) {
  // A fake relay swallows one DATA frame and dies; the node re-joins the
  // restarted (fake) relay with its rank, resends the frame that rank 1 never
  // acknowledged (same sequence number), and announces with a FENCE that it
  // had sent 1 frame to rank 1, so that anything still missing is a gap.
  zmq::context_t ctx;
  auto fake = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::router);
  fake->set(zmq::sockopt::linger, 0);
  fake->bind("tcp://127.0.0.1:0");
  const std::string endpoint = fake->get(zmq::sockopt::last_endpoint);
  ZmqMeshOptions options;
  options.relayEndpoint = endpoint;
  options.runId = kRun;
  options.heartbeatInterval = Millis(100);
  options.heartbeatTimeout = Millis(1500);
  options.relayReconnectTimeout = Millis(8000);
  options.log = [](const std::string&) {};
  auto node = std::async(std::launch::async, [options] { return connectZmqMesh(options); });
  auto hi = recvNonPing(*fake, kLong);
  ASSERT_EQ(hi.size(), 8u);
  admitRankZeroOfTwo(*fake, hi[0].to_string());
  auto mesh = node.get();
  mesh->send(1, 3, bytesOf("swallowed"), kLong);
  auto data = recvNonPing(*fake, kLong);
  ASSERT_EQ(data.size(), 3u);
  ASSERT_EQ(static_cast<const std::uint8_t*>(data[1].data())[1], 5);  // DATA, seq 0
  EXPECT_EQ(u64At(data[1], 14), 0u);

  fake.reset();  // the relay dies with the frame
  std::this_thread::sleep_for(Millis(200));
  fake = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::router);
  fake->set(zmq::sockopt::linger, 0);
  fake->bind(endpoint);
  auto again = recvNonPing(*fake, kLong);
  ASSERT_EQ(again.size(), 8u);
  const auto* h = static_cast<const std::uint8_t*>(again[1].data());
  EXPECT_EQ(h[1], 1);  // HELLO
  EXPECT_EQ(h[2] | h[3] | h[4] | h[5], 0) << "not re-joining as rank 0";
  admitRankZeroOfTwo(*fake, again[0].to_string());
  auto resent = recvNonPing(*fake, kLong);
  ASSERT_EQ(resent.size(), 3u);
  EXPECT_EQ(static_cast<const std::uint8_t*>(resent[1].data())[1], 5);  // DATA
  EXPECT_EQ(u64At(resent[1], 14), 0u);                                  // seq 0 again
  EXPECT_EQ(resent[2].to_string(), "swallowed");
  auto fence = recvNonPing(*fake, kLong);
  ASSERT_EQ(fence.size(), 2u);
  const auto* fh = static_cast<const std::uint8_t*>(fence[1].data());
  EXPECT_EQ(fh[1], 14);               // FENCE
  EXPECT_EQ(fh[2], 1);                // to rank 1
  EXPECT_EQ(u64At(fence[1], 6), 1u);  // one frame sent so far
  mesh->send(1, 3, bytesOf("after"), kLong);
  auto next = recvNonPing(*fake, kLong);
  ASSERT_EQ(next.size(), 3u);
  EXPECT_EQ(u64At(next[1], 14), 1u);  // the sequence goes on
  EXPECT_EQ(next[2].to_string(), "after");
  EXPECT_EQ(mesh->pathTo(1), "relay");
  EXPECT_TRUE(mesh->isPeerAlive(1));
}

// A fake relay (a raw ROUTER) admits the node as rank 0 of 2, then sends
// `garbage`: the node's pending recv and later sends fail with a protocol
// error naming `named`.
void expectProtocolErrorAfter(std::vector<zmq::message_t> garbage, const std::string& named) {
  zmq::context_t ctx;
  zmq::socket_t fake(ctx, zmq::socket_type::router);
  fake.set(zmq::sockopt::linger, 0);
  fake.bind("tcp://127.0.0.1:0");
  ZmqMeshOptions options;
  options.relayEndpoint = fake.get(zmq::sockopt::last_endpoint);
  options.runId = kRun;
  options.heartbeatInterval = Millis(100);
  options.heartbeatTimeout = Millis(5000);
  auto node = std::async(std::launch::async, [options] { return connectZmqMesh(options); });
  auto hi = recvFrames(fake, kLong);
  ASSERT_EQ(hi.size(), 8u);  // identity + HELLO's seven frames
  const std::string id = hi[0].to_string();
  admitRankZeroOfTwo(fake, id);
  auto mesh = node.get();
  ASSERT_EQ(mesh->rank(), 0);
  auto pending = mesh->irecv(1, 0);
  garbage.insert(garbage.begin(), str(id));
  zmq::send_multipart(fake, garbage);
  try {
    pending->wait(kLong);
    FAIL() << "pending recv survived a malformed frame";
  } catch (const MeshProtocolError& e) {
    EXPECT_NE(std::string(e.what()).find(named), std::string::npos) << e.what();
  }
  EXPECT_THROW(mesh->send(1, 0, bytesOf("x"), kLong), MeshProtocolError);
}

TEST(ZmqMesh, MalformedFrameFromTheRelayIsAProtocolError) {
  std::vector<zmq::message_t> f;
  std::vector<std::uint8_t> data(30, 0);  // DATA from rank 7 of 2
  data[0] = kWireVersion;
  data[1] = 5;
  data[2] = 7;
  f.emplace_back(data.data(), data.size());
  f.push_back(str("x"));
  expectProtocolErrorAfter(std::move(f), "rank 7");
}

TEST(ZmqMesh, AckFromARankOutsideTheWorldIsAProtocolError) {
  std::vector<zmq::message_t> f;
  std::vector<std::uint8_t> ack(22, 0);  // ACK (type 15) from rank 7 of 2
  ack[0] = kWireVersion;
  ack[1] = 15;
  ack[2] = 7;
  f.emplace_back(ack.data(), ack.size());
  expectProtocolErrorAfter(std::move(f), "ACK from rank 7");
}

TEST(ZmqMesh, MembershipWithAMalformedSameHostEndpointIsAProtocolError) {
  std::vector<zmq::message_t> f;
  f.push_back(header({kWireVersion, 4, 1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0}));  // epoch 1, world 2
  f.push_back(header({1, 1}));
  // Rank 0: no endpoint, no key, same-host endpoint "bad" (not dialable), no
  // host identity; rank 1: all empty.
  f.push_back(zmq::message_t(std::string("\0\0\0\3\0bad\0", 9) + std::string(6, '\0')));
  f.push_back(zmq::message_t(std::string(16, '\0')));
  expectProtocolErrorAfter(std::move(f), "same-host endpoint of rank 0 is not dialable");
}

TEST(ZmqMesh, BadOptionsAndUnreachableRelay) {
  ZmqMeshOptions options;
  EXPECT_THROW(connectZmqMesh(options), MeshUsageError);  // no endpoint
  options.relayEndpoint = "tcp://127.0.0.1:1";            // nothing listens there
  options.joinTimeout = Millis(300);
  const auto start = Clock::now();
  EXPECT_THROW(connectZmqMesh(options), MeshTimeout);
  EXPECT_LT(msSince(start), 1500);
}

// ---- the hearth-relay executable ----

using zmqtest::RelayChild;

RelayChild spawnRelay(const std::vector<std::string>& args) {
  return zmqtest::spawnRelay(args, /*captureStderr=*/false);
}

TEST(HearthRelayBinary, PrintsEndpointServesAndExitsOnSigterm) {
  RelayChild c = spawnRelay({"--run-id", kRun, "--world-size", "1", "--token", kToken});
  ASSERT_GT(c.pid, 0);
  const std::string line = zmqtest::readLine(c.out);
  const std::string prefix = "hearth-relay: listening on ";
  ASSERT_EQ(line.rfind(prefix, 0), 0u) << line;
  const std::string endpoint = line.substr(prefix.size());
  EXPECT_EQ(endpoint.rfind("tcp://127.0.0.1:", 0), 0u) << endpoint;
  {
    ZmqMeshOptions options;
    options.relayEndpoint = endpoint;
    options.runId = kRun;
    options.joinToken = kToken;
    options.joinTimeout = Millis(5000);
    auto mesh = connectZmqMesh(options);
    EXPECT_EQ(mesh->rank(), 0);
    EXPECT_EQ(mesh->worldSize(), 1);
  }
  ::kill(c.pid, SIGTERM);
  EXPECT_EQ(waitExit(c.pid, Millis(3000)), 0);
  ::close(c.out);
}

TEST(HearthRelayBinary, HelpAndBadArguments) {
  RelayChild help = spawnRelay({"--help"});
  EXPECT_EQ(waitExit(help.pid, Millis(3000)), 0);
  ::close(help.out);
  RelayChild missing = spawnRelay({"--run-id", "x"});
  EXPECT_EQ(waitExit(missing.pid, Millis(3000)), 2);
  ::close(missing.out);
  RelayChild bad = spawnRelay({"--run-id", "x", "--world-size", "zero"});
  EXPECT_EQ(waitExit(bad.pid, Millis(3000)), 2);
  ::close(bad.out);
  RelayChild bind = spawnRelay({"--run-id", "x", "--world-size", "1", "--bind", "tcp://nonsense"});
  EXPECT_EQ(waitExit(bind.pid, Millis(3000)), 1);
  ::close(bind.out);
}

}  // namespace
}  // namespace testing
}  // namespace hearth
