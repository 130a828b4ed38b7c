// The bounds-based collectives of collectives.h (reduceScatterSum,
// allgatherInPlace, sparseReduceScatterAdd) on every backend: inproc, the
// Mesh collectives over the inproc Mesh (default and tiny chunks) and Gloo
// over loopback. Ranks are threads. Data are small integers, so every sum is
// exact whatever the summation order and results are compared with ==.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <exception>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "../engine/group_factories.h"
#include "../transport/rank_threads.h"
#include "hearth/transport/inproc.h"
#include "hearth/transport/inproc_mesh.h"
#include "hearth/transport/mesh_collectives.h"

namespace hearth::testing {
namespace {

using Clock = std::chrono::steady_clock;
using Bounds = std::vector<std::size_t>;
using Group = std::vector<std::shared_ptr<Collectives>>;
constexpr Millis kTimeout{20000};
constexpr Millis kShortTimeout{800};

// A group plus, for the Mesh backends, the fault injector of its Mesh.
struct World {
  Group ranks;
  std::shared_ptr<InprocFaults> faults;
};

World meshWorld(int w, std::size_t chunkBytes) {
  InprocMeshGroup mesh = makeInprocMesh(w);
  MeshCollectivesOptions options;
  options.chunkBytes = chunkBytes;
  World world{{}, mesh.faults};
  for (auto& m : mesh.ranks) world.ranks.push_back(makeMeshCollectives(std::move(m), options));
  return world;
}

World makeWorld(const std::string& backend, int w, Millis glooTimeout = kTimeout) {
  if (backend == "inproc") return World{inprocGroup(w), nullptr};
  if (backend == "mesh") return meshWorld(w, std::size_t{64} << 10);
  if (backend == "meshTinyChunks") return meshWorld(w, 12);  // 3 floats, 1 u32 pair
  return World{glooGroup(w, glooTimeout), nullptr};
}

int maxWorld(const std::string& backend) {
  return backend == "gloo" ? 4 : 8;
}

// Rank-unique small integers: sums over <= 8 ranks are exact in float.
float valueOf(int rank, std::size_t i) {
  return float(int((i * 2654435761u + std::size_t(rank) * 97) % 61) - 30 + rank);
}

float sumOf(int w, std::size_t i) {
  float sum = 0;
  for (int r = 0; r < w; ++r) sum += valueOf(r, i);
  return sum;
}

Bounds evenBounds(std::size_t count, int w) {
  Bounds b(w + 1, 0);
  for (int r = 0; r < w; ++r) b[r + 1] = b[r] + count / w + (std::size_t(r) < count % w ? 1 : 0);
  return b;
}

Bounds randomBounds(std::size_t count, int w, std::mt19937& rng) {
  std::uniform_int_distribution<std::size_t> cut(0, count);
  Bounds b{0};
  for (int r = 1; r < w; ++r) b.push_back(cut(rng));
  b.push_back(count);
  std::sort(b.begin(), b.end());
  return b;
}

// Even, random, everything in the first / last rank, and the literal
// {0,0,5,5,17} for four ranks.
std::vector<Bounds> boundsCases(std::size_t count, int w, std::mt19937& rng) {
  std::vector<Bounds> cases{evenBounds(count, w), randomBounds(count, w, rng)};
  Bounds first(w + 1, count), last(w + 1, 0);
  first[0] = 0;
  last[w] = count;
  cases.push_back(first);
  cases.push_back(last);
  if (w == 4 && count == 17) cases.push_back({0, 0, 5, 5, 17});
  return cases;
}

std::string describe(const Bounds& b) {
  std::string s = "{";
  for (std::size_t i = 0; i < b.size(); ++i) s += (i ? "," : "") + std::to_string(b[i]);
  return s + "}";
}

class ReduceScatterTest : public ::testing::TestWithParam<std::string> {};

// reduceScatterSum leaves the exact sum in the own range; allgatherInPlace
// then restores every range on every rank (the rest is overwritten first).
void checkDense(World& world, std::size_t count, const Bounds& bounds) {
  const int w = static_cast<int>(world.ranks.size());
  SCOPED_TRACE("world " + std::to_string(w) + " count " + std::to_string(count) + " bounds " +
               describe(bounds));
  std::vector<std::vector<float>> data(w);
  expectNoErrors(runRanks(world.ranks, [&](int r, Collectives& c) {
    data[r].resize(count);
    for (std::size_t i = 0; i < count; ++i) data[r][i] = valueOf(r, i);
    c.reduceScatterSum(data[r].data(), bounds, kTimeout);
  }));
  for (int r = 0; r < w; ++r) {
    for (std::size_t i = bounds[r]; i < bounds[r + 1]; ++i) {
      ASSERT_EQ(data[r][i], sumOf(w, i)) << "rank " << r << " element " << i;
    }
  }
  expectNoErrors(runRanks(world.ranks, [&](int r, Collectives& c) {
    for (std::size_t i = 0; i < count; ++i) {
      if (i < bounds[r] || i >= bounds[r + 1]) data[r][i] = -12345.0f;
    }
    c.allgatherInPlace(data[r].data(), bounds, kTimeout);
  }));
  for (int r = 0; r < w; ++r) {
    for (std::size_t i = 0; i < count; ++i) {
      ASSERT_EQ(data[r][i], sumOf(w, i)) << "rank " << r << " element " << i;
    }
  }
}

TEST_P(ReduceScatterTest, DenseExactSumsAndAllgatherRestoresEveryRange) {
  std::mt19937 rng(7);
  const std::string backend = GetParam();
  for (int w = 1; w <= maxWorld(backend); ++w) {
    World world = makeWorld(backend, w);
    std::vector<std::size_t> counts{0, 1, 17, 1001};
    const bool big = backend != "meshTinyChunks" && (w == 2 || w == 5 || w == maxWorld(backend));
    if (big) counts.push_back((std::size_t{1} << 20) + 3);
    for (std::size_t count : counts) {
      const std::vector<Bounds> cases = count > 100000
                                            ? std::vector<Bounds>{randomBounds(count, w, rng)}
                                            : boundsCases(count, w, rng);
      for (const Bounds& bounds : cases) {
        checkDense(world, count, bounds);
        if (::testing::Test::HasFatalFailure()) return;
      }
    }
  }
}

// ---- sparse -------------------------------------------------------------------

struct SparseInput {
  std::vector<std::uint32_t> indices;
  std::vector<float> values;
};

// Random subsets of [0, n) with density p; some ranks also always hit every
// range's first and last element; rank 1 (if any) sends nothing.
std::vector<SparseInput> sparseInputs(int w, std::size_t n, const Bounds& bounds, double p,
                                      std::mt19937& rng) {
  std::vector<SparseInput> inputs(w);
  std::bernoulli_distribution pick(p);
  std::uniform_int_distribution<int> value(-40, 40);
  for (int r = 0; r < w; ++r) {
    if (r == 1) continue;
    for (std::size_t i = 0; i < n; ++i) {
      bool edge = false;
      for (int o = 0; o < w && r % 2 == 0; ++o) {
        const bool nonEmpty = bounds[o] < bounds[o + 1];
        edge |= nonEmpty && (i == bounds[o] || i + 1 == bounds[o + 1]);
      }
      if (!edge && !pick(rng)) continue;
      inputs[r].indices.push_back(static_cast<std::uint32_t>(i));
      inputs[r].values.push_back(float(value(rng)));
    }
  }
  return inputs;
}

// The result must equal (exactly) the starting `owned` plus the dense sum,
// and the backend's own dense reduceScatterSum of the densified inputs.
void checkSparse(World& world, std::size_t n, const Bounds& bounds,
                 const std::vector<SparseInput>& inputs) {
  const int w = static_cast<int>(world.ranks.size());
  SCOPED_TRACE("world " + std::to_string(w) + " n " + std::to_string(n) + " bounds " +
               describe(bounds));
  std::vector<float> dense(n, 0.0f);
  for (const auto& in : inputs) {
    for (std::size_t i = 0; i < in.indices.size(); ++i) dense[in.indices[i]] += in.values[i];
  }
  auto base = [](std::size_t i) { return float(1000 + int(i % 7)); };
  std::vector<std::vector<float>> owned(w), viaDense(w);
  expectNoErrors(runRanks(world.ranks, [&](int r, Collectives& c) {
    owned[r].resize(bounds[r + 1] - bounds[r]);
    for (std::size_t j = 0; j < owned[r].size(); ++j) owned[r][j] = base(bounds[r] + j);
    c.sparseReduceScatterAdd(inputs[r].indices, inputs[r].values, bounds, owned[r].data(),
                             kTimeout);
    viaDense[r].assign(n, 0.0f);
    for (std::size_t i = 0; i < inputs[r].indices.size(); ++i) {
      viaDense[r][inputs[r].indices[i]] = inputs[r].values[i];
    }
    c.reduceScatterSum(viaDense[r].data(), bounds, kTimeout);
  }));
  for (int r = 0; r < w; ++r) {
    for (std::size_t j = 0; j < owned[r].size(); ++j) {
      const std::size_t i = bounds[r] + j;
      ASSERT_EQ(owned[r][j], base(i) + dense[i]) << "rank " << r << " index " << i;
      ASSERT_EQ(owned[r][j], base(i) + viaDense[r][i]) << "rank " << r << " index " << i;
    }
  }
}

TEST_P(ReduceScatterTest, SparseMatchesDenseReferenceExactly) {
  std::mt19937 rng(11);
  const std::string backend = GetParam();
  for (int w = 1; w <= maxWorld(backend); ++w) {
    World world = makeWorld(backend, w);
    for (std::size_t n : {0, 1, 17, 1000, 20011}) {
      for (const Bounds& bounds : boundsCases(n, w, rng)) {
        for (double p : {0.0, 0.02, 0.5}) {
          if (n == 20011 && p == 0.5 && backend == "meshTinyChunks") continue;
          checkSparse(world, n, bounds, sparseInputs(w, n, bounds, p, rng));
          if (::testing::Test::HasFatalFailure()) return;
        }
      }
    }
  }
}

// ---- usage errors -------------------------------------------------------------

// Every rank runs fn; each must throw CollectiveUsageError.
void expectUsageErrorOnEveryRank(const std::string& backend, int w,
                                 const std::function<void(int, Collectives&)>& fn) {
  World world = makeWorld(backend, w);
  const auto errors = runRanks(world.ranks, fn);
  for (int r = 0; r < w; ++r) {
    ASSERT_TRUE(errors[r]) << "rank " << r << " did not throw";
    EXPECT_THROW(std::rethrow_exception(errors[r]), CollectiveUsageError) << "rank " << r;
  }
}

TEST_P(ReduceScatterTest, BadBoundsAreUsageErrors) {
  const std::string backend = GetParam();
  const int w = 3;
  std::vector<float> scratch(16, 1.0f);
  const std::vector<Bounds> bad{
      {0, 5, 10},        // wrong size (W rather than W + 1 offsets)
      {0, 2, 4, 6, 10},  // wrong size (W + 2)
      {1, 2, 3, 10},     // does not start at 0
      {0, 6, 4, 10},     // decreasing
      {0, 4, 10, 8},     // decreasing at the end (bounds.back() is not the count)
  };
  for (const Bounds& bounds : bad) {
    SCOPED_TRACE(describe(bounds));
    expectUsageErrorOnEveryRank(backend, w, [&](int r, Collectives& c) {
      std::vector<float> data(scratch);
      c.reduceScatterSum(data.data(), bounds, kShortTimeout);
    });
    expectUsageErrorOnEveryRank(backend, w, [&](int r, Collectives& c) {
      std::vector<float> data(scratch);
      c.allgatherInPlace(data.data(), bounds, kShortTimeout);
    });
    expectUsageErrorOnEveryRank(backend, w, [&](int r, Collectives& c) {
      std::vector<float> owned(16, 0.0f);
      c.sparseReduceScatterAdd({1}, {1.0f}, bounds, owned.data(), kShortTimeout);
    });
  }
}

TEST_P(ReduceScatterTest, BadSparsePairsAreUsageErrors) {
  const std::string backend = GetParam();
  const Bounds bounds{0, 4, 10, 10};
  std::vector<float> owned(10, 0.0f);
  auto call = [&](std::vector<std::uint32_t> indices, std::vector<float> values) {
    expectUsageErrorOnEveryRank(backend, 3, [&](int r, Collectives& c) {
      c.sparseReduceScatterAdd(indices, values, bounds, owned.data() + bounds[r], kShortTimeout);
    });
  };
  call({3, 10}, {1.0f, 2.0f});  // index == bounds.back()
  call({5, 5}, {1.0f, 2.0f});   // duplicate
  call({7, 2}, {1.0f, 2.0f});   // decreasing
  call({1, 2}, {1.0f});         // sizes differ
}

// Ranks that disagree on the bounds (here on the total count) must not hang:
// at least one rank fails (a usage error where a message has the wrong size;
// with tiny chunks a missing chunk is a timeout), and every rank returns
// within about the timeout. A rank whose own segments all match may finish.
TEST_P(ReduceScatterTest, RanksDisagreeingOnBoundsFail) {
  const std::string backend = GetParam();
  if (backend == "gloo") GTEST_SKIP() << "Gloo cannot tell; ranks would wait for the timeout";
  World world = makeWorld(backend, 3);
  const auto start = Clock::now();
  const auto errors = runRanks(world.ranks, [&](int r, Collectives& c) {
    const Bounds bounds = r == 2 ? Bounds{0, 3, 6, 12} : Bounds{0, 3, 6, 9};
    std::vector<float> data(12, 1.0f);
    c.reduceScatterSum(data.data(), bounds, kShortTimeout);
  });
  int failed = 0, usage = 0;
  for (int r = 0; r < 3; ++r) {
    if (!errors[r]) continue;
    ++failed;
    try {
      std::rethrow_exception(errors[r]);
    } catch (const CollectiveUsageError&) {
      ++usage;
    } catch (const CollectiveError&) {
    }
  }
  EXPECT_GE(failed, 1);
  if (backend != "meshTinyChunks") {
    EXPECT_GE(usage, 1);
  }
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(5));
}

// ---- failures -----------------------------------------------------------------

// The last rank never joins; the others must fail within about the timeout.
TEST_P(ReduceScatterTest, MissingPeerFailsWithinTheTimeout) {
  const std::string backend = GetParam();
  const int w = 3;
  World world = makeWorld(backend, w, kShortTimeout);
  const Bounds bounds = evenBounds(3000, w);
  const auto start = Clock::now();
  const auto errors = runRanks(world.ranks, [&](int r, Collectives& c) {
    if (r == w - 1) return;
    std::vector<float> data(3000, 1.0f);
    c.reduceScatterSum(data.data(), bounds, kShortTimeout);
  });
  for (int r = 0; r < w - 1; ++r) {
    ASSERT_TRUE(errors[r]) << "rank " << r << " did not fail";
    EXPECT_THROW(std::rethrow_exception(errors[r]), CollectiveError) << "rank " << r;
  }
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(6));
}

// A peer that aborts (inproc, Mesh) or is killed (Mesh) while the others wait
// in each collective: they fail promptly, long before the 20 s timeout.
TEST_P(ReduceScatterTest, AbortedOrKilledPeerFailsTheOthersPromptly) {
  const std::string backend = GetParam();
  if (backend == "gloo") GTEST_SKIP() << "c10d Gloo has no abort that reaches other ranks";
  for (int op = 0; op < 3; ++op) {
    for (bool kill : {false, true}) {
      if (kill && backend == "inproc") continue;  // inproc has no kill
      SCOPED_TRACE("op " + std::to_string(op) + (kill ? " kill" : " abort"));
      const int w = 4;
      World world = makeWorld(backend, w);
      const Bounds bounds = evenBounds(4000, w);
      const auto start = Clock::now();
      const auto errors = runRanks(world.ranks, [&](int r, Collectives& c) {
        if (r == 2) {
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
          if (kill) {
            world.faults->killRank(2);
          } else {
            c.abort();
          }
          return;
        }
        std::vector<float> data(4000, 1.0f), owned(1000, 0.0f);
        if (op == 0) c.reduceScatterSum(data.data(), bounds, kTimeout);
        if (op == 1) c.allgatherInPlace(data.data(), bounds, kTimeout);
        if (op == 2) c.sparseReduceScatterAdd({1, 2}, {1.0f, 1.0f}, bounds, owned.data(), kTimeout);
      });
      for (int r : {0, 1, 3}) {
        ASSERT_TRUE(errors[r]) << "rank " << r << " did not fail";
        EXPECT_THROW(std::rethrow_exception(errors[r]), CollectiveError) << "rank " << r;
      }
      EXPECT_LT(Clock::now() - start, std::chrono::seconds(5));
    }
  }
}

TEST_P(ReduceScatterTest, AbortedRankFailsAtOnce) {
  World world = makeWorld(GetParam(), 2);
  world.ranks[0]->abort();
  std::vector<float> data(8, 1.0f), owned(4, 0.0f);
  const Bounds bounds{0, 4, 8};
  EXPECT_THROW(world.ranks[0]->reduceScatterSum(data.data(), bounds, kShortTimeout),
               CollectiveAborted);
  EXPECT_THROW(world.ranks[0]->allgatherInPlace(data.data(), bounds, kShortTimeout),
               CollectiveAborted);
  EXPECT_THROW(
      world.ranks[0]->sparseReduceScatterAdd({1}, {1.0f}, bounds, owned.data(), kShortTimeout),
      CollectiveAborted);
}

INSTANTIATE_TEST_SUITE_P(Backends, ReduceScatterTest,
                         ::testing::Values("inproc", "mesh", "meshTinyChunks", "gloo"),
                         [](const auto& info) { return info.param; });

// CountingCollectives forwards the new calls and counts them.
TEST(CountingCollectives, ForwardsAndCountsTheNewCollectives) {
  Group inner = inprocGroup(2);
  std::vector<std::shared_ptr<CountingCollectives>> counting;
  Group group;
  for (auto& c : inner) {
    counting.push_back(std::make_shared<CountingCollectives>(c));
    group.push_back(counting.back());
  }
  const Bounds bounds{0, 3, 5};
  std::vector<std::vector<float>> data(2);
  expectNoErrors(runRanks(group, [&](int r, Collectives& c) {
    data[r] = {1, 2, 3, 4, 5};
    c.reduceScatterSum(data[r].data(), bounds, kTimeout);
    c.allgatherInPlace(data[r].data(), bounds, kTimeout);
    std::vector<float> owned(bounds[r + 1] - bounds[r], 0.0f);
    c.sparseReduceScatterAdd({0, 4}, {1.0f, 1.0f}, bounds, owned.data(), kTimeout);
    EXPECT_EQ(owned.front(), r == 0 ? 2.0f : 0.0f);
    EXPECT_EQ(owned.back(), r == 0 ? 0.0f : 2.0f);
  }));
  for (int r = 0; r < 2; ++r) {
    EXPECT_EQ(data[r], (std::vector<float>{2, 4, 6, 8, 10}));
    EXPECT_EQ(counting[r]->reduceScatterCalls.load(), 1);
    EXPECT_EQ(counting[r]->allgatherCalls.load(), 1);
    EXPECT_EQ(counting[r]->sparseReduceScatterCalls.load(), 1);
    EXPECT_EQ(counting[r]->allreduceCalls.load(), 0);
  }
}

}  // namespace
}  // namespace hearth::testing
