// The inproc Mesh backend: the conformance suite plus fault-injection tests.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "hearth/transport/inproc_mesh.h"
#include "mesh_conformance.h"

namespace hearth {
namespace testing {
namespace {

using Clock = std::chrono::steady_clock;
constexpr Millis kLong{10000};

MeshBackend inprocBackend() {
  MeshBackend backend;
  backend.name = "Inproc";
  backend.make = [](int worldSize) {
    InprocMeshGroup group = makeInprocMesh(worldSize);
    MeshWorld world;
    world.ranks = std::move(group.ranks);
    auto faults = group.faults;
    world.kill = [faults](int r) { faults->killRank(r); };
    return world;
  };
  backend.largeMessageBytes = std::size_t{256} << 20;
  backend.peerLossBound = Millis(500);
  return backend;
}

INSTANTIATE_TEST_SUITE_P(Inproc, MeshConformance, ::testing::Values(inprocBackend()),
                         meshBackendName);

TEST(InprocMesh, RejectsBadWorldSize) {
  EXPECT_THROW(makeInprocMesh(0), MeshUsageError);
  auto group = makeInprocMesh(2);
  EXPECT_THROW(group.faults->killRank(2), MeshUsageError);
  EXPECT_THROW(group.faults->corruptNext(0, -1), MeshUsageError);
}

TEST(InprocMesh, PathsAreSelfOrTheDefault) {
  // Mesh::pathTo's default for backends without direct links.
  auto group = makeInprocMesh(2);
  EXPECT_EQ(group.ranks[0]->pathTo(0), "self");
  EXPECT_EQ(group.ranks[0]->pathTo(1), "relay");
  EXPECT_THROW(group.ranks[0]->pathTo(2), MeshUsageError);
}

TEST(InprocMesh, KilledRankSeesAbortedOthersSeePeerLost) {
  auto group = makeInprocMesh(2);
  auto own = group.ranks[1]->irecv(0, 0);
  auto theirs = group.ranks[0]->irecv(1, 0);
  group.faults->killRank(1);
  group.faults->killRank(1);  // idempotent
  EXPECT_THROW(own->wait(kLong), MeshAborted);
  EXPECT_THROW(theirs->wait(kLong), MeshPeerLost);
  EXPECT_EQ(group.ranks[0]->epoch(), 1u);
}

TEST(InprocMesh, DelayIsAppliedAndOrderSurvivesDelayChanges) {
  auto group = makeInprocMesh(2, InprocFaultOptions{Millis(150), 0});
  const auto start = Clock::now();
  auto slow = group.ranks[0]->isend(1, 0, bytesOf("first"));
  EXPECT_FALSE(slow->test());  // in flight
  group.faults->setDelay(Millis(0));
  group.ranks[0]->isend(1, 0, bytesOf("second"));  // must not overtake
  EXPECT_EQ(stringOf(group.ranks[1]->recv(0, 0, kLong)), "first");
  EXPECT_GE(msSince(start), 150);
  EXPECT_EQ(stringOf(group.ranks[1]->recv(0, 0, kLong)), "second");
  EXPECT_TRUE(slow->wait(kLong));
  // Without delay, delivery is immediate.
  const auto fast = Clock::now();
  group.ranks[0]->send(1, 1, bytesOf("now"), kLong);
  EXPECT_EQ(stringOf(group.ranks[1]->recv(0, 1, kLong)), "now");
  EXPECT_LT(msSince(fast), 100);
}

TEST(InprocMesh, RecvTimeoutShorterThanDelayThenMessageArrives) {
  auto group = makeInprocMesh(2, InprocFaultOptions{Millis(300), 0});
  group.ranks[0]->isend(1, 0, bytesOf("slow"));
  EXPECT_THROW(group.ranks[1]->recv(0, 0, Millis(50)), MeshTimeout);
  EXPECT_EQ(stringOf(group.ranks[1]->recv(0, 0, kLong)), "slow");
}

TEST(InprocMesh, BandwidthCapIsRespected) {
  auto group = makeInprocMesh(2);
  constexpr double kCap = 40e6;  // 40 MB/s
  constexpr std::size_t kChunk = 1 << 20;
  constexpr int kChunks = 12;  // 12 MiB: ~315 ms at the cap
  group.faults->setBandwidth(0, kCap);
  const auto start = Clock::now();
  std::vector<std::unique_ptr<MeshRequest>> sends;
  for (int i = 0; i < kChunks; ++i) sends.push_back(group.ranks[0]->isend(1, 0, MeshBytes(kChunk)));
  for (int i = 0; i < kChunks; ++i) ASSERT_EQ(group.ranks[1]->recv(0, 0, kLong).size(), kChunk);
  const double seconds = msSince(start) / 1000.0;
  const double rate = kChunks * kChunk / seconds;
  EXPECT_LE(rate, kCap * 1.05) << "measured " << rate << " B/s";
  EXPECT_GE(rate, kCap * 0.5) << "measured " << rate << " B/s";
  for (auto& s : sends) EXPECT_TRUE(s->wait(kLong));
  // Another rank's uplink is not capped.
  const auto other = Clock::now();
  for (int i = 0; i < kChunks; ++i) group.ranks[1]->send(0, 0, MeshBytes(kChunk), kLong);
  EXPECT_LT(msSince(other), 100);
}

TEST(InprocMesh, CorruptFlipsOneByteOfTheNextMessageOnly) {
  auto group = makeInprocMesh(2);
  group.faults->corruptNext(0, 1);
  const MeshBytes original = bytesOf("0123456789");
  group.ranks[0]->send(1, 0, original, kLong);
  group.ranks[0]->send(1, 0, original, kLong);
  const MeshBytes bad = group.ranks[1]->recv(0, 0, kLong);
  ASSERT_EQ(bad.size(), original.size());
  int differing = 0;
  for (std::size_t i = 0; i < bad.size(); ++i) differing += bad[i] != original[i];
  EXPECT_EQ(differing, 1);
  EXPECT_EQ(group.ranks[1]->recv(0, 0, kLong), original);
  // Only the 0 -> 1 link was affected.
  group.ranks[1]->send(0, 0, original, kLong);
  EXPECT_EQ(group.ranks[0]->recv(1, 0, kLong), original);
}

TEST(InprocMesh, TruncateCutsTheNextMessages) {
  auto group = makeInprocMesh(2);
  group.faults->truncateNext(0, 1, 4, 2);
  for (int i = 0; i < 3; ++i) group.ranks[0]->send(1, 0, bytesOf("abcdefgh"), kLong);
  EXPECT_EQ(stringOf(group.ranks[1]->recv(0, 0, kLong)), "abcd");
  EXPECT_EQ(stringOf(group.ranks[1]->recv(0, 0, kLong)), "abcd");
  EXPECT_EQ(stringOf(group.ranks[1]->recv(0, 0, kLong)), "abcdefgh");
}

TEST(InprocMesh, KillDuringDelayedSendFailsTheSender) {
  auto group = makeInprocMesh(3, InprocFaultOptions{Millis(2000), 0});
  auto toDead = group.ranks[0]->isend(1, 0, bytesOf("never"));
  auto fromDead = group.ranks[1]->isend(2, 0, bytesOf("lost"));
  const auto start = Clock::now();
  group.faults->killRank(1);
  try {
    toDead->wait(kLong);
    ADD_FAILURE() << "send to a dead rank succeeded";
  } catch (const MeshPeerLost& e) {
    EXPECT_EQ(e.peer(), 1);
  }
  EXPECT_THROW(fromDead->wait(kLong), MeshAborted);
  EXPECT_THROW(group.ranks[2]->recv(1, 0, kLong), MeshPeerLost);
  EXPECT_LT(msSince(start), 500);
}

TEST(InprocMesh, CancelDelayedSendWithdrawsIt) {
  auto group = makeInprocMesh(2, InprocFaultOptions{Millis(100), 0});
  auto send = group.ranks[0]->isend(1, 0, bytesOf("withdrawn"));
  EXPECT_TRUE(send->cancel());
  EXPECT_THROW(send->wait(kLong), MeshCancelled);
  group.ranks[0]->send(1, 0, bytesOf("kept"), kLong);
  EXPECT_EQ(stringOf(group.ranks[1]->recv(0, 0, kLong)), "kept");
}

TEST(InprocMesh, DestroyingAMeshLooksLikePeerLoss) {
  auto group = makeInprocMesh(2);
  auto pending = group.ranks[0]->irecv(1, 0);
  group.ranks[1].reset();
  EXPECT_THROW(pending->wait(kLong), MeshPeerLost);
}

}  // namespace
}  // namespace testing
}  // namespace hearth
