// worker_env.h: the torchrun-compatible environment of one worker.
//
// Contract: buildWorkerEnv() returns `base` plus the variables torchrun sets
// for a worker (RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, GROUP_RANK,
// GROUP_WORLD_SIZE, ROLE_RANK, ROLE_WORLD_SIZE, ROLE_NAME, MASTER_ADDR,
// MASTER_PORT, TORCHELASTIC_RESTART_COUNT, TORCHELASTIC_MAX_RESTARTS,
// TORCHELASTIC_RUN_ID, TORCHELASTIC_USE_AGENT_STORE) and OMP_NUM_THREADS=1 when
// more than one worker runs per node and `base` does not set it already.
// RANK = nodeRank * nprocPerNode + localRank; WORLD_SIZE = nnodes * nprocPerNode.
// Preconditions: 0 <= localRank < nprocPerNode, 0 <= nodeRank < nnodes.
// Thread-safety: pure functions; nothing blocks.
#pragma once

#include <string>
#include <vector>

#include "launch_options.h"

namespace hearth::launcher {

struct WorkerEnvParams {
  int nodeRank = 0;
  int nnodes = 1;
  int nprocPerNode = 1;
  int restartCount = 0;
  int maxRestarts = 0;
  std::string masterAddr = "127.0.0.1";
  int masterPort = kDefaultMasterPort;
  std::string runId = "none";
  // Non-empty: workers meet through this hearth relay ("HOST:PORT").
  std::string hearthRelay;
};

EnvMap buildWorkerEnv(const EnvMap& base, const WorkerEnvParams& params, int localRank);

// "KEY=VALUE" strings, in key order, ready for execve().
std::vector<std::string> toEnvStrings(const EnvMap& env);

}  // namespace hearth::launcher
