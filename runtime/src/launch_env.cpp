// Parsing and validation of the launcher's environment variables.
#include "hearth/runtime/launch_env.h"

#include <cerrno>
#include <cstdlib>

namespace hearth {
namespace {

int parseInt(const std::string& name, const std::string& text, long lo, long hi) {
  errno = 0;
  char* end = nullptr;
  const long value = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno != 0) {
    throw LaunchEnvError("environment: " + name + "='" + text + "' is not an integer");
  }
  if (value < lo || value > hi) {
    throw LaunchEnvError("environment: " + name + "=" + text + " is out of range [" +
                         std::to_string(lo) + ", " + std::to_string(hi) + "]");
  }
  return static_cast<int>(value);
}

}  // namespace

LaunchEnv readLaunchEnv(const EnvLookup& lookup) {
  LaunchEnv env;
  const auto rank = lookup("RANK");
  const auto world = lookup("WORLD_SIZE");
  if (!rank && !world) return env;  // a world of one
  if (!world) throw LaunchEnvError("environment: RANK is set but WORLD_SIZE is not");
  if (!rank) throw LaunchEnvError("environment: WORLD_SIZE is set but RANK is not");
  constexpr long kMaxRanks = 1 << 20;
  env.worldSize = parseInt("WORLD_SIZE", *world, 1, kMaxRanks);
  env.rank = parseInt("RANK", *rank, 0, kMaxRanks);
  if (env.rank >= env.worldSize) {
    throw LaunchEnvError("environment: RANK=" + *rank + " must be less than WORLD_SIZE=" + *world);
  }
  env.localRank = env.rank;
  env.localWorldSize = env.worldSize;
  if (auto v = lookup("LOCAL_WORLD_SIZE")) {
    env.localWorldSize = parseInt("LOCAL_WORLD_SIZE", *v, 1, env.worldSize);
  }
  if (auto v = lookup("LOCAL_RANK")) {
    env.localRank = parseInt("LOCAL_RANK", *v, 0, env.localWorldSize - 1);
  }
  if (auto v = lookup("GROUP_RANK")) env.groupRank = parseInt("GROUP_RANK", *v, 0, kMaxRanks);
  if (auto v = lookup("TORCHELASTIC_RESTART_COUNT")) {
    env.restartCount = parseInt("TORCHELASTIC_RESTART_COUNT", *v, 0, kMaxRanks);
  }
  if (auto v = lookup("TORCHELASTIC_RUN_ID")) env.runId = *v;

  const auto addr = lookup("MASTER_ADDR");
  const auto port = lookup("MASTER_PORT");
  if (env.worldSize > 1 || addr || port) {
    if (!addr || addr->empty()) {
      throw LaunchEnvError("environment: MASTER_ADDR is not set (needed for WORLD_SIZE=" + *world +
                           "); launch with hearthrun or export MASTER_ADDR");
    }
    if (!port) {
      throw LaunchEnvError("environment: MASTER_PORT is not set (needed for WORLD_SIZE=" + *world +
                           "); launch with hearthrun or export MASTER_PORT");
    }
    env.masterAddr = *addr;
    env.masterPort = parseInt("MASTER_PORT", *port, 1, 65535);
  }
  return env;
}

LaunchEnv readLaunchEnv() {
  return readLaunchEnv([](const std::string& name) -> std::optional<std::string> {
    const char* value = std::getenv(name.c_str());
    if (value == nullptr) return std::nullopt;
    return std::string(value);
  });
}

}  // namespace hearth
