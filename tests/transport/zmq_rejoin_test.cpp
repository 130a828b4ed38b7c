// Re-admission (docs/transport_protocol.md, "Re-admission"): after a node of
// a zmq Mesh dies without a word (kill -9), a new node takes its rank in the
// next epoch and the world carries on; a live rank cannot be taken; frames
// addressed to the dead node never reach its replacement.
#include <gtest/gtest.h>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include <chrono>
#include <future>
#include <mutex>
#include <thread>

#include "hearth/transport/mesh_collectives.h"
#include "hearth/transport/zmq_mesh.h"
#include "hearth/transport/zmq_relay.h"
#include "zmq_test_util.h"

namespace hearth {
namespace testing {
namespace {

using Clock = std::chrono::steady_clock;
using zmqtest::header;
using zmqtest::kWireVersion;
using zmqtest::u64At;
constexpr Millis kLong{10000};
constexpr Millis kHeartbeatTimeout{1000};
constexpr char kRun[] = "rejoin-run";
constexpr char kToken[] = "rejoin-token";

std::unique_ptr<ZmqRelay> startRelay(int worldSize) {
  ZmqRelayOptions options;
  options.runId = kRun;
  options.worldSize = worldSize;
  options.joinToken = kToken;
  options.heartbeatTimeout = kHeartbeatTimeout;
  options.log = [](const std::string&) {};
  auto relay = std::make_unique<ZmqRelay>(options);
  relay->start();
  return relay;
}

ZmqMeshOptions nodeOptions(const ZmqRelay& relay, int requestedRank = -1) {
  ZmqMeshOptions options = zmqtest::quietNodeOptions(relay.endpoint(), kRun, kToken);
  options.requestedRank = requestedRank;
  options.joinTimeout = kLong;
  options.heartbeatTimeout = kHeartbeatTimeout;
  return options;
}

std::vector<std::shared_ptr<Mesh>> joinAll(int n, const ZmqMeshOptions& options) {
  return zmqtest::joinAllByRank<std::shared_ptr<Mesh>>(n, options);
}

// Waits (bounded) until `condition` holds.
template <typename Fn>
bool eventually(Fn condition, Millis timeout = kLong) {
  const auto deadline = Clock::now() + timeout;
  while (!condition()) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(Millis(5));
  }
  return true;
}

// One allreduce of rank-unique data on every rank at once; checks the sum.
void allreduceEverywhere(std::vector<std::unique_ptr<MeshCollectives>>& colls, std::size_t n,
                         int round) {
  const int world = static_cast<int>(colls.size());
  std::vector<std::future<void>> runs;
  for (int r = 0; r < world; ++r) {
    runs.push_back(std::async(std::launch::async, [&, r] {
      std::vector<float> data(n);
      for (std::size_t i = 0; i < n; ++i) data[i] = float((r + 1) * (round + 1)) + float(i % 7);
      colls[r]->allreduceSum(data.data(), n, kLong);
      for (std::size_t i = 0; i < n; ++i) {
        const float want =
            float(world * (world + 1) / 2 * (round + 1)) + float(world) * float(i % 7);
        if (data[i] != want) {
          throw std::runtime_error("rank " + std::to_string(r) + " element " + std::to_string(i) +
                                   ": " + std::to_string(data[i]) + " != " + std::to_string(want));
        }
      }
    }));
  }
  for (auto& run : runs) run.get();
}

std::vector<std::unique_ptr<MeshCollectives>> collectivesOver(
    const std::vector<std::shared_ptr<Mesh>>& ranks, MeshTag tagBase) {
  std::vector<std::unique_ptr<MeshCollectives>> colls;
  MeshCollectivesOptions options;
  options.tagBase = tagBase;
  options.chunkBytes = 64 << 10;
  for (auto& m : ranks) colls.push_back(makeMeshCollectives(m, options));
  return colls;
}

TEST(ZmqRejoin, NewNodeTakesTheRankOfAKilledOneAndCollectivesCarryOn) {
  auto relay = startRelay(3);
  ZmqMeshOptions options = nodeOptions(*relay);
  options.announceLeave = false;  // abort() + destruction look like kill -9
  auto ranks = joinAll(3, options);
  {
    auto colls = collectivesOver(ranks, MeshTag{0x48} << 56);
    for (int round = 0; round < 2; ++round) allreduceEverywhere(colls, 50000, round);
  }
  // A message from rank 2 that nobody receives before it dies: it must not
  // be mistaken for one from its replacement.
  ranks[2]->send(0, 77, bytesOf("from the old rank 2"), kLong);
  std::this_thread::sleep_for(Millis(100));
  const std::uint64_t epochBefore = ranks[0]->epoch();
  auto pending0 = ranks[0]->irecv(2, 5);
  auto pending1 = ranks[1]->irecv(2, 5);

  const auto killedAt = Clock::now();
  ranks[2]->abort();
  ranks[2].reset();  // gone without LEAVE
  for (auto* pending : {pending0.get(), pending1.get()}) {
    try {
      pending->wait(kLong);
      FAIL() << "a recv from the killed rank returned";
    } catch (const MeshPeerLost& e) {
      EXPECT_EQ(e.peer(), 2);
      EXPECT_NE(std::string(e.what()).find("rank 2"), std::string::npos) << e.what();
    }
  }
  // The relay declares it lost after heartbeatTimeout; allow a margin.
  EXPECT_LT(msSince(killedAt), kHeartbeatTimeout.count() + 1000);
  EXPECT_FALSE(ranks[0]->isPeerAlive(2));
  EXPECT_FALSE(ranks[1]->isPeerAlive(2));
  EXPECT_EQ(relay->stats().lost, 1u);
  EXPECT_THROW(ranks[0]->send(2, 1, bytesOf("x"), kLong), MeshPeerLost);
  const std::uint64_t epochLost = ranks[0]->epoch();
  EXPECT_GT(epochLost, epochBefore);

  // A fresh node takes rank 2 (requested -1: the lowest lost rank).
  ranks[2] = connectZmqMesh(nodeOptions(*relay));
  ASSERT_EQ(ranks[2]->rank(), 2);
  EXPECT_EQ(relay->stats().readmitted, 1u);
  for (int r = 0; r < 2; ++r) {
    ASSERT_TRUE(eventually([&] { return ranks[r]->isPeerAlive(2); })) << "rank " << r;
    EXPECT_GT(ranks[r]->epoch(), epochLost) << "rank " << r;
    EXPECT_EQ(ranks[r]->epoch(), relay->stats().epoch) << "rank " << r;
    EXPECT_EQ(ranks[r]->pathTo(2), "relay");
  }
  EXPECT_EQ(ranks[2]->epoch(), relay->stats().epoch);
  EXPECT_TRUE(ranks[2]->isPeerAlive(0));
  EXPECT_TRUE(ranks[2]->isPeerAlive(1));

  // Point to point both ways with the new node, on a tag the old one used.
  ranks[2]->send(0, 77, bytesOf("from the new rank 2"), kLong);
  EXPECT_EQ(stringOf(ranks[0]->recv(2, 77, kLong)), "from the new rank 2");
  ranks[0]->send(2, 77, bytesOf("to the new rank 2"), kLong);
  EXPECT_EQ(stringOf(ranks[2]->recv(0, 77, kLong)), "to the new rank 2");
  EXPECT_THROW(ranks[0]->recv(2, 77, Millis(200)), MeshTimeout);

  // New collectives (a fresh tag range) on all three ranks.
  auto colls = collectivesOver(ranks, (MeshTag{0x48} << 56) + (MeshTag{1} << 48));
  for (int round = 0; round < 4; ++round) allreduceEverywhere(colls, 70001, round);
  EXPECT_EQ(relay->stats().lost, 1u);
}

TEST(ZmqRejoin, ReplacementForARequestedRankAndSecondLoss) {
  auto relay = startRelay(3);
  ZmqMeshOptions options = nodeOptions(*relay);
  options.announceLeave = false;
  auto ranks = joinAll(3, options);
  ranks[1]->abort();
  ranks[1].reset();
  ASSERT_TRUE(eventually([&] { return !ranks[0]->isPeerAlive(1) && !ranks[2]->isPeerAlive(1); }));
  ranks[1] = connectZmqMesh(nodeOptions(*relay, 1));
  ASSERT_EQ(ranks[1]->rank(), 1);
  ASSERT_TRUE(eventually([&] { return ranks[0]->isPeerAlive(1) && ranks[2]->isPeerAlive(1); }));
  ranks[1]->send(2, 9, bytesOf("hi"), kLong);
  EXPECT_EQ(stringOf(ranks[2]->recv(1, 9, kLong)), "hi");
  // The replacement can die and be replaced too.
  ranks[1]->abort();
  ranks[1].reset();
  ASSERT_TRUE(eventually([&] { return !ranks[0]->isPeerAlive(1); }));
  ranks[1] = connectZmqMesh(nodeOptions(*relay, 1));
  ASSERT_TRUE(eventually([&] { return ranks[0]->isPeerAlive(1) && ranks[2]->isPeerAlive(1); }));
  auto colls = collectivesOver(ranks, MeshTag{0x49} << 56);
  for (int round = 0; round < 2; ++round) allreduceEverywhere(colls, 1001, round);
  EXPECT_EQ(relay->stats().readmitted, 2u);
  EXPECT_EQ(relay->stats().lost, 2u);
}

TEST(ZmqRejoin, NodeForALiveRankOrAFullRunIsRejected) {
  auto relay = startRelay(2);
  auto ranks = joinAll(2, nodeOptions(*relay));
  ZmqMeshOptions extra = nodeOptions(*relay, 1);
  extra.joinTimeout = Millis(3000);
  try {
    connectZmqMesh(extra);
    FAIL() << "a node took a live rank";
  } catch (const MeshRejected& e) {
    EXPECT_NE(std::string(e.what()).find("rank 1 is taken"), std::string::npos) << e.what();
  }
  extra.requestedRank = -1;
  try {
    connectZmqMesh(extra);
    FAIL() << "a node joined a run without lost ranks";
  } catch (const MeshRejected& e) {
    EXPECT_NE(std::string(e.what()).find("full"), std::string::npos) << e.what();
  }
  extra.requestedRank = 1;
  extra.joinToken = "wrong";
  EXPECT_THROW(connectZmqMesh(extra), MeshRejected);
  // The world is untouched.
  EXPECT_TRUE(ranks[0]->isPeerAlive(1));
  EXPECT_EQ(ranks[0]->epoch(), 0u);
  ranks[0]->send(1, 1, bytesOf("still here"), kLong);
  EXPECT_EQ(stringOf(ranks[1]->recv(0, 1, kLong)), "still here");
  EXPECT_EQ(relay->stats().readmitted, 0u);
}

TEST(ZmqRejoin, WrongTokenCannotTakeALostRank) {
  auto relay = startRelay(2);
  ZmqMeshOptions options = nodeOptions(*relay);
  options.announceLeave = false;
  auto ranks = joinAll(2, options);
  ranks[1]->abort();
  ranks[1].reset();
  ASSERT_TRUE(eventually([&] { return !ranks[0]->isPeerAlive(1); }));
  ZmqMeshOptions intruder = nodeOptions(*relay, 1);
  intruder.joinToken = "guessed";
  try {
    connectZmqMesh(intruder);
    FAIL() << "a node without the token took a lost rank";
  } catch (const MeshRejected& e) {
    EXPECT_NE(std::string(e.what()).find("bad join token"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(ranks[0]->isPeerAlive(1));
}

// ---- a raw node speaking the wire protocol, to check stale frames ----

// Receives on a raw DEALER node (the header is the first frame), skipping
// PONGs.
std::vector<zmq::message_t> recvNonPing(zmq::socket_t& s, Millis timeout) {
  return zmqtest::recvSkippingType(s, timeout, 0, 7);  // 7: PONG
}

TEST(ZmqRejoin, FramesForTheLostNodeNeverReachItsReplacement) {
  // Rank 1 is a raw socket so that the test controls its frames: it sends a
  // DATA to rank 0 stamped with rank 0's incarnation, dies; the replacement
  // is a raw socket too and must see only frames sent after it joined, with
  // sequence numbers starting at 0.
  auto relay = startRelay(2);
  zmq::context_t ctx;
  auto rawHello = [&](zmq::socket_t& s) {
    s.set(zmq::sockopt::linger, 0);
    s.connect(relay->endpoint());
    std::vector<zmq::message_t> f;
    f.push_back(
        header({kWireVersion, 1, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}));
    f.push_back(zmq::message_t(std::string(kRun)));
    f.push_back(zmq::message_t(std::string(kToken)));
    for (int i = 0; i < 4; ++i) f.emplace_back();  // endpoint, key, same-host endpoint, host
    zmq::send_multipart(s, f);
  };
  zmq::socket_t old(ctx, zmq::socket_type::dealer);
  rawHello(old);
  auto mesh = connectZmqMesh(nodeOptions(*relay));
  ASSERT_EQ(mesh->rank(), 0);
  auto welcome = recvNonPing(old, kLong);
  ASSERT_EQ(welcome.size(), 1u);
  EXPECT_EQ(u64At(welcome[0], 10), 0u);  // incarnation 0
  auto membership = recvNonPing(old, kLong);
  ASSERT_EQ(membership.size(), 4u);
  // Rank 0 sends to rank 1 twice; the raw rank 1 reads one and then dies.
  mesh->send(1, 4, bytesOf("a"), kLong);
  auto first = recvNonPing(old, kLong);
  ASSERT_EQ(first.size(), 2u);
  EXPECT_EQ(u64At(first[0], 14), 0u);  // seq 0
  old.close();                         // killed; the relay notices by silence
  ASSERT_TRUE(eventually([&] { return !mesh->isPeerAlive(1); }));
  EXPECT_THROW(mesh->send(1, 4, bytesOf("b"), kLong), MeshPeerLost);

  zmq::socket_t fresh(ctx, zmq::socket_type::dealer);
  rawHello(fresh);
  auto welcome2 = recvNonPing(fresh, kLong);
  ASSERT_EQ(welcome2.size(), 1u);
  EXPECT_EQ(static_cast<const std::uint8_t*>(welcome2[0].data())[1], 2);  // WELCOME
  const std::uint64_t incarnation = u64At(welcome2[0], 10);
  EXPECT_EQ(incarnation, relay->stats().epoch);
  EXPECT_GT(incarnation, 0u);
  auto membership2 = recvNonPing(fresh, kLong);
  ASSERT_EQ(membership2.size(), 4u);
  EXPECT_EQ(u64At(membership2[0], 2), incarnation);  // epoch
  EXPECT_EQ(u64At(membership2[3], 8), incarnation);  // rank 1's incarnation
  ASSERT_TRUE(eventually([&] { return mesh->isPeerAlive(1); }));
  mesh->send(1, 4, bytesOf("c"), kLong);
  auto third = recvNonPing(fresh, kLong);
  ASSERT_EQ(third.size(), 2u);
  EXPECT_EQ(third[1].to_string(), "c");
  EXPECT_EQ(u64At(third[0], 14), 0u);  // the sequence restarts for the new node
  EXPECT_EQ(u64At(third[0], 22), 0u);  // from rank 0, incarnation 0

  // A frame stamped with the old incarnation of rank 0 as destination... is
  // fine (rank 0 was never replaced); one claiming to be for an old
  // incarnation of its destination is dropped by the relay.
  {
    std::vector<zmq::message_t> f;  // DATA to rank 0, tag 8, seq 0, incarnation 5 (wrong)
    f.push_back(header({kWireVersion,
                        5,
                        0,
                        0,
                        0,
                        0,
                        8,
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
                        5,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0}));
    f.push_back(zmq::message_t(std::string("stale")));
    zmq::send_multipart(fresh, f);
    f.clear();  // the same with the right incarnation (0)
    f.push_back(header({kWireVersion,
                        5,
                        0,
                        0,
                        0,
                        0,
                        8,
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
    f.push_back(zmq::message_t(std::string("fresh")));
    zmq::send_multipart(fresh, f);
  }
  EXPECT_EQ(stringOf(mesh->recv(1, 8, kLong)), "fresh");
  EXPECT_EQ(relay->stats().stale, 1u);
}

TEST(ZmqRejoin, UnreceivedMessagesOfTheLostNodeAreDroppedOnReplacement) {
  auto relay = startRelay(2);
  ZmqMeshOptions options = nodeOptions(*relay);
  options.announceLeave = false;
  auto ranks = joinAll(2, options);
  ranks[1]->send(0, 3, bytesOf("old"), kLong);
  std::this_thread::sleep_for(Millis(100));
  ranks[1]->abort();
  ranks[1].reset();
  ASSERT_TRUE(eventually([&] { return !ranks[0]->isPeerAlive(1); }));
  ranks[1] = connectZmqMesh(nodeOptions(*relay));
  ASSERT_TRUE(eventually([&] { return ranks[0]->isPeerAlive(1); }));
  EXPECT_THROW(ranks[0]->recv(1, 3, Millis(300)), MeshTimeout);
  ranks[1]->send(0, 3, bytesOf("new"), kLong);
  EXPECT_EQ(stringOf(ranks[0]->recv(1, 3, kLong)), "new");
}

}  // namespace
}  // namespace testing
}  // namespace hearth
