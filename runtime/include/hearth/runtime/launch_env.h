// hearth/runtime/launch_env.h — reads the torchrun/hearthrun environment of a
// worker process (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, GROUP_RANK,
// MASTER_ADDR, MASTER_PORT, TORCHELASTIC_RESTART_COUNT, TORCHELASTIC_RUN_ID).
//
// With none of RANK/WORLD_SIZE set, the process is a world of one (rank 0).
// Anything inconsistent (RANK without WORLD_SIZE, non-numbers, RANK >=
// WORLD_SIZE, a multi-rank world without MASTER_ADDR or MASTER_PORT, a port out
// of range) throws LaunchEnvError with one line naming the variable and value.
// Pure function of its input; thread-safe.
#pragma once

#include <functional>
#include <optional>
#include <stdexcept>
#include <string>

namespace hearth {

class LaunchEnvError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

struct LaunchEnv {
  int rank = 0;
  int worldSize = 1;
  int localRank = 0;
  int localWorldSize = 1;
  int groupRank = 0;
  std::string masterAddr;  // empty for a world of one
  int masterPort = 0;
  int restartCount = 0;
  std::string runId = "none";
};

// Looks variables up with `lookup` (std::getenv by default) so tests can feed
// their own environment.
using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;
LaunchEnv readLaunchEnv(const EnvLookup& lookup);
LaunchEnv readLaunchEnv();

}  // namespace hearth
