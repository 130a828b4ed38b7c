#include "worker_env.h"

namespace hearth::launcher {

EnvMap buildWorkerEnv(const EnvMap& base, const WorkerEnvParams& p, int localRank) {
  EnvMap env = base;
  const int rank = p.nodeRank * p.nprocPerNode + localRank;
  const int worldSize = p.nnodes * p.nprocPerNode;
  env["RANK"] = std::to_string(rank);
  env["LOCAL_RANK"] = std::to_string(localRank);
  env["WORLD_SIZE"] = std::to_string(worldSize);
  env["LOCAL_WORLD_SIZE"] = std::to_string(p.nprocPerNode);
  env["GROUP_RANK"] = std::to_string(p.nodeRank);
  env["GROUP_WORLD_SIZE"] = std::to_string(p.nnodes);
  env["ROLE_RANK"] = std::to_string(rank);
  env["ROLE_WORLD_SIZE"] = std::to_string(worldSize);
  env["ROLE_NAME"] = "default";
  env["MASTER_ADDR"] = p.masterAddr;
  env["MASTER_PORT"] = std::to_string(p.masterPort);
  env["TORCHELASTIC_RESTART_COUNT"] = std::to_string(p.restartCount);
  env["TORCHELASTIC_MAX_RESTARTS"] = std::to_string(p.maxRestarts);
  env["TORCHELASTIC_RUN_ID"] = p.runId;
  // The workers build their own store at MASTER_ADDR:MASTER_PORT.
  env["TORCHELASTIC_USE_AGENT_STORE"] = "False";
  if (p.nprocPerNode > 1 && env.count("OMP_NUM_THREADS") == 0) env["OMP_NUM_THREADS"] = "1";
  if (!p.hearthRelay.empty()) {
    env["HEARTH_RELAY"] = p.hearthRelay;
    env["HEARTH_RUN_ID"] = p.runId;
  }
  return env;
}

std::vector<std::string> toEnvStrings(const EnvMap& env) {
  std::vector<std::string> out;
  out.reserve(env.size());
  for (const auto& [key, value] : env) out.push_back(key + "=" + value);
  return out;
}

}  // namespace hearth::launcher
