// End-to-end tests of hearth_charlm: it learns with two workers, and bad
// configuration, launch environment or data fail with exit code 2 and one
// clear line.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>

#include <nlohmann/json.hpp>

#include "process_runner.h"

namespace hearth::examples_test {
namespace {

using std::chrono::seconds;

const std::string kCharlm = HEARTH_CHARLM_PATH;

std::vector<nlohmann::json> readJsonl(const std::string& path) {
  std::vector<nlohmann::json> records;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) records.push_back(nlohmann::json::parse(line));
  }
  return records;
}

nlohmann::json finalRecord(const std::vector<nlohmann::json>& records) {
  for (const auto& r : records) {
    if (r.value("event", "") == "final") return r;
  }
  return {};
}

// The program's own error lines (the launcher or logging may add others).
std::vector<std::string> errorLines(const std::string& err) {
  std::vector<std::string> lines;
  for (const auto& line : nonEmptyLines(err)) {
    if (line.find("error:") != std::string::npos) lines.push_back(line);
  }
  return lines;
}

void expectOneErrorLine(const ProcessResult& r, const std::string& mustContain) {
  EXPECT_FALSE(r.timedOut);
  EXPECT_EQ(r.exitCode, 2) << r.err;
  const auto lines = errorLines(r.err);
  ASSERT_EQ(lines.size(), 1u) << r.err;
  EXPECT_NE(lines[0].find(mustContain), std::string::npos) << lines[0];
  EXPECT_EQ(lines[0].rfind("hearth_charlm: error: ", 0), 0u) << lines[0];
}

// Runs `argv` (hearth_charlm with its arguments, writing `metrics`) as two
// workers; both must exit 0 and the metrics must end in a final record, whose
// held-out loss lands in `heldOut`. Call it under ASSERT_NO_FATAL_FAILURE.
void twoWorkersHeldOutLoss(const std::vector<std::string>& argv, const std::string& metrics,
                           double& heldOut) {
  const auto results = runTogether(workerSpecs(argv, 2), seconds(170));
  ASSERT_EQ(results[0].exitCode, 0) << results[0].err;
  ASSERT_EQ(results[1].exitCode, 0) << results[1].err;
  const auto final = finalRecord(readJsonl(metrics));
  ASSERT_FALSE(final.is_null()) << "no final record in " << metrics;
  heldOut = final.at("val_loss").get<double>();
}

// Short but real: 150 steps of 2 x 16 sequences, about 20 s on two cores.
const std::vector<std::string> kShortRun = {
    "--steps", "150", "--set", "train.eval_interval=75", "--set", "train.sample_chars=80"};

TEST(CharlmExample, TwoWorkersLearnWellBeyondTheUnigramBaseline) {
  const std::string dir = makeTempDir();
  const std::string metrics = dir + "/metrics.jsonl";
  std::vector<std::string> args = kShortRun;
  args.insert(args.end(), {"--metrics", metrics});
  ProcessResult rank0;
#ifdef HEARTH_HEARTHRUN_PATH
  std::vector<std::string> argv = {HEARTH_HEARTHRUN_PATH, "--standalone", "--nproc-per-node", "2",
                                   kCharlm};
  argv.insert(argv.end(), args.begin(), args.end());
  rank0 = runProcess({argv, {}}, seconds(170));
  ASSERT_EQ(rank0.exitCode, 0) << rank0.out << rank0.err;
#else
  std::vector<std::string> argv = {kCharlm};
  argv.insert(argv.end(), args.begin(), args.end());
  const auto results = runTogether(workerSpecs(argv, 2), seconds(170));
  ASSERT_EQ(results[0].exitCode, 0) << results[0].err;
  ASSERT_EQ(results[1].exitCode, 0) << results[1].err;
  rank0 = results[0];
#endif
  const auto records = readJsonl(metrics);
  const auto final = finalRecord(records);
  ASSERT_FALSE(final.is_null()) << "no final record in " << metrics;
  const double val = final.at("val_loss").get<double>();
  const double unigram = final.at("unigram_loss").get<double>();
  EXPECT_GT(unigram, 2.5);  // English-like text: about 3.2 nats/char
  EXPECT_LT(val, 0.8 * unigram) << "held-out " << val << " vs unigram " << unigram;
  EXPECT_EQ(final.at("world_size").get<int>(), 2);
  EXPECT_GT(final.at("wire_bytes").get<double>(), 0);
  // Progress records every log interval (25 steps) and evaluations.
  int train = 0, eval = 0;
  for (const auto& r : records) {
    if (r.value("event", "") == "train") {
      ++train;
      EXPECT_GT(r.at("samples_per_s").get<double>(), 0);
    }
    if (r.value("event", "") == "eval") ++eval;
  }
  EXPECT_EQ(train, 6);
  EXPECT_EQ(eval, 2);
  // (hearthrun may forward the workers' streams to either of its own.)
  const std::string output = rank0.out + rank0.err;
  EXPECT_NE(output.find("--- sample"), std::string::npos) << output;
  EXPECT_NE(output.find("step 150/150"), std::string::npos) << output;
  std::filesystem::remove_all(dir);
}

// ZeRO through the example's unchanged loop: stages 2 and 3 (the GPT blocks
// are ZeroUnits) reach the held-out loss of plain data parallel.
TEST(CharlmExample, ZeroStagesTrainLikePlainDataParallel) {
  const std::string dir = makeTempDir();
  std::map<int, double> heldOut;
  for (int stage : {0, 2, 3}) {
    const std::string metrics = dir + "/metrics" + std::to_string(stage) + ".jsonl";
    std::vector<std::string> argv = {kCharlm,
                                     "--steps",
                                     "60",
                                     "--set",
                                     "train.eval_interval=60",
                                     "--set",
                                     "train.sample_chars=0",
                                     "--set",
                                     "zero_optimization.stage=" + std::to_string(stage),
                                     "--metrics",
                                     metrics};
    ASSERT_NO_FATAL_FAILURE(twoWorkersHeldOutLoss(argv, metrics, heldOut[stage]));
  }
  EXPECT_NEAR(heldOut[2], heldOut[0], 0.01 * heldOut[0]);
  EXPECT_NEAR(heldOut[3], heldOut[0], 0.01 * heldOut[0]);
  std::filesystem::remove_all(dir);
}

// Sharded checkpoints from the example's loop: a run that saves at step 20
// and a second run that resumes there end where the uninterrupted run ends,
// also when the resumed run has another world size.
TEST(CharlmExample, ResumesFromAShardedCheckpoint) {
  const std::string dir = makeTempDir();
  auto run = [&](int world, const std::vector<std::string>& extra, const std::string& metrics) {
    std::vector<std::string> argv = {kCharlm,
                                     "--steps",
                                     "40",
                                     "--set",
                                     "train.eval_interval=40",
                                     "--set",
                                     "train.sample_chars=0",
                                     "--set",
                                     "zero_optimization.stage=2",
                                     "--metrics",
                                     metrics};
    argv.insert(argv.end(), extra.begin(), extra.end());
    const auto results = runTogether(workerSpecs(argv, world), seconds(170));
    for (int r = 0; r < world; ++r) {
      EXPECT_EQ(results[static_cast<std::size_t>(r)].exitCode, 0)
          << results[static_cast<std::size_t>(r)].err;
    }
    const auto final = finalRecord(readJsonl(metrics));
    EXPECT_FALSE(final.is_null()) << "no final record in " << metrics;
    return final.is_null() ? -1.0 : final.at("val_loss").get<double>();
  };
  const double full =
      run(2, {"--set", "checkpoint.dir=" + dir + "/ck", "--set", "checkpoint.interval=20"},
          dir + "/full.jsonl");
  ASSERT_TRUE(std::filesystem::exists(dir + "/ck/step-20/group-0/manifest.json"));
  const double resumed =
      run(2, {"--set", "checkpoint.resume=" + dir + "/ck/step-20"}, dir + "/resumed.jsonl");
  EXPECT_NEAR(resumed, full, 1e-4 * full);
  // Stage 2 at one rank from the 2-rank checkpoint: not the same run (the
  // batch per step halves), but it loads, resharded, and trains on.
  const double single =
      run(1, {"--set", "checkpoint.resume=" + dir + "/ck/step-20"}, dir + "/single.jsonl");
  EXPECT_GT(single, 0.0);
  EXPECT_LT(single, 1.2 * full);
  std::filesystem::remove_all(dir);
}

// Activation checkpointing (model.checkpoint_segments) recomputes the
// blocks with the dropout RNG restored: the run is the same, also with ZeRO-3
// units inside the checkpointed segments.
TEST(CharlmExample, ActivationCheckpointingTrainsTheSameModel) {
  const std::string dir = makeTempDir();
  std::map<std::string, double> heldOut;
  for (const std::string config : {"plain", "segments", "zero3+segments"}) {
    const std::string metrics = dir + "/" + config + ".jsonl";
    std::vector<std::string> argv = {kCharlm,
                                     "--steps",
                                     "30",
                                     "--set",
                                     "model.n_layer=4",
                                     "--set",
                                     "model.dropout=0.1",
                                     "--set",
                                     "train.eval_interval=30",
                                     "--set",
                                     "train.sample_chars=0",
                                     "--metrics",
                                     metrics};
    if (config != "plain") argv.insert(argv.end(), {"--set", "model.checkpoint_segments=2"});
    if (config == "zero3+segments") {
      argv.insert(argv.end(), {"--set", "zero_optimization.stage=3"});
    }
    ASSERT_NO_FATAL_FAILURE(twoWorkersHeldOutLoss(argv, metrics, heldOut[config]));
  }
  EXPECT_NEAR(heldOut["segments"], heldOut["plain"], 1e-5);
  EXPECT_NEAR(heldOut["zero3+segments"], heldOut["plain"], 1e-3);
  std::filesystem::remove_all(dir);
}

TEST(CharlmExample, CheckpointKeysNeedZero) {
  expectOneErrorLine(runProcess({{kCharlm, "--set", "checkpoint.dir=/tmp/nowhere"}}, seconds(60)),
                     "zero_optimization.stage");
}

TEST(CharlmExample, UnknownKeyIsRejected) {
  expectOneErrorLine(runProcess({{kCharlm, "--set", "model.n_layers=3"}}, seconds(60)),
                     "model.n_layers");
}

TEST(CharlmExample, WrongTypeOnTheCommandLineIsRejected) {
  expectOneErrorLine(
      runProcess({{kCharlm, "--set", "train_micro_batch_size_per_gpu=\"x\""}}, seconds(60)),
      "train_micro_batch_size_per_gpu");
}

TEST(CharlmExample, WrongTypeInAConfigFileIsRejected) {
  const std::string dir = makeTempDir();
  std::ofstream(dir + "/bad.json") << R"({"model": {"n_layer": "two"}})";
  expectOneErrorLine(runProcess({{kCharlm, "--config", dir + "/bad.json"}}, seconds(60)),
                     "model.n_layer");
  std::filesystem::remove_all(dir);
}

TEST(CharlmExample, WorldSizeMismatchIsRejectedOnEveryRank) {
  const auto results = runTogether(workerSpecs({kCharlm, "--set", "world_size=3"}, 2), seconds(60));
  expectOneErrorLine(results[0], "world_size");
  EXPECT_EQ(results[1].exitCode, 2) << results[1].err;
  EXPECT_TRUE(errorLines(results[1].err).empty()) << "only rank 0 reports config errors";
}

TEST(CharlmExample, MissingMasterAddressIsRejected) {
  expectOneErrorLine(runProcess({{kCharlm}, {{"RANK", "0"}, {"WORLD_SIZE", "2"}}}, seconds(60)),
                     "MASTER_ADDR");
}

TEST(CharlmExample, MissingDataFileIsRejected) {
  expectOneErrorLine(
      runProcess({{kCharlm, "--data", "/nonexistent/hearth/input.txt"}}, seconds(60)),
      "/nonexistent/hearth/input.txt");
}

TEST(CharlmExample, EmptyDataFileIsRejected) {
  const std::string dir = makeTempDir();
  std::ofstream(dir + "/empty.txt").flush();
  expectOneErrorLine(runProcess({{kCharlm, "--data", dir + "/empty.txt"}}, seconds(60)), "empty");
  std::filesystem::remove_all(dir);
}

TEST(CharlmExample, TrainsOnASmallTextFile) {
  const std::string dir = makeTempDir();
  {
    std::ofstream text(dir + "/tiny.txt");
    const char* words[] = {"alpha", "beta", "gamma", "delta", "epsilon"};
    for (int i = 0; i < 600; ++i) text << words[i % 5] << " " << words[(i * 3) % 5] << ".\n";
  }
  const std::string metrics = dir + "/m.jsonl";
  const auto r =
      runProcess({{kCharlm, "--data", dir + "/tiny.txt", "--steps", "60", "--metrics", metrics,
                   "--set", "model.block_size=32", "--set", "train.sample_chars=40"}},
                 seconds(90));
  ASSERT_EQ(r.exitCode, 0) << r.err;
  EXPECT_NE(r.err.find(dir + "/tiny.txt"), std::string::npos) << r.err;
  const auto final = finalRecord(readJsonl(metrics));
  ASSERT_FALSE(final.is_null());
  EXPECT_LT(final.at("val_loss").get<double>(), final.at("unigram_loss").get<double>());
  std::filesystem::remove_all(dir);
}

TEST(CharlmExample, ShippedConfigIsValidAndHelpWorks) {
  const auto config = runProcess(
      {{kCharlm, "--config", HEARTH_EXAMPLES_CONFIG_DIR "/charlm.json", "--print-config"}},
      seconds(60));
  ASSERT_EQ(config.exitCode, 0) << config.err;
  const auto effective = nlohmann::json::parse(config.out);
  EXPECT_EQ(effective.at("model").at("n_layer").get<int>(), 2);
  const auto help = runProcess({{kCharlm, "--help"}}, seconds(60));
  EXPECT_EQ(help.exitCode, 0);
  EXPECT_NE(help.out.find("--data"), std::string::npos);
  EXPECT_NE(help.out.find("model.n_layer"), std::string::npos);
}

}  // namespace
}  // namespace hearth::examples_test
