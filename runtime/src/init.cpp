// Process-group set-up from the launcher's environment.
#include "hearth/runtime/init.h"

#include <torch/csrc/distributed/c10d/HashStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <cstdlib>

#include "hearth/runtime/engine_schema.h"
#include "hearth/runtime/gloo_backend.h"
#include "hearth/runtime/logging.h"

namespace hearth {
namespace {

bool isLoopback(const std::string& host) {
  return host == "localhost" || host.rfind("127.", 0) == 0 || host == "::1";
}

std::string glooDeviceHost(const LaunchEnv& env) {
  if (const char* explicitHost = std::getenv("HEARTH_GLOO_HOST")) return explicitHost;
  if (env.worldSize == 1 || isLoopback(env.masterAddr)) return "127.0.0.1";
  return "";
}

c10::intrusive_ptr<c10d::Store> connectStore(const LaunchEnv& env, Millis timeout) {
  if (env.worldSize == 1) return c10::make_intrusive<c10d::HashStore>();
  c10d::TCPStoreOptions options;
  options.port = static_cast<std::uint16_t>(env.masterPort);
  options.isServer = env.rank == 0;
  options.numWorkers = static_cast<std::size_t>(env.worldSize);
  options.waitWorkers = true;
  options.timeout = timeout;
  try {
    return c10::make_intrusive<c10d::TCPStore>(env.masterAddr, options);
  } catch (const std::exception& e) {
    const std::string first = std::string(e.what()).substr(0, std::string(e.what()).find('\n'));
    throw CollectiveTimeout("init: rank " + std::to_string(env.rank) +
                            " could not join the rendezvous at " + env.masterAddr + ":" +
                            std::to_string(env.masterPort) + " within " +
                            std::to_string(timeout.count()) + " ms: " + first);
  }
}

}  // namespace

Context init(const InitOptions& options) {
  Context context;
  context.env = readLaunchEnv();
  setLogRank(context.env.rank);
  auto store = connectStore(context.env, options.timeout);
  auto group = makeGlooProcessGroup(store, context.env.rank, context.env.worldSize, options.timeout,
                                    glooDeviceHost(context.env));
  context.collectives = makeGlooCollectives(std::move(group), options.timeout);
  return context;
}

Context init(const Config& config) {
  // Validate against the environment before any network activity, so a bad
  // config fails fast on every rank with the same message.
  const LaunchEnv env = readLaunchEnv();
  checkConfigAgainstWorld(config, env.worldSize);
  InitOptions options;
  options.timeout = Millis(static_cast<int64_t>(config.getFloat("communication.timeout_s") * 1000));
  return init(options);
}

}  // namespace hearth
