// Elastic world sizes (docs/transport_protocol.md, "Elastic world size"): a
// relay started with min:max admits up to max nodes and seals the world at
// max at once, or at >= min once no node arrived for joinGrace; nodes take
// their world size from the sealed MEMBERSHIP. Also the hearth-relay flags
// (--world-size MIN:MAX, --join-grace).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <future>
#include <stdexcept>
#include <thread>

#include "hearth/transport/mesh_collectives.h"
#include "hearth/transport/zmq_mesh.h"
#include "hearth/transport/zmq_relay.h"
#include "zmq_test_util.h"

namespace hearth {
namespace testing {
namespace {

using Clock = std::chrono::steady_clock;
using zmqtest::waitExit;
constexpr Millis kLong{10000};
constexpr char kRun[] = "elastic-run";
constexpr char kToken[] = "elastic-token";

std::unique_ptr<ZmqRelay> startRelay(int min, int max, Millis grace) {
  ZmqRelayOptions options;
  options.runId = kRun;
  options.minWorldSize = min;
  options.maxWorldSize = max;
  options.joinGrace = grace;
  options.joinToken = kToken;
  options.heartbeatTimeout = Millis(1500);
  options.log = [](const std::string&) {};
  auto relay = std::make_unique<ZmqRelay>(options);
  relay->start();
  return relay;
}

ZmqMeshOptions nodeOptions(const std::string& endpoint, int requestedRank = -1,
                           Millis joinTimeout = kLong) {
  ZmqMeshOptions options = zmqtest::quietNodeOptions(endpoint, kRun, kToken);
  options.requestedRank = requestedRank;
  options.joinTimeout = joinTimeout;
  return options;
}

// Joins `n` nodes concurrently; returns them ordered by rank.
std::vector<std::shared_ptr<Mesh>> joinAll(int n, const ZmqMeshOptions& options) {
  return zmqtest::joinAllByRank<std::shared_ptr<Mesh>>(n, options);
}

// One allreduce of rank-unique data on every rank at once; checks the sum.
void allreduceEverywhere(const std::vector<std::shared_ptr<Mesh>>& ranks, std::size_t n) {
  const int world = static_cast<int>(ranks.size());
  MeshCollectivesOptions options;
  options.chunkBytes = 64 << 10;
  std::vector<std::unique_ptr<MeshCollectives>> colls;
  for (auto& m : ranks) colls.push_back(makeMeshCollectives(m, options));
  std::vector<std::future<void>> runs;
  for (int r = 0; r < world; ++r) {
    runs.push_back(std::async(std::launch::async, [&, r] {
      std::vector<float> data(n);
      for (std::size_t i = 0; i < n; ++i) data[i] = float(r + 1) + float(i % 5);
      colls[r]->allreduceSum(data.data(), n, kLong);
      for (std::size_t i = 0; i < n; ++i) {
        const float want = float(world * (world + 1) / 2) + float(world) * float(i % 5);
        if (data[i] != want) {
          throw std::runtime_error("rank " + std::to_string(r) + " element " + std::to_string(i) +
                                   ": " + std::to_string(data[i]) + " != " + std::to_string(want));
        }
      }
    }));
  }
  for (auto& run : runs) run.get();
}

TEST(ZmqElastic, BadOptionsThrow) {
  ZmqRelayOptions options;
  options.runId = kRun;
  options.log = [](const std::string&) {};
  options.minWorldSize = 3;
  options.maxWorldSize = 2;
  EXPECT_THROW(ZmqRelay{options}, std::invalid_argument);
  options.minWorldSize = 0;
  options.maxWorldSize = 4;
  EXPECT_THROW(ZmqRelay{options}, std::invalid_argument);
  options.minWorldSize = 2;
  options.joinGrace = Millis(-1);
  EXPECT_THROW(ZmqRelay{options}, std::invalid_argument);
}

// 2:4 with three nodes: sealed at 3 once the grace has passed.
TEST(ZmqElastic, SealsBelowMaxAfterTheGrace) {
  constexpr Millis kGrace{600};
  auto relay = startRelay(2, 4, kGrace);
  const auto start = Clock::now();
  auto ranks = joinAll(3, nodeOptions(relay->endpoint()));
  EXPECT_GE(msSince(start), kGrace.count() - 50);
  for (int r = 0; r < 3; ++r) {
    ASSERT_NE(ranks[r], nullptr);
    EXPECT_EQ(ranks[r]->rank(), r);
    EXPECT_EQ(ranks[r]->worldSize(), 3);
  }
  const ZmqRelayStats stats = relay->stats();
  EXPECT_TRUE(stats.worldComplete);
  EXPECT_EQ(stats.worldSize, 3);
  EXPECT_EQ(stats.joined, 3u);
  allreduceEverywhere(ranks, 0);
  allreduceEverywhere(ranks, 1);
  allreduceEverywhere(ranks, 100003);  // odd, several chunks
}

// 2:4 with four nodes: sealed as soon as the fourth joins (no grace wait);
// a fifth is refused because the run is full.
TEST(ZmqElastic, SealsAtOnceWhenMaxJoinedThenFull) {
  auto relay = startRelay(2, 4, Millis(8000));
  const auto start = Clock::now();
  auto ranks = joinAll(4, nodeOptions(relay->endpoint()));
  EXPECT_LT(msSince(start), 5000);  // far below the 8 s grace
  for (int r = 0; r < 4; ++r) {
    EXPECT_EQ(ranks[r]->rank(), r);
    EXPECT_EQ(ranks[r]->worldSize(), 4);
  }
  EXPECT_EQ(relay->stats().worldSize, 4);
  allreduceEverywhere(ranks, 4097);
  try {
    connectZmqMesh(nodeOptions(relay->endpoint()));
    FAIL() << "a fifth node joined a world sealed at 4";
  } catch (const MeshRejected& e) {
    EXPECT_NE(std::string(e.what()).find("full"), std::string::npos) << e.what();
  }
}

// 3:4 with two nodes: never sealed; the nodes give up after their joinTimeout.
TEST(ZmqElastic, NoSealBelowMin) {
  auto relay = startRelay(3, 4, Millis(100));
  const auto start = Clock::now();
  const auto options = nodeOptions(relay->endpoint(), -1, Millis(1500));
  std::vector<std::future<void>> joins;
  for (int i = 0; i < 2; ++i) {
    joins.push_back(std::async(std::launch::async,
                               [options] { EXPECT_THROW(connectZmqMesh(options), MeshTimeout); }));
  }
  for (auto& j : joins) j.get();
  EXPECT_GE(msSince(start), 1400);
  EXPECT_LT(msSince(start), 6000);
  EXPECT_FALSE(relay->stats().worldComplete);
  EXPECT_EQ(relay->stats().worldSize, 0);
}

// Requested ranks: a node that holds rank 3 when the world seals at 2 (ranks
// 0 and 1) is refused; after sealing, a rank >= the sealed size is refused.
TEST(ZmqElastic, RequestedRanksOutsideTheSealedWorldAreRefused) {
  auto relay = startRelay(2, 4, Millis(500));
  auto outside = std::async(std::launch::async, [&] {
    try {
      connectZmqMesh(nodeOptions(relay->endpoint(), 3));
      return std::string("joined");
    } catch (const MeshRejected& e) {
      return std::string(e.what());
    }
  });
  auto r0 = std::async(std::launch::async,
                       [&] { return connectZmqMesh(nodeOptions(relay->endpoint(), 0)); });
  auto r1 = std::async(std::launch::async,
                       [&] { return connectZmqMesh(nodeOptions(relay->endpoint(), 1)); });
  std::vector<std::shared_ptr<Mesh>> ranks;
  ranks.push_back(r0.get());
  ranks.push_back(r1.get());
  const std::string why = outside.get();
  EXPECT_NE(why.find("outside the world, sealed at 2 nodes"), std::string::npos) << why;
  for (int r = 0; r < 2; ++r) {
    EXPECT_EQ(ranks[r]->rank(), r);
    EXPECT_EQ(ranks[r]->worldSize(), 2);
  }
  EXPECT_EQ(relay->stats().worldSize, 2);
  allreduceEverywhere(ranks, 1000);
  try {
    connectZmqMesh(nodeOptions(relay->endpoint(), 2));
    FAIL() << "rank 2 joined a world sealed at 2";
  } catch (const MeshRejected& e) {
    EXPECT_NE(std::string(e.what()).find("out of range [0, 2)"), std::string::npos) << e.what();
  }
}

// A gap below min (ranks 0 and 2 of 2:4) keeps the world open: no seal.
TEST(ZmqElastic, AGapBelowMinKeepsTheWorldOpen) {
  auto relay = startRelay(2, 4, Millis(100));
  auto r0 = std::async(std::launch::async, [&] {
    EXPECT_THROW(connectZmqMesh(nodeOptions(relay->endpoint(), 0, Millis(1200))), MeshTimeout);
  });
  auto r2 = std::async(std::launch::async, [&] {
    EXPECT_THROW(connectZmqMesh(nodeOptions(relay->endpoint(), 2, Millis(1200))), MeshTimeout);
  });
  r0.get();
  r2.get();
  EXPECT_FALSE(relay->stats().worldComplete);
}

// ---- the hearth-relay executable ----

using zmqtest::RelayChild;

RelayChild spawnRelay(const std::vector<std::string>& args) {
  return zmqtest::spawnRelay(args, /*captureStderr=*/true);
}

std::string readAll(int fd) {
  std::string text;
  char buf[512];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) text.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  return text;
}

TEST(HearthRelayElasticBinary, BadWorldSizeAndGraceExitTwoWithOneLine) {
  const std::vector<std::vector<std::string>> cases = {
      {"--world-size", "3:2"},  {"--world-size", "0:4"},  {"--world-size", "2:"},
      {"--world-size", ":4"},   {"--world-size", "a:4"},  {"--world-size", "2:4:6"},
      {"--world-size", "0"},    {"--world-size", "-2:4"}, {"--join-grace", "-1"},
      {"--join-grace", "soon"}, {"--join-grace", "2s"},
  };
  for (const auto& bad : cases) {
    std::vector<std::string> args = {"--run-id", "x"};
    if (bad[0] != "--world-size") args.insert(args.end(), {"--world-size", "2:4"});
    args.insert(args.end(), bad.begin(), bad.end());
    RelayChild c = spawnRelay(args);
    EXPECT_EQ(waitExit(c.pid, Millis(3000)), 2) << bad[0] << " " << bad[1];
    readAll(c.out);
    const std::string err = readAll(c.err);
    EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
    EXPECT_NE(err.find(bad[0]), std::string::npos) << err;
    EXPECT_NE(err.find("'" + bad[1] + "'"), std::string::npos) << err;
  }
}

TEST(HearthRelayElasticBinary, ServesAnElasticWorld) {
  RelayChild c = spawnRelay(
      {"--run-id", kRun, "--world-size", "1:3", "--join-grace", "0.3", "--token", kToken});
  ASSERT_GT(c.pid, 0);
  const std::string line = zmqtest::readLine(c.out);
  const std::string prefix = "hearth-relay: listening on ";
  ASSERT_EQ(line.rfind(prefix, 0), 0u) << line;
  {
    auto ranks = joinAll(2, nodeOptions(line.substr(prefix.size())));
    EXPECT_EQ(ranks[0]->worldSize(), 2);
    EXPECT_EQ(ranks[1]->worldSize(), 2);
    allreduceEverywhere(ranks, 33);
  }
  ::kill(c.pid, SIGTERM);
  EXPECT_EQ(waitExit(c.pid, Millis(3000)), 0);
  ::close(c.out);
  ::close(c.err);
}

}  // namespace
}  // namespace testing
}  // namespace hearth
