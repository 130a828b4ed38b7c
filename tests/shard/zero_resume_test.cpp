// ZeroEngine::saveCheckpoint / loadCheckpoint: a run saved at world 4 and
// resumed at world 2, 3 and 4 (fresh models with another init, fresh
// optimizers) ends where the uninterrupted run ends, exactly at the same
// world size; corrupt, mixed-up or incomplete checkpoints are rejected before
// the engine changes. Every world size trains on the same 12-row global
// batches (12 / world rows per rank), so the runs are comparable.
#include <gtest/gtest.h>
#include <torch/optim/rmsprop.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>

#include "hearth/shard/shard_checkpoint.h"
#include "zero_harness.h"

namespace hearth::testing {
namespace {

namespace fs = std::filesystem;

constexpr int kRows = 12;  // global batch rows, divisible by 2, 3 and 4
constexpr int kSteps = 12;
constexpr int kSaveAfter = 6;

class TempDir {
 public:
  explicit TempDir(const std::string& tag) {
    static std::atomic<int> counter{0};
    path_ = fs::temp_directory_path() / ("hearth_zero_resume_" + std::to_string(::getpid()) + "_" +
                                         std::to_string(counter++) + "_" + tag);
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  std::string str() const { return path_.string(); }
  fs::path path() const { return path_; }

 private:
  fs::path path_;
};

ZeroOptions optionsFor(int stage) {
  ZeroOptions options;
  options.stage = stage;
  options.persistBelowNumel = 64;  // stage 3: both unit weights partitioned
  options.bucketCapMb = 0.004;     // several buckets per group
  return options;
}

std::unique_ptr<torch::optim::Optimizer> optimizerFor(const std::string& kind,
                                                      std::vector<at::Tensor> params) {
  if (kind == "adam_amsgrad") {
    return std::make_unique<torch::optim::Adam>(
        params, torch::optim::AdamOptions(0.01).amsgrad(true).weight_decay(1e-3));
  }
  if (kind == "rmsprop") {
    return std::make_unique<torch::optim::RMSprop>(
        params, torch::optim::RMSpropOptions(0.005).momentum(0.5).centered(true));
  }
  return makeOptimizer(kind, std::move(params));
}

// One rank's model (init seed `seed` + rank), `kind` optimizer and engine,
// destroyed in the reverse order.
struct RankEngine {
  RankEngine(std::uint64_t seed, int rank, const std::string& kind,
             std::shared_ptr<Collectives> comm, const ZeroOptions& options)
      : net(makeNet(seed + static_cast<std::uint64_t>(rank))),
        opt(optimizerFor(kind, net->parameters())),
        zero(*net, *opt, std::move(comm), options) {}
  Net net;
  std::unique_ptr<torch::optim::Optimizer> opt;
  ZeroEngine zero;
};

// Steps [from, to) on this rank's rows of the fixed global batches.
void train(ZeroEngine& zero, Net& net, std::int64_t from, std::int64_t to) {
  const int micro = kRows / zero.worldSize();
  const std::int64_t begin = std::int64_t(zero.rank()) * micro;
  for (std::int64_t s = from; s < to; ++s) {
    Batch batch = globalBatch(static_cast<int>(s), kRows);
    zero.backward(loss(net, batch.x.narrow(0, begin, micro), batch.y.narrow(0, begin, micro)));
    ASSERT_TRUE(zero.step());
  }
}

// `world` ranks (init seed 7 + rank) train steps [0, steps) and save into
// `dir` at step `steps`.
void saveAfter(int world, const ZeroOptions& options, const std::string& kind,
               const std::string& dir, std::int64_t steps) {
  runRanks(world, [&](int rank, std::shared_ptr<Collectives> comm) {
    RankEngine r(7, rank, kind, std::move(comm), options);
    train(r.zero, r.net, 0, steps);
    r.zero.saveCheckpoint(dir, steps);
  });
}

// Collects each rank's result and checks that every rank holds bitwise the
// same parameters; returns rank 0's.
std::vector<at::Tensor> sameOnAllRanks(const std::vector<std::vector<at::Tensor>>& finals) {
  for (std::size_t r = 1; r < finals.size(); ++r) {
    EXPECT_EQ(maxAbsDiff(finals[r], finals[0]), 0.0) << "rank " << r;
  }
  return finals[0];
}

// An uninterrupted run of kSteps that saves into `dir` after kSaveAfter.
std::vector<at::Tensor> trainAndSave(int world, const ZeroOptions& options, const std::string& kind,
                                     const std::string& dir) {
  std::vector<std::vector<at::Tensor>> finals(static_cast<std::size_t>(world));
  runRanks(world, [&](int rank, std::shared_ptr<Collectives> comm) {
    RankEngine r(7, rank, kind, std::move(comm), options);
    train(r.zero, r.net, 0, kSaveAfter);
    r.zero.saveCheckpoint(dir, kSaveAfter);
    train(r.zero, r.net, kSaveAfter, kSteps);
    finals[static_cast<std::size_t>(rank)] = r.zero.fullParameters();
  });
  return sameOnAllRanks(finals);
}

// Fresh models (another init) and optimizers at `world`, loaded from `dir`,
// trained to kSteps.
std::vector<at::Tensor> resume(int world, const ZeroOptions& options, const std::string& kind,
                               const std::string& dir) {
  std::vector<std::vector<at::Tensor>> finals(static_cast<std::size_t>(world));
  runRanks(world, [&](int rank, std::shared_ptr<Collectives> comm) {
    RankEngine r(99, rank, kind, std::move(comm), options);
    const std::int64_t step = r.zero.loadCheckpoint(dir);
    EXPECT_EQ(step, kSaveAfter);
    train(r.zero, r.net, step, kSteps);
    finals[static_cast<std::size_t>(rank)] = r.zero.fullParameters();
    // The model's own parameters are the engine's (persistent groups were
    // gathered after the load; stage-3 units are gathered on use).
    if (options.stage < 3) {
      EXPECT_EQ(maxAbsDiff(snapshot(r.net), finals[static_cast<std::size_t>(rank)]), 0.0);
    }
  });
  return sameOnAllRanks(finals);
}

struct ResumeCase {
  int stage;
  std::string optimizer;
};

void PrintTo(const ResumeCase& c, std::ostream* os) {
  *os << "stage " << c.stage << ", " << c.optimizer;
}

std::string resumeName(const ::testing::TestParamInfo<ResumeCase>& info) {
  return "stage" + std::to_string(info.param.stage) + "_" + info.param.optimizer;
}

class ZeroResume : public ::testing::TestWithParam<ResumeCase> {};

TEST_P(ZeroResume, SavedAtWorld4ResumesAtWorld2And3AndExactlyAt4) {
  const ResumeCase c = GetParam();
  TempDir dir("resume");
  const auto uninterrupted = trainAndSave(4, optionsFor(c.stage), c.optimizer, dir.str());
  for (const int world : {4, 2, 3}) {
    const auto resumed = resume(world, optionsFor(c.stage), c.optimizer, dir.str());
    ASSERT_EQ(resumed.size(), uninterrupted.size());
    if (world == 4) {
      EXPECT_EQ(maxAbsDiff(resumed, uninterrupted), 0.0) << "same world size must be exact";
    } else {
      EXPECT_LT(maxAbsDiff(resumed, uninterrupted), 2e-5) << "resumed at world " << world;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Stages, ZeroResume,
                         ::testing::Values(ResumeCase{1, "adam"}, ResumeCase{1, "sgd"},
                                           ResumeCase{2, "adam"}, ResumeCase{2, "sgd"},
                                           ResumeCase{3, "adam"}, ResumeCase{3, "sgd"},
                                           ResumeCase{2, "adam_amsgrad"}, ResumeCase{3, "adamw"},
                                           ResumeCase{1, "rmsprop"}),
                         resumeName);

// DGC inside ZeRO: each rank's momentum u and residual v (the unsent local
// gradient) and the step count that drives DGC's warm-up are saved, so a
// resume at the same world size continues bitwise; at another world size the
// residual mass is spread over the new ranks and training goes on.
TEST(ZeroResumeDgc, CodecStateAndWarmupAreRestored) {
  for (int stage : {2, 3}) {
    SCOPED_TRACE("stage " + std::to_string(stage));
    ZeroOptions options = optionsFor(stage);
    options.codec = "dgc";
    // Exact selection: the sampled threshold's RNG and adaptation state are
    // not saved (they restart on resume, so sampled runs pick slightly
    // different sets), while u, v and the step are.
    options.codecParams = {{"density", 0.05},    {"momentum", 0.9}, {"warmup_periods", 2},
                           {"warmup_period", 4}, {"min_numel", 0},  {"exact", true}};
    TempDir dir("dgc");
    const auto uninterrupted = trainAndSave(4, options, "plainsgd", dir.str());
    EXPECT_EQ(maxAbsDiff(resume(4, options, "plainsgd", dir.str()), uninterrupted), 0.0);
    const auto resumed = resume(2, options, "plainsgd", dir.str());
    for (const auto& p : resumed) EXPECT_TRUE(p.isfinite().all().item<bool>());
    // Not the same run (another world size), but the same neighbourhood.
    EXPECT_LT(maxAbsDiff(resumed, uninterrupted), 0.5);
  }
}

TEST(ZeroCheckpoint, WritesOneCheckpointPerGroup) {
  TempDir dir("layout");
  saveAfter(2, optionsFor(3), "adam", dir.str(), 1);
  // Stage 3: the persistent group and one per unit.
  for (int g = 0; g < 3; ++g) {
    const CheckpointSet set((dir.path() / ("group-" + std::to_string(g))).string());
    EXPECT_EQ(set.worldSize(), 2);
    EXPECT_EQ(set.step(), 1);
    const auto names = set.sliceNames();
    for (const char* name : {"param", "optim.exp_avg", "optim.exp_avg_sq"}) {
      EXPECT_NE(std::find(names.begin(), names.end(), name), names.end()) << name;
    }
    const ShardState state = set.loadRank(1);
    EXPECT_EQ(state.meta.at("optimizer").at("type"), "adam");
    EXPECT_EQ(state.meta.at("optimizer").at("scalars").at("step"), 1);
    EXPECT_EQ(state.blobs.count("rng"), 1u);
  }
  EXPECT_FALSE(fs::exists(dir.path() / "group-3"));

  // Saving into the same directory at another world size replaces it: the
  // shard files of the old world size go, and the new checkpoint opens.
  saveAfter(3, optionsFor(3), "adam", dir.str(), 2);
  for (int g = 0; g < 3; ++g) {
    const fs::path group = dir.path() / ("group-" + std::to_string(g));
    EXPECT_FALSE(fs::exists(group / shardFileName(0, 2)));
    const CheckpointSet set(group.string());
    EXPECT_EQ(set.worldSize(), 3);
    EXPECT_EQ(set.step(), 2);
  }
}

TEST(ZeroCheckpoint, RestoresTheCpuGenerator) {
  TempDir dir("rng");
  saveAfter(2, optionsFor(2), "sgd", dir.str(), 2);
  const auto saved = loadShard((dir.path() / "group-0" / shardFileName(0, 2)).string()).blobs;
  runRanks(3, [&](int rank, std::shared_ptr<Collectives> comm) {
    RankEngine r(99, rank, "sgd", std::move(comm), optionsFor(2));
    r.zero.loadCheckpoint(dir.str());
  });
  at::Tensor now = at::detail::getDefaultCPUGenerator().get_state();
  const std::vector<std::uint8_t> bytes(now.data_ptr<std::uint8_t>(),
                                        now.data_ptr<std::uint8_t>() + now.numel());
  EXPECT_EQ(bytes, saved.at("rng"));
}

TEST(ZeroCheckpoint, RejectsAnotherGroupingAndAnotherOptimizer) {
  TempDir dir("grouping");
  saveAfter(2, optionsFor(3), "adam", dir.str(), 1);
  struct Attempt {
    int stage;
    std::string optimizer;
    std::string expected;  // in every rank's message
  };
  for (const Attempt& a : {Attempt{2, "adam", "group-0"}, Attempt{3, "sgd", "optimizer 'adam'"}}) {
    std::vector<std::string> messages(2);
    runRanks(2, [&](int rank, std::shared_ptr<Collectives> comm) {
      RankEngine r(99, rank, a.optimizer, std::move(comm), optionsFor(a.stage));
      const auto before = r.zero.fullParameters();
      try {
        r.zero.loadCheckpoint(dir.str());
      } catch (const ShardCheckpointError& e) {
        messages[static_cast<std::size_t>(rank)] = e.what();
      }
      EXPECT_EQ(maxAbsDiff(r.zero.fullParameters(), before), 0.0);
    });
    for (const auto& message : messages) {
      EXPECT_NE(message.find(a.expected), std::string::npos) << message;
    }
  }
}

// Saves A after 2 steps and B after 3 (stage 3, 2 ranks: three groups).
class ZeroCheckpointCorruption : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    a_ = std::make_unique<TempDir>("a");
    b_ = std::make_unique<TempDir>("b");
    runRanks(2, [&](int rank, std::shared_ptr<Collectives> comm) {
      RankEngine r(7, rank, "adam", std::move(comm), optionsFor(3));
      train(r.zero, r.net, 0, 2);
      r.zero.saveCheckpoint(a_->str(), 2);
      train(r.zero, r.net, 2, 3);
      r.zero.saveCheckpoint(b_->str(), 3);
    });
  }
  static void TearDownTestSuite() {
    a_.reset();
    b_.reset();
  }

  // A copy of A, damaged by `damage`, loaded by engines that trained a step
  // of their own: every rank must throw ShardCheckpointError containing
  // `expected`, and keep its parameters and optimizer state.
  void expectRejected(const std::function<void(const fs::path&)>& damage,
                      const std::string& expected) {
    TempDir copy("copy");
    fs::copy(a_->path(), copy.path(), fs::copy_options::recursive);
    damage(copy.path());
    std::vector<std::string> messages(2);
    runRanks(2, [&](int rank, std::shared_ptr<Collectives> comm) {
      RankEngine r(99, rank, "adam", std::move(comm), optionsFor(3));
      train(r.zero, r.net, 5, 6);
      const auto before = r.zero.fullParameters();
      // (Stage 3: the model's unit parameters have no memory between steps;
      // this rank's shards are what the engine holds.)
      std::vector<at::Tensor> shards;
      for (const auto& shard : r.zero.shardParameters()) shards.push_back(shard.detach().clone());
      std::vector<at::Tensor> moments;
      for (const auto& shard : r.zero.shardParameters()) {
        auto& state = static_cast<torch::optim::AdamParamState&>(
            *r.opt->state().at(c10::guts::to_string(shard.unsafeGetTensorImpl())));
        moments.push_back(state.exp_avg().clone());
      }
      try {
        r.zero.loadCheckpoint(copy.str());
        ADD_FAILURE() << "rank " << rank << " loaded a damaged checkpoint";
      } catch (const ShardCheckpointError& e) {
        messages[static_cast<std::size_t>(rank)] = e.what();
      }
      EXPECT_EQ(maxAbsDiff(r.zero.shardParameters(), shards), 0.0);
      EXPECT_EQ(maxAbsDiff(r.zero.fullParameters(), before), 0.0);
      std::vector<at::Tensor> after;
      for (const auto& shard : r.zero.shardParameters()) {
        auto& state = static_cast<torch::optim::AdamParamState&>(
            *r.opt->state().at(c10::guts::to_string(shard.unsafeGetTensorImpl())));
        after.push_back(state.exp_avg());
      }
      EXPECT_EQ(maxAbsDiff(after, moments), 0.0);
      // The engine is still usable.
      train(r.zero, r.net, 6, 7);
    });
    for (int r = 0; r < 2; ++r) {
      EXPECT_NE(messages[static_cast<std::size_t>(r)].find(expected), std::string::npos)
          << "rank " << r << ": " << messages[static_cast<std::size_t>(r)];
    }
  }

  static std::unique_ptr<TempDir> a_, b_;
};
std::unique_ptr<TempDir> ZeroCheckpointCorruption::a_;
std::unique_ptr<TempDir> ZeroCheckpointCorruption::b_;

TEST_F(ZeroCheckpointCorruption, TruncatedShardFile) {
  expectRejected(
      [](const fs::path& dir) {
        const fs::path file = dir / "group-1" / shardFileName(1, 2);
        fs::resize_file(file, fs::file_size(file) / 2);
      },
      "group-1/" + shardFileName(1, 2));
}

TEST_F(ZeroCheckpointCorruption, ShardFileFromAnotherCheckpoint) {
  expectRejected(
      [](const fs::path& dir) {
        fs::copy_file(b_->path() / "group-2" / shardFileName(0, 2),
                      dir / "group-2" / shardFileName(0, 2), fs::copy_options::overwrite_existing);
      },
      "group-2/" + shardFileName(0, 2));
}

TEST_F(ZeroCheckpointCorruption, MissingManifest) {
  expectRejected([](const fs::path& dir) { fs::remove(dir / "group-1" / kShardManifestName); },
                 std::string("group-1/") + kShardManifestName);
}

TEST_F(ZeroCheckpointCorruption, GroupFromAnotherCheckpoint) {
  expectRejected(
      [](const fs::path& dir) {
        fs::remove_all(dir / "group-2");
        fs::copy(b_->path() / "group-2", dir / "group-2", fs::copy_options::recursive);
      },
      "group-2: belongs to another checkpoint");
}

// Only rank 1 reads its own RNG blob: rank 0 learns of the failure from it.
TEST_F(ZeroCheckpointCorruption, CorruptSectionSeenByOneRank) {
  expectRejected(
      [](const fs::path& dir) {
        const fs::path file = dir / "group-0" / shardFileName(1, 2);
        std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
        const auto at = static_cast<std::streamoff>(fs::file_size(file)) - 24 - 100;
        f.seekg(at);
        char byte = 0;
        f.read(&byte, 1);
        byte = static_cast<char>(byte ^ 0x5a);
        f.seekp(at);
        f.write(&byte, 1);
      },
      "group-0/" + shardFileName(1, 2));
}

}  // namespace
}  // namespace hearth::testing
