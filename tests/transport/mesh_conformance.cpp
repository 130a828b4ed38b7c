// The Mesh conformance tests; see mesh_conformance.h for how a backend runs them.
#include "mesh_conformance.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>

namespace hearth {
namespace testing {
namespace {

using Clock = std::chrono::steady_clock;
constexpr Millis kLong{10000};

Millis since(Clock::time_point start) {
  return std::chrono::duration_cast<Millis>(Clock::now() - start);
}

// Runs fn(rank) on one thread per rank and joins them.
// Writes the low bytes of i at the front of msg (as many as fit).
void stamp(MeshBytes& msg, int i) {
  if (!msg.empty()) std::memcpy(msg.data(), &i, std::min(msg.size(), sizeof(i)));
}

// An exception escaping fn becomes a test failure, not a crash.
template <typename Fn>
void onEveryRank(int worldSize, Fn fn) {
  std::vector<std::thread> threads;
  for (int r = 0; r < worldSize; ++r) {
    threads.emplace_back([&fn, r] {
      try {
        fn(r);
      } catch (const std::exception& e) {
        ADD_FAILURE() << "rank " << r << " threw " << e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
}

TEST_P(MeshConformance, RankWorldSizeAndEpoch) {
  auto world = makeWorld(3);
  for (int r = 0; r < 3; ++r) {
    EXPECT_EQ(world.ranks[r]->rank(), r);
    EXPECT_EQ(world.ranks[r]->worldSize(), 3);
    EXPECT_EQ(world.ranks[r]->epoch(), world.ranks[0]->epoch());
    for (int p = 0; p < 3; ++p) EXPECT_TRUE(world.ranks[r]->isPeerAlive(p));
  }
}

TEST_P(MeshConformance, OrderedPerPeerAndTagWithTagsIndependent) {
  auto world = makeWorld(3);
  constexpr int kCount = 500;
  // Ranks 0 and 2 both send to rank 1 on tags 7 and 8, interleaved.
  for (int sender : {0, 2}) {
    for (int i = 0; i < kCount; ++i) {
      for (MeshTag tag : {MeshTag{7}, MeshTag{8}}) {
        world.ranks[sender]->send(
            1, tag, bytesOf(std::to_string(sender * 100000 + tag * 10000 + i)), kLong);
      }
    }
  }
  // Rank 1 drains tag 8 from rank 2 first, then tag 7 from rank 0, and so on.
  Mesh& rx = *world.ranks[1];
  for (auto [sender, tag] : {std::pair<int, MeshTag>{2, 8}, {0, 7}, {2, 7}, {0, 8}}) {
    for (int i = 0; i < kCount; ++i) {
      ASSERT_EQ(stringOf(rx.recv(sender, tag, kLong)),
                std::to_string(sender * 100000 + tag * 10000 + i))
          << "sender " << sender << " tag " << tag << " message " << i;
    }
  }
}

TEST_P(MeshConformance, RecvOnOneTagDoesNotWaitForAnother) {
  auto world = makeWorld(2);
  auto pendingA = world.ranks[1]->irecv(0, 1);
  world.ranks[0]->send(1, 2, bytesOf("b"), kLong);
  EXPECT_EQ(stringOf(world.ranks[1]->recv(0, 2, Millis(2000))), "b");
  EXPECT_FALSE(pendingA->test());
  world.ranks[0]->send(1, 1, bytesOf("a"), kLong);
  ASSERT_TRUE(pendingA->wait(kLong));
  EXPECT_EQ(stringOf(pendingA->take()), "a");
}

TEST_P(MeshConformance, ManySmallMessagesRingConcurrently) {
  constexpr int kWorld = 4;
  constexpr int kCount = 10000;
  auto world = makeWorld(kWorld);
  std::atomic<int> mismatches{0};
  onEveryRank(kWorld, [&](int r) {
    Mesh& mesh = *world.ranks[r];
    const int next = (r + 1) % kWorld;
    const int prev = (r + kWorld - 1) % kWorld;
    std::thread sender([&] {
      for (int i = 0; i < kCount; ++i) {
        MeshBytes msg(i % 33, static_cast<std::uint8_t>(r));
        stamp(msg, i);
        mesh.isend(next, 3, std::move(msg));  // a dropped isend is detached, still delivered
      }
    });
    for (int i = 0; i < kCount; ++i) {
      MeshBytes got = mesh.recv(prev, 3, kLong);
      MeshBytes want(i % 33, static_cast<std::uint8_t>(prev));
      stamp(want, i);
      if (got != want) ++mismatches;
    }
    sender.join();
  });
  EXPECT_EQ(mismatches.load(), 0);
}

TEST_P(MeshConformance, LargeMessage) {
  const std::size_t bytes = GetParam().largeMessageBytes;
  auto world = makeWorld(2);
  const std::size_t words = bytes / sizeof(std::uint64_t);
  std::thread rx([&] {
    MeshBytes got;
    try {
      got = world.ranks[1]->recv(0, 9, Millis(60000));
    } catch (const std::exception& e) {
      FAIL() << "large recv threw " << e.what();
    }
    ASSERT_EQ(got.size(), bytes);
    std::size_t bad = 0;
    for (std::size_t i = 0; i < words; ++i) {
      std::uint64_t w;
      std::memcpy(&w, got.data() + i * sizeof(w), sizeof(w));
      bad += w != i * 0x9E3779B97F4A7C15ull;
    }
    EXPECT_EQ(bad, 0u);
    for (std::size_t i = words * sizeof(std::uint64_t); i < bytes; ++i) EXPECT_EQ(got[i], 0xAB);
  });
  MeshBytes msg(bytes, 0xAB);
  for (std::size_t i = 0; i < words; ++i) {
    const std::uint64_t w = i * 0x9E3779B97F4A7C15ull;
    std::memcpy(msg.data() + i * sizeof(w), &w, sizeof(w));
  }
  world.ranks[0]->send(1, 9, std::move(msg), Millis(60000));
  rx.join();
}

TEST_P(MeshConformance, EmptyMessageAndSelfSend) {
  auto world = makeWorld(2);
  world.ranks[0]->send(1, 5, MeshBytes{}, kLong);
  EXPECT_TRUE(world.ranks[1]->recv(0, 5, kLong).empty());
  world.ranks[1]->send(1, 5, bytesOf("me"), kLong);
  world.ranks[1]->send(1, 5, bytesOf("again"), kLong);
  EXPECT_EQ(stringOf(world.ranks[1]->recv(1, 5, kLong)), "me");
  EXPECT_EQ(stringOf(world.ranks[1]->recv(1, 5, kLong)), "again");
}

TEST_P(MeshConformance, RecvTimeoutFiresWithinBoundAndConsumesNothing) {
  auto world = makeWorld(2);
  constexpr Millis kTimeout{200};
  constexpr Millis kSlack{300};
  const auto start = Clock::now();
  try {
    world.ranks[1]->recv(0, 4, kTimeout);
    FAIL() << "recv with nothing sent returned";
  } catch (const MeshTimeout& e) {
    EXPECT_EQ(e.kind(), MeshErrorKind::kTimeout);
    EXPECT_EQ(e.peer(), 0);
    EXPECT_NE(std::string(e.what()).find("rank 0"), std::string::npos) << e.what();
  }
  const Millis took = since(start);
  EXPECT_GE(took.count(), kTimeout.count());
  EXPECT_LT(took.count(), (kTimeout + kSlack).count());
  // The timed-out recv was withdrawn: the next message goes to the next recv.
  world.ranks[0]->send(1, 4, bytesOf("late"), kLong);
  EXPECT_EQ(stringOf(world.ranks[1]->recv(0, 4, kLong)), "late");
}

TEST_P(MeshConformance, NonBlockingTestWaitAndTake) {
  auto world = makeWorld(2);
  auto req = world.ranks[1]->irecv(0, 6);
  EXPECT_EQ(req->peer(), 0);
  EXPECT_EQ(req->tag(), 6u);
  EXPECT_FALSE(req->test());
  EXPECT_FALSE(req->wait(Millis(50)));
  auto send = world.ranks[0]->isend(1, 6, bytesOf("x"));
  EXPECT_TRUE(send->wait(kLong));
  EXPECT_THROW(send->take(), MeshUsageError);
  ASSERT_TRUE(req->wait(kLong));
  EXPECT_TRUE(req->test());
  EXPECT_FALSE(req->cancel());  // already finished
  EXPECT_EQ(stringOf(req->take()), "x");
  EXPECT_THROW(req->take(), MeshUsageError);  // only once
}

TEST_P(MeshConformance, CancelWithdrawsPendingRecv) {
  auto world = makeWorld(2);
  auto first = world.ranks[1]->irecv(0, 2);
  auto second = world.ranks[1]->irecv(0, 2);
  EXPECT_TRUE(first->cancel());
  EXPECT_TRUE(first->test());
  EXPECT_THROW(first->wait(kLong), MeshCancelled);
  {
    auto dropped = world.ranks[1]->irecv(0, 2);  // destroyed pending: cancelled
  }
  world.ranks[0]->send(1, 2, bytesOf("one"), kLong);
  world.ranks[0]->send(1, 2, bytesOf("two"), kLong);
  ASSERT_TRUE(second->wait(kLong));
  EXPECT_EQ(stringOf(second->take()), "one");
  EXPECT_EQ(stringOf(world.ranks[1]->recv(0, 2, kLong)), "two");
}

// The zero-copy forms keep the order of the copying ones; a message lands
// in the irecvInto buffer (in place, or handed over for the caller to copy),
// and isendFrom's bytes are the caller's again once its request finished.
TEST_P(MeshConformance, ZeroCopyFormsKeepOrderAndLendOnlyUntilDone) {
  auto world = makeWorld(2);
  const std::size_t n = std::size_t{3} << 20;
  std::vector<std::uint8_t> source(n);
  for (std::size_t i = 0; i < n; ++i) source[i] = static_cast<std::uint8_t>(i * 7 + 1);
  const std::vector<std::uint8_t> first = source;
  std::vector<std::uint8_t> into1(n, 0), into2(n, 0);
  auto recv1 = world.ranks[1]->irecvInto(0, 4, into1.data(), n);
  auto recv2 = world.ranks[1]->irecvInto(0, 4, into2.data(), n);
  auto send = world.ranks[0]->isendFrom(1, 4, source.data(), n);
  ASSERT_TRUE(send->wait(kLong));
  send.reset();
  std::fill(source.begin(), source.end(), 0x5A);  // the caller's again
  world.ranks[0]->send(1, 4, MeshBytes(source.begin(), source.end()), kLong);
  auto land = [&](MeshRequest& recv, std::vector<std::uint8_t>& into) {
    ASSERT_TRUE(recv.wait(kLong));
    MeshBytes got = recv.take();
    ASSERT_EQ(got.size(), n);
    if (got.data() != into.data()) std::copy(got.begin(), got.end(), into.begin());
  };
  land(*recv1, into1);
  land(*recv2, into2);
  EXPECT_TRUE(into1 == first);
  EXPECT_TRUE(std::all_of(into2.begin(), into2.end(), [](std::uint8_t b) { return b == 0x5A; }));
}

TEST_P(MeshConformance, AbortFailsBlockedAndFutureCallsPromptly) {
  auto world = makeWorld(2);
  Mesh& mesh = *world.ranks[0];
  std::atomic<bool> threwAborted{false};
  Clock::time_point abortedAt;
  std::thread blocked([&] {
    try {
      mesh.recv(1, 1, kLong);
    } catch (const MeshAborted&) {
      threwAborted = true;
    } catch (const std::exception& e) {
      ADD_FAILURE() << "blocked recv threw " << e.what();
    }
  });
  std::this_thread::sleep_for(Millis(50));
  abortedAt = Clock::now();
  mesh.abort();
  blocked.join();
  EXPECT_TRUE(threwAborted.load());
  EXPECT_LT(since(abortedAt).count(), 1000);
  EXPECT_THROW(mesh.recv(1, 1, kLong), MeshAborted);
  EXPECT_THROW(mesh.send(1, 1, bytesOf("x"), kLong), MeshAborted);
  // The other rank sees rank 0 as lost.
  EXPECT_THROW(world.ranks[1]->recv(0, 1, GetParam().peerLossBound + kLong), MeshPeerLost);
}

TEST_P(MeshConformance, DeadPeerFailsEveryPendingCallWithTypedError) {
  constexpr int kWorld = 3;
  constexpr int kDead = 1;
  auto world = makeWorld(kWorld);
  const std::uint64_t epochBefore = world.ranks[0]->epoch();
  // A message already received from the peer before it dies stays receivable.
  world.ranks[kDead]->send(0, 99, bytesOf("last words"), kLong);
  std::vector<std::unique_ptr<MeshRequest>> pending;
  for (int r : {0, 2}) {
    for (MeshTag tag = 0; tag < 4; ++tag) pending.push_back(world.ranks[r]->irecv(kDead, tag));
  }
  std::atomic<int> blockedLost{0};
  std::vector<std::thread> blocked;
  for (int r : {0, 2}) {
    blocked.emplace_back([&, r] {
      try {
        world.ranks[r]->recv(kDead, 50, kLong);
      } catch (const MeshPeerLost& e) {
        if (e.peer() == kDead) ++blockedLost;
      } catch (const std::exception& e) {
        ADD_FAILURE() << "blocked recv on rank " << r << " threw " << e.what();
      }
    });
  }
  std::this_thread::sleep_for(Millis(50));
  const auto killedAt = Clock::now();
  killRank(world, kDead);
  const Millis bound = GetParam().peerLossBound;
  for (auto& req : pending) {
    try {
      req->wait(bound);
      ADD_FAILURE() << "pending recv from the dead peer did not fail";
    } catch (const MeshPeerLost& e) {
      EXPECT_EQ(e.kind(), MeshErrorKind::kPeerLost);
      EXPECT_EQ(e.peer(), kDead);
      EXPECT_NE(std::string(e.what()).find("rank 1"), std::string::npos) << e.what();
    }
  }
  for (auto& t : blocked) t.join();
  EXPECT_EQ(blockedLost.load(), 2);
  EXPECT_LT(since(killedAt).count(), bound.count() + 500);
  // Future calls involving the dead peer fail too; survivors still talk.
  EXPECT_THROW(world.ranks[0]->send(kDead, 0, bytesOf("x"), kLong), MeshPeerLost);
  EXPECT_THROW(world.ranks[2]->recv(kDead, 0, kLong), MeshPeerLost);
  EXPECT_EQ(stringOf(world.ranks[0]->recv(kDead, 99, kLong)), "last words");
  EXPECT_FALSE(world.ranks[0]->isPeerAlive(kDead));
  EXPECT_GT(world.ranks[0]->epoch(), epochBefore);
  EXPECT_GT(world.ranks[2]->epoch(), epochBefore);
  world.ranks[0]->send(2, 0, bytesOf("still here"), kLong);
  EXPECT_EQ(stringOf(world.ranks[2]->recv(0, 0, kLong)), "still here");
}

TEST_P(MeshConformance, BadRankArgumentIsAClearUsageError) {
  auto world = makeWorld(2);
  Mesh& mesh = *world.ranks[0];
  for (int bad : {-1, 2, 1000}) {
    try {
      mesh.send(bad, 0, bytesOf("x"), kLong);
      ADD_FAILURE() << "send to rank " << bad << " was accepted";
    } catch (const MeshUsageError& e) {
      EXPECT_EQ(e.kind(), MeshErrorKind::kUsage);
      EXPECT_NE(std::string(e.what()).find("rank " + std::to_string(bad)), std::string::npos)
          << e.what();
    }
    EXPECT_THROW(mesh.irecv(bad, 0), MeshUsageError);
    EXPECT_THROW(mesh.isPeerAlive(bad), MeshUsageError);
  }
}

TEST_P(MeshConformance, ErrorsAreCollectiveErrors) {
  auto world = makeWorld(2);
  EXPECT_THROW(world.ranks[0]->recv(1, 0, Millis(1)), CollectiveError);
}

}  // namespace
}  // namespace testing
}  // namespace hearth
