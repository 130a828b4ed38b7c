// Process-group set-up from the launcher's environment.
#include "hearth/runtime/init.h"

#include <torch/csrc/distributed/c10d/HashStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <cstdlib>

#include "hearth/runtime/engine_schema.h"
#include "hearth/runtime/gloo_backend.h"
#include "hearth/runtime/logging.h"
#include "hearth/transport/curve_keys.h"
#include "hearth/transport/mesh_collectives.h"
#include "hearth/transport/zmq_mesh.h"

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

std::string envOr(const std::string& value, const char* name) {
  if (!value.empty()) return value;
  const char* fromEnv = std::getenv(name);
  return fromEnv == nullptr ? "" : fromEnv;
}

// "tcp://HOST:PORT" with PORT + offset (several workers of one host each
// listen on their own port); other forms are returned unchanged.
std::string offsetPort(const std::string& endpoint, int offset) {
  const auto colon = endpoint.rfind(':');
  if (offset == 0 || colon == std::string::npos || colon + 1 >= endpoint.size()) return endpoint;
  const std::string port = endpoint.substr(colon + 1);
  if (port.find_first_not_of("0123456789") != std::string::npos || port.size() > 5) {
    return endpoint;
  }
  const long value = std::stol(port);
  if (value == 0) return endpoint;  // an ephemeral port stays ephemeral
  return endpoint.substr(0, colon + 1) + std::to_string(value + offset);
}

std::string withScheme(const std::string& endpoint) {
  if (endpoint.empty() || endpoint.find("://") != std::string::npos) return endpoint;
  return "tcp://" + endpoint;
}

std::shared_ptr<Collectives> connectHearth(const LaunchEnv& env, const InitOptions& options) {
  ZmqMeshOptions mesh;
  mesh.relayEndpoint = envOr(options.relay, "HEARTH_RELAY");
  if (mesh.relayEndpoint.empty()) {
    throw LaunchEnvError(
        "init: the hearth backend needs a relay: set communication.relay or HEARTH_RELAY, or "
        "launch with hearthrun --rdzv-backend hearth --rdzv-endpoint HOST:PORT");
  }
  if (mesh.relayEndpoint.find("://") == std::string::npos) {
    mesh.relayEndpoint = "tcp://" + mesh.relayEndpoint;
  }
  mesh.runId = envOr(envOr(options.runId, "HEARTH_RUN_ID"), "TORCHELASTIC_RUN_ID");
  if (mesh.runId.empty()) mesh.runId = env.runId;
  mesh.joinToken = envOr("", options.joinTokenEnv.c_str());
  mesh.requestedRank = env.rank;
  mesh.joinTimeout = options.timeout;
  // CURVE (docs/security.md): the relay's key as Z85 text or a .pub path.
  const std::string relayKey = envOr("", "HEARTH_RELAY_PUBLIC_KEY");
  if (!relayKey.empty()) {
    try {
      mesh.relayPublicKey = curvePublicKeyFromSpec(relayKey);
    } catch (const CurveKeyError& e) {
      throw LaunchEnvError(std::string("init: HEARTH_RELAY_PUBLIC_KEY: ") + e.what());
    }
  }
  mesh.curveSecretKeyFile = envOr("", "HEARTH_NODE_KEY");
  mesh.allowPlaintext = envOr("", "HEARTH_ALLOW_PLAINTEXT") == "1";
  // Direct links (docs/transport_protocol.md): accept peers on HEARTH_LISTEN,
  // advertised as HEARTH_ADVERTISE (e.g. a router's forwarded port); worker
  // LOCAL_RANK uses port + LOCAL_RANK of both.
  mesh.listenEndpoint = offsetPort(withScheme(envOr("", "HEARTH_LISTEN")), env.localRank);
  mesh.advertiseEndpoint = offsetPort(withScheme(envOr("", "HEARTH_ADVERTISE")), env.localRank);
  // Workers of one host link over loopback (cross-memory lanes between them)
  // unless HEARTH_SAME_HOST_LINKS=0.
  const std::string sameHost = envOr("", "HEARTH_SAME_HOST_LINKS");
  if (!sameHost.empty() && sameHost != "0" && sameHost != "1") {
    throw LaunchEnvError("init: HEARTH_SAME_HOST_LINKS='" + sameHost + "' is not 0 or 1");
  }
  mesh.sameHostLinks = sameHost != "0";
  // Bulk lanes' port (ZmqMeshOptions::lanePort), also + LOCAL_RANK.
  const std::string lanePort = envOr("", "HEARTH_LANE_PORT");
  if (!lanePort.empty()) {
    if (lanePort.size() > 5 || lanePort.find_first_not_of("0123456789") != std::string::npos ||
        std::stol(lanePort) + env.localRank > 65535) {
      throw LaunchEnvError("init: HEARTH_LANE_PORT='" + lanePort +
                           "' is not a port number (0-65535, plus LOCAL_RANK)");
    }
    const int port = static_cast<int>(std::stol(lanePort));
    mesh.lanePort = port == 0 ? 0 : port + env.localRank;
  }
  std::shared_ptr<Mesh> joined = connectZmqMesh(mesh);
  if (joined->worldSize() != env.worldSize || joined->rank() != env.rank) {
    throw LaunchEnvError("init: the relay's run has " + std::to_string(joined->worldSize()) +
                         " ranks and gave this node rank " + std::to_string(joined->rank()) +
                         ", but WORLD_SIZE=" + std::to_string(env.worldSize) +
                         " and RANK=" + std::to_string(env.rank));
  }
  std::string paths;
  for (int p = 0; p < joined->worldSize(); ++p) {
    paths += (p == 0 ? "" : " ") + std::to_string(p) + "=" + joined->pathTo(p);
  }
  logInfo("hearth transport: rank " + std::to_string(env.rank) + " paths: " + paths);
  return makeMeshCollectives(std::move(joined), MeshCollectivesOptions{});
}

}  // namespace

Context init(const InitOptions& options) {
  Context context;
  context.env = readLaunchEnv();
  setLogRank(context.env.rank);
  const bool hearth = options.backend == "hearth" ||
                      (options.backend == "auto" && !envOr(options.relay, "HEARTH_RELAY").empty());
  if (options.backend != "auto" && options.backend != "gloo" && options.backend != "hearth") {
    throw ConfigError("init: backend '" + options.backend + "' is not one of auto, gloo, hearth");
  }
  if (hearth) {
    context.collectives = connectHearth(context.env, options);
    return context;
  }
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
  options.backend = config.getString("communication.backend");
  options.relay = config.getString("communication.relay");
  return init(options);
}

}  // namespace hearth
