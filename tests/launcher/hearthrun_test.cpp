// End-to-end tests: run the real hearthrun binary with launcher_test_worker.
#include <signal.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <sstream>

#include "test_process.h"

namespace hearth::launcher::testing {
namespace {

using std::chrono::seconds;

constexpr seconds kTimeout{30};        // hard cap per hearthrun run
constexpr double kPromptSeconds = 15;  // "completes within seconds"

const std::string kHearthrun = HEARTHRUN_PATH;
const std::string kWorker = TEST_WORKER_PATH;

// A clean environment: no PET_* or OMP_NUM_THREADS leaking in from the caller.
EnvChanges cleanEnv(const EnvChanges& extra = {}) {
  EnvChanges env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string kv(*e);
    if (kv.rfind("PET_", 0) == 0) env[kv.substr(0, kv.find('='))] = std::nullopt;
  }
  env["OMP_NUM_THREADS"] = std::nullopt;
  for (const auto& [k, v] : extra) env[k] = v;
  return env;
}

std::vector<std::string> cmd(std::vector<std::string> flags, std::vector<std::string> actions) {
  std::vector<std::string> argv{kHearthrun};
  argv.insert(argv.end(), flags.begin(), flags.end());
  argv.push_back(kWorker);
  argv.insert(argv.end(), actions.begin(), actions.end());
  return argv;
}

// rank -> KEY -> every value printed for it (one per restart).
using RankEnv = std::map<int, std::map<std::string, std::vector<std::string>>>;

RankEnv parseRankEnv(const std::string& out) {
  RankEnv result;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("[rank", 0) != 0) continue;
    auto close = line.find("]: ");
    if (close == std::string::npos) continue;
    int rank = std::stoi(line.substr(5, close - 5));
    std::string kv = line.substr(close + 3);
    auto eq = kv.find('=');
    if (eq == std::string::npos) continue;
    result[rank][kv.substr(0, eq)].push_back(kv.substr(eq + 1));
  }
  return result;
}

std::string last(const RankEnv& env, int rank, const std::string& key) {
  auto r = env.find(rank);
  if (r == env.end()) return "<no rank>";
  auto k = r->second.find(key);
  if (k == r->second.end() || k->second.empty()) return "<missing>";
  return k->second.back();
}

std::string describe(const ProcessResult& r) {
  return "exit=" + std::to_string(r.exitCode) + " signal=" + std::to_string(r.termSignal) +
         " timedOut=" + std::to_string(r.timedOut) + "\n--- stdout ---\n" + r.out +
         "--- stderr ---\n" + r.err;
}

TEST(Hearthrun, StandaloneEnvironment) {
  auto r = runProcess(cmd({"--nproc-per-node", "2", "--standalone"}, {"env", "partial:no-newline"}),
                      cleanEnv(), kTimeout);
  ASSERT_EQ(r.exitCode, 0) << describe(r);
  RankEnv env = parseRankEnv(r.out);
  ASSERT_EQ(env.size(), 2u) << describe(r);
  std::string port = last(env, 0, "MASTER_PORT");
  EXPECT_NE(port, "29500");
  EXPECT_GT(std::stoi(port), 0);
  for (int rank : {0, 1}) {
    SCOPED_TRACE("rank " + std::to_string(rank));
    EXPECT_EQ(last(env, rank, "RANK"), std::to_string(rank));
    EXPECT_EQ(last(env, rank, "LOCAL_RANK"), std::to_string(rank));
    EXPECT_EQ(last(env, rank, "WORLD_SIZE"), "2");
    EXPECT_EQ(last(env, rank, "LOCAL_WORLD_SIZE"), "2");
    EXPECT_EQ(last(env, rank, "GROUP_RANK"), "0");
    EXPECT_EQ(last(env, rank, "ROLE_RANK"), std::to_string(rank));
    EXPECT_EQ(last(env, rank, "ROLE_WORLD_SIZE"), "2");
    EXPECT_EQ(last(env, rank, "MASTER_ADDR"), "127.0.0.1");
    EXPECT_EQ(last(env, rank, "MASTER_PORT"), port);
    EXPECT_EQ(last(env, rank, "TORCHELASTIC_RESTART_COUNT"), "0");
    EXPECT_EQ(last(env, rank, "TORCHELASTIC_MAX_RESTARTS"), "0");
    EXPECT_EQ(last(env, rank, "TORCHELASTIC_RUN_ID"), "none");
    EXPECT_EQ(last(env, rank, "OMP_NUM_THREADS"), "1");
    // The partial last line is flushed with the prefix when the worker exits.
    EXPECT_NE(r.out.find("[rank" + std::to_string(rank) + "]: no-newline\n"), std::string::npos)
        << describe(r);
  }
}

TEST(Hearthrun, DefaultsWithoutStandalone) {
  auto r = runProcess(cmd({}, {"env", "err:to-stderr"}),
                      cleanEnv({{"OMP_NUM_THREADS", std::nullopt}}), kTimeout);
  ASSERT_EQ(r.exitCode, 0) << describe(r);
  RankEnv env = parseRankEnv(r.out);
  EXPECT_EQ(last(env, 0, "MASTER_ADDR"), "127.0.0.1");
  EXPECT_EQ(last(env, 0, "MASTER_PORT"), "29500");
  EXPECT_EQ(last(env, 0, "WORLD_SIZE"), "1");
  EXPECT_EQ(last(env, 0, "OMP_NUM_THREADS"), "<unset>");  // only set for nproc > 1
  EXPECT_NE(r.err.find("[rank0]: to-stderr\n"), std::string::npos) << describe(r);
  EXPECT_EQ(r.out.find("to-stderr"), std::string::npos);
}

TEST(Hearthrun, UserOmpNumThreadsIsKept) {
  auto r = runProcess(cmd({"--nproc-per-node", "2"}, {"env"}), cleanEnv({{"OMP_NUM_THREADS", "7"}}),
                      kTimeout);
  ASSERT_EQ(r.exitCode, 0) << describe(r);
  RankEnv env = parseRankEnv(r.out);
  EXPECT_EQ(last(env, 0, "OMP_NUM_THREADS"), "7");
  EXPECT_EQ(last(env, 1, "OMP_NUM_THREADS"), "7");
}

TEST(Hearthrun, PetVariablesAndFlagPrecedence) {
  auto env = cleanEnv({{"PET_NPROC_PER_NODE", "3"},
                       {"PET_MASTER_PORT", "29555"},
                       {"PET_MASTER_ADDR", "127.0.0.2"},
                       {"PET_RDZV_ID", "pet-run"},
                       {"PET_MAX_RESTARTS", "4"}});
  auto r = runProcess(cmd({}, {"env"}), env, kTimeout);
  ASSERT_EQ(r.exitCode, 0) << describe(r);
  RankEnv parsed = parseRankEnv(r.out);
  ASSERT_EQ(parsed.size(), 3u) << describe(r);
  EXPECT_EQ(last(parsed, 2, "WORLD_SIZE"), "3");
  EXPECT_EQ(last(parsed, 2, "MASTER_PORT"), "29555");
  EXPECT_EQ(last(parsed, 2, "MASTER_ADDR"), "127.0.0.2");
  EXPECT_EQ(last(parsed, 2, "TORCHELASTIC_RUN_ID"), "pet-run");
  EXPECT_EQ(last(parsed, 2, "TORCHELASTIC_MAX_RESTARTS"), "4");

  auto o = runProcess(
      cmd({"--nproc_per_node", "1", "--master-port", "29556", "--rdzv-id", "cli"}, {"env"}), env,
      kTimeout);
  ASSERT_EQ(o.exitCode, 0) << describe(o);
  RankEnv overridden = parseRankEnv(o.out);
  ASSERT_EQ(overridden.size(), 1u) << describe(o);
  EXPECT_EQ(last(overridden, 0, "WORLD_SIZE"), "1");
  EXPECT_EQ(last(overridden, 0, "MASTER_PORT"), "29556");
  EXPECT_EQ(last(overridden, 0, "MASTER_ADDR"), "127.0.0.2");  // not overridden
  EXPECT_EQ(last(overridden, 0, "TORCHELASTIC_RUN_ID"), "cli");
}

TEST(Hearthrun, FailingWorkerStopsTheGroup) {
  auto r = runProcess(cmd({"--nproc-per-node", "2", "--term-timeout", "5"},
                          {"when:rank=1", "sleep:0.3", "when:rank=1", "exit:3", "sleep:60"}),
                      cleanEnv(), kTimeout);
  EXPECT_FALSE(r.timedOut) << describe(r);
  EXPECT_NE(r.exitCode, 0) << describe(r);
  EXPECT_LT(r.seconds, kPromptSeconds) << describe(r);
  EXPECT_NE(r.err.find("worker rank 1 (local rank 1) failed: exited with status 3"),
            std::string::npos)
      << describe(r);
  EXPECT_EQ(r.err.find("worker rank 0 (local rank 0) failed"), std::string::npos) << describe(r);
}

TEST(Hearthrun, KilledWorkerStopsTheGroup) {
  auto r = runProcess(cmd({"--nproc-per-node", "2"},
                          {"when:rank=1", "sleep:0.3", "when:rank=1", "kill:9", "sleep:60"}),
                      cleanEnv(), kTimeout);
  EXPECT_FALSE(r.timedOut) << describe(r);
  EXPECT_NE(r.exitCode, 0) << describe(r);
  EXPECT_LT(r.seconds, kPromptSeconds) << describe(r);
  EXPECT_NE(r.err.find("worker rank 1 (local rank 1) failed: killed by signal 9 (SIGKILL)"),
            std::string::npos)
      << describe(r);
}

TEST(Hearthrun, WorkerIgnoringSigtermIsKilledAfterGracePeriod) {
  auto r = runProcess(
      cmd({"--nproc-per-node", "2", "--term-timeout", "1"},
          {"ignore-term", "when:rank=1", "sleep:0.5", "when:rank=1", "exit:5", "sleep:60"}),
      cleanEnv(), kTimeout);
  EXPECT_FALSE(r.timedOut) << describe(r);
  EXPECT_NE(r.exitCode, 0) << describe(r);
  EXPECT_LT(r.seconds, kPromptSeconds) << describe(r);
  EXPECT_NE(r.err.find("worker rank 1 (local rank 1) failed: exited with status 5"),
            std::string::npos)
      << describe(r);
  EXPECT_NE(r.err.find("worker rank 0 did not exit within"), std::string::npos) << describe(r);
  EXPECT_NE(r.err.find("sending SIGKILL"), std::string::npos) << describe(r);
}

TEST(Hearthrun, RestartsUntilSuccess) {
  auto r = runProcess(cmd({"--nproc-per-node", "2", "--max-restarts", "2"},
                          {"env", "when:rank=1", "when:restart<2", "exit:1"}),
                      cleanEnv(), kTimeout);
  ASSERT_EQ(r.exitCode, 0) << describe(r);
  RankEnv env = parseRankEnv(r.out);
  EXPECT_EQ(env[1]["TORCHELASTIC_RESTART_COUNT"], (std::vector<std::string>{"0", "1", "2"}))
      << describe(r);
  // Rank 0 may be stopped before it prints in the failed rounds; the final,
  // successful round always completes.
  EXPECT_EQ(last(env, 0, "TORCHELASTIC_RESTART_COUNT"), "2") << describe(r);
  EXPECT_EQ(last(env, 0, "TORCHELASTIC_MAX_RESTARTS"), "2");
  EXPECT_NE(r.err.find("restarting the worker group (restart 1 of 2)"), std::string::npos)
      << describe(r);
  EXPECT_NE(r.err.find("restarting the worker group (restart 2 of 2)"), std::string::npos)
      << describe(r);
}

TEST(Hearthrun, RestartsExhausted) {
  auto r = runProcess(cmd({"--max-restarts", "1"}, {"env", "exit:4"}), cleanEnv(), kTimeout);
  EXPECT_EQ(r.exitCode, 1) << describe(r);
  RankEnv env = parseRankEnv(r.out);
  EXPECT_EQ(env[0]["TORCHELASTIC_RESTART_COUNT"], (std::vector<std::string>{"0", "1"}))
      << describe(r);
}

TEST(Hearthrun, SigtermIsForwardedToWorkers) {
  TestProcess p(cmd({"--nproc-per-node", "2"}, {"trap", "echo:READY", "sleep:60"}), cleanEnv());
  p.start();
  ASSERT_TRUE(p.waitForOutput("READY", 2, seconds(20))) << p.stdoutText() << p.stderrText();
  ::kill(p.pid(), SIGTERM);
  auto r = p.wait(kTimeout);
  EXPECT_FALSE(r.timedOut) << describe(r);
  EXPECT_NE(r.exitCode, 0) << describe(r);
  EXPECT_EQ(r.exitCode, 128 + SIGTERM) << describe(r);
  EXPECT_NE(r.out.find("[rank0]: GOT SIGNAL 15"), std::string::npos) << describe(r);
  EXPECT_NE(r.out.find("[rank1]: GOT SIGNAL 15"), std::string::npos) << describe(r);
}

TEST(Hearthrun, SigintIsForwardedToWorkers) {
  TestProcess p(cmd({"--nproc-per-node", "1"}, {"trap", "echo:READY", "sleep:60"}), cleanEnv());
  p.start();
  ASSERT_TRUE(p.waitForOutput("READY", 1, seconds(20))) << p.stdoutText() << p.stderrText();
  ::kill(p.pid(), SIGINT);
  auto r = p.wait(kTimeout);
  EXPECT_EQ(r.exitCode, 128 + SIGINT) << describe(r);
  EXPECT_NE(r.out.find("[rank0]: GOT SIGNAL 2"), std::string::npos) << describe(r);
}

TEST(Hearthrun, BadFlagsExitWithUsageError) {
  struct Case {
    std::vector<std::string> args;
    std::string mentions;
  };
  std::vector<Case> cases = {
      {{"--nproc-per-node", "0", kWorker}, "--nproc-per-node"},
      {{"--nnodes", "abc", kWorker}, "--nnodes"},
      {{"--nnodes", "2", "--node-rank", "2", kWorker}, "--node-rank"},
      {{"--no-such-flag", kWorker}, "--no-such-flag"},
      {{"--nproc-per-node", "2"}, "PROGRAM"},
  };
  for (const auto& c : cases) {
    std::vector<std::string> argv{kHearthrun};
    argv.insert(argv.end(), c.args.begin(), c.args.end());
    auto r = runProcess(argv, cleanEnv(), kTimeout);
    EXPECT_EQ(r.exitCode, 2) << describe(r);
    EXPECT_NE(r.err.find(c.mentions), std::string::npos) << describe(r);
    EXPECT_NE(r.err.find("usage:"), std::string::npos) << describe(r);
  }
  auto pet =
      runProcess({kHearthrun, kWorker}, cleanEnv({{"PET_NPROC_PER_NODE", "zero"}}), kTimeout);
  EXPECT_EQ(pet.exitCode, 2) << describe(pet);
  EXPECT_NE(pet.err.find("PET_NPROC_PER_NODE"), std::string::npos) << describe(pet);
}

TEST(Hearthrun, HelpAndMissingProgram) {
  auto help = runProcess({kHearthrun, "--help"}, cleanEnv(), kTimeout);
  EXPECT_EQ(help.exitCode, 0) << describe(help);
  EXPECT_NE(help.out.find("usage: hearthrun"), std::string::npos) << describe(help);
  EXPECT_NE(help.out.find("--nproc-per-node"), std::string::npos) << describe(help);

  auto missing = runProcess({kHearthrun, "/nonexistent/program"}, cleanEnv(), kTimeout);
  EXPECT_EQ(missing.exitCode, 127) << describe(missing);
  EXPECT_NE(missing.err.find("/nonexistent/program"), std::string::npos) << describe(missing);
}

TEST(Hearthrun, StaticMultiNodeOverLoopback) {
  const std::string port = std::to_string(freeLoopbackPort());
  std::vector<std::unique_ptr<TestProcess>> nodes;
  for (int node = 0; node < 2; ++node) {
    nodes.push_back(std::make_unique<TestProcess>(
        cmd({"--nnodes", "2", "--nproc-per-node", "2", "--node-rank", std::to_string(node),
             "--master-addr", "127.0.0.1", "--master-port", port},
            {"env"}),
        cleanEnv()));
    nodes.back()->start();
  }
  std::set<int> ranks;
  for (int node = 0; node < 2; ++node) {
    auto r = nodes[node]->wait(kTimeout);
    ASSERT_EQ(r.exitCode, 0) << describe(r);
    RankEnv env = parseRankEnv(r.out);
    for (const auto& [rank, vars] : env) {
      SCOPED_TRACE("node " + std::to_string(node) + " rank " + std::to_string(rank));
      ranks.insert(rank);
      EXPECT_EQ(last(env, rank, "RANK"), std::to_string(rank));
      EXPECT_EQ(last(env, rank, "WORLD_SIZE"), "4");
      EXPECT_EQ(last(env, rank, "GROUP_RANK"), std::to_string(node));
      EXPECT_EQ(last(env, rank, "LOCAL_RANK"), std::to_string(rank - 2 * node));
      EXPECT_EQ(last(env, rank, "MASTER_PORT"), port);
      EXPECT_EQ(last(env, rank, "MASTER_ADDR"), "127.0.0.1");
    }
  }
  EXPECT_EQ(ranks, (std::set<int>{0, 1, 2, 3}));
}

TEST(Hearthrun, C10dRendezvousAssignsDistinctNodeRanks) {
  const std::string endpoint = "127.0.0.1:" + std::to_string(freeLoopbackPort());
  std::vector<std::unique_ptr<TestProcess>> nodes;
  for (int node = 0; node < 2; ++node) {
    nodes.push_back(std::make_unique<TestProcess>(
        cmd({"--nnodes", "2", "--nproc-per-node", "1", "--rdzv-backend", "c10d", "--rdzv-endpoint",
             endpoint, "--rdzv-id", "c10d-test", "--rdzv-timeout", "60"},
            {"env"}),
        cleanEnv()));
    nodes.back()->start();
  }
  std::set<std::string> groupRanks;
  std::set<std::string> masters;
  std::set<int> ranks;
  for (int node = 0; node < 2; ++node) {
    auto r = nodes[node]->wait(seconds(90));
    ASSERT_EQ(r.exitCode, 0) << describe(r);
    RankEnv env = parseRankEnv(r.out);
    ASSERT_EQ(env.size(), 1u) << describe(r);
    int rank = env.begin()->first;
    ranks.insert(rank);
    groupRanks.insert(last(env, rank, "GROUP_RANK"));
    masters.insert(last(env, rank, "MASTER_ADDR") + ":" + last(env, rank, "MASTER_PORT"));
    EXPECT_EQ(last(env, rank, "WORLD_SIZE"), "2");
    EXPECT_EQ(last(env, rank, "RANK"), last(env, rank, "GROUP_RANK"));
    EXPECT_EQ(last(env, rank, "TORCHELASTIC_RUN_ID"), "c10d-test");
  }
  EXPECT_EQ(groupRanks, (std::set<std::string>{"0", "1"}));
  EXPECT_EQ(ranks, (std::set<int>{0, 1}));
  EXPECT_EQ(masters.size(), 1u);  // both nodes agree on MASTER_ADDR:MASTER_PORT
}

TEST(Hearthrun, C10dRendezvousMinMaxProceedsAfterLastCall) {
  const std::string endpoint = "127.0.0.1:" + std::to_string(freeLoopbackPort());
  auto r = runProcess(cmd({"--nnodes", "1:2", "--rdzv-backend", "c10d", "--rdzv-endpoint", endpoint,
                           "--rdzv-last-call", "1"},
                          {"env"}),
                      cleanEnv(), kTimeout);
  ASSERT_EQ(r.exitCode, 0) << describe(r);
  RankEnv env = parseRankEnv(r.out);
  EXPECT_EQ(last(env, 0, "WORLD_SIZE"), "1");
  EXPECT_EQ(last(env, 0, "GROUP_RANK"), "0");
}

TEST(Hearthrun, C10dRendezvousTimesOutClearly) {
  const std::string endpoint = "127.0.0.1:" + std::to_string(freeLoopbackPort());
  auto r = runProcess(cmd({"--nnodes", "2", "--rdzv-backend", "c10d", "--rdzv-endpoint", endpoint,
                           "--rdzv-timeout", "2"},
                          {"env"}),
                      cleanEnv(), kTimeout);
  EXPECT_EQ(r.exitCode, 1) << describe(r);
  EXPECT_NE(r.err.find("timed out"), std::string::npos) << describe(r);
  EXPECT_EQ(r.out.find("[rank"), std::string::npos) << describe(r);
}

}  // namespace
}  // namespace hearth::launcher::testing
