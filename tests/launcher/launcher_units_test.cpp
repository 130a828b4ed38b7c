#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>

#include <gtest/gtest.h>

#include "line_splitter.h"
#include "posix_util.h"
#include "worker_env.h"

namespace hearth::launcher {
namespace {

TEST(LineSplitter, PrefixesCompleteLines) {
  LineSplitter s("[rank3]: ");
  EXPECT_EQ(s.feed("a\nb"), "[rank3]: a\n");
  EXPECT_TRUE(s.hasPending());
  EXPECT_EQ(s.feed("c\n\nd\n"), "[rank3]: bc\n[rank3]: \n[rank3]: d\n");
  EXPECT_EQ(s.flush(), "");
  EXPECT_EQ(s.feed("tail"), "");
  EXPECT_EQ(s.flush(), "[rank3]: tail\n");
  EXPECT_FALSE(s.hasPending());
}

TEST(LineSplitter, SplitsOverlongLines) {
  LineSplitter s("> ", 4);
  EXPECT_EQ(s.feed("abcdefghij\n"), "> abcd\n> efgh\n> ij\n");
}

TEST(WorkerEnv, TorchrunVariables) {
  WorkerEnvParams p;
  p.nodeRank = 1;
  p.nnodes = 2;
  p.nprocPerNode = 2;
  p.restartCount = 1;
  p.maxRestarts = 3;
  p.masterAddr = "10.0.0.1";
  p.masterPort = 1234;
  p.runId = "job";
  EnvMap env = buildWorkerEnv({{"PATH", "/bin"}}, p, 1);
  EXPECT_EQ(env["RANK"], "3");
  EXPECT_EQ(env["LOCAL_RANK"], "1");
  EXPECT_EQ(env["WORLD_SIZE"], "4");
  EXPECT_EQ(env["LOCAL_WORLD_SIZE"], "2");
  EXPECT_EQ(env["GROUP_RANK"], "1");
  EXPECT_EQ(env["ROLE_RANK"], "3");
  EXPECT_EQ(env["ROLE_WORLD_SIZE"], "4");
  EXPECT_EQ(env["MASTER_ADDR"], "10.0.0.1");
  EXPECT_EQ(env["MASTER_PORT"], "1234");
  EXPECT_EQ(env["TORCHELASTIC_RESTART_COUNT"], "1");
  EXPECT_EQ(env["TORCHELASTIC_MAX_RESTARTS"], "3");
  EXPECT_EQ(env["TORCHELASTIC_RUN_ID"], "job");
  EXPECT_EQ(env["OMP_NUM_THREADS"], "1");
  EXPECT_EQ(env["PATH"], "/bin");
}

TEST(WorkerEnv, OmpNumThreads) {
  WorkerEnvParams p;
  p.nprocPerNode = 2;
  EXPECT_EQ(buildWorkerEnv({{"OMP_NUM_THREADS", "8"}}, p, 0)["OMP_NUM_THREADS"], "8");
  p.nprocPerNode = 1;
  EXPECT_EQ(buildWorkerEnv({}, p, 0).count("OMP_NUM_THREADS"), 0u);
}

TEST(PosixUtil, DescribeWaitStatus) {
  EXPECT_EQ(describeWaitStatus(3 << 8), "exited with status 3");
  EXPECT_EQ(describeWaitStatus(9), "killed by signal 9 (SIGKILL)");
  EXPECT_EQ(signalName(15), "SIGTERM");
}

TEST(PosixUtil, ResolveProgram) {
  EXPECT_EQ(resolveProgram("sh", "/nonexistent:/bin:/usr/bin").value_or(""), "/bin/sh");
  EXPECT_FALSE(resolveProgram("definitely-not-a-program-xyz", "/bin:/usr/bin"));
  char path[] = "/tmp/hearthrun-not-executable-XXXXXX";
  int fd = ::mkstemp(path);  // created with mode 0600
  ASSERT_GE(fd, 0);
  ::close(fd);
  EXPECT_FALSE(resolveProgram(path, ""));
  ::unlink(path);
}

}  // namespace
}  // namespace hearth::launcher
