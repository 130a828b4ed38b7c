// hearth/runtime/init.h — joins the process group described by the launcher's
// environment (see launch_env.h) and returns a Context.
//
// init() reads RANK/WORLD_SIZE/MASTER_ADDR/... (a missing environment means a
// world of one), starts or joins the c10d TCPStore at MASTER_ADDR:MASTER_PORT
// (rank 0 hosts it), builds the Gloo process group, seeds the log rank and
// returns the Context. It blocks until every rank joined or the timeout
// passed; then it throws CollectiveTimeout. Bad environment throws
// LaunchEnvError; with a Config, a world-size mismatch throws ConfigError.
//
// With the hearth backend every worker connects out to the relay, asks for its
// RANK, and the collectives run over the relayed Mesh (transport/); the relay
// must have been started for WORLD_SIZE nodes and the same run id. With
// HEARTH_LISTEN (e.g. tcp://0.0.0.0:30000) a worker also accepts direct links
// from its peers, advertised as HEARTH_ADVERTISE (what the outside dials, e.g.
// a router's forwarded port); worker LOCAL_RANK uses port + LOCAL_RANK.
// HEARTH_LANE_PORT (e.g. 31000, + LOCAL_RANK too) fixes the port of the bulk
// lanes of plaintext direct links (default: one the kernel picks), for
// routers that forward only chosen ports. Workers on one host (same boot and
// network namespace) link directly over loopback, with cross-memory lanes
// between them, whether or not they listen (HEARTH_SAME_HOST_LINKS=0: off).
// The path to each peer ("self", "direct" or "relay") is logged once joined.
//
// Gloo binds to 127.0.0.1 when MASTER_ADDR is a loopback address, to
// HEARTH_GLOO_HOST when that is set, else to the host name's address
// (GLOO_SOCKET_IFNAME is honoured by Gloo).
#pragma once

#include <memory>

#include "hearth/runtime/config.h"
#include "hearth/runtime/launch_env.h"
#include "hearth/transport/collectives.h"

namespace hearth {

struct Context {
  LaunchEnv env;
  std::shared_ptr<Collectives> collectives;

  int rank() const { return env.rank; }
  int worldSize() const { return env.worldSize; }
  bool isRank0() const { return env.rank == 0; }
};

struct InitOptions {
  Millis timeout{300000};
  // "gloo": c10d ProcessGroupGloo at MASTER_ADDR:MASTER_PORT. "hearth": the
  // hearth transport through a relay (ZeroMQ, NAT-tolerant: nodes dial out).
  // "auto": hearth when a relay is known (HEARTH_RELAY, set by
  // `hearthrun --rdzv-backend hearth`), else gloo.
  std::string backend = "auto";
  std::string relay;  // HOST:PORT or tcp://HOST:PORT; empty: HEARTH_RELAY
  std::string runId;  // empty: HEARTH_RUN_ID, else TORCHELASTIC_RUN_ID
  // The relay's join token is read from this environment variable, so that
  // it stays out of config files and process lists.
  std::string joinTokenEnv = "HEARTH_JOIN_TOKEN";
};

Context init(const InitOptions& options = {});
// Uses communication.timeout_s and checks world_size / train_batch_size.
Context init(const Config& config);

}  // namespace hearth
