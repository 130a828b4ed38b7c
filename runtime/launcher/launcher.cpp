#include "launcher.h"

#include "posix_util.h"
#include "rendezvous.h"
#include "signal_watch.h"
#include "worker_env.h"
#include "worker_group.h"

namespace hearth::launcher {

int runLauncher(const LaunchOptions& o, const EnvMap& environment) {
  auto pathIt = environment.find("PATH");
  auto programPath =
      resolveProgram(o.program, pathIt == environment.end() ? "/usr/bin:/bin" : pathIt->second);
  if (!programPath) {
    logLine("error: program '" + o.program + "' not found or not executable");
    return 127;
  }

  RendezvousResult rdzv;
  try {
    rdzv = performRendezvous(o);
  } catch (const RendezvousError& e) {
    logLine("error: " + std::string(e.what()));
    return 1;
  }

  // From here on SIGINT/SIGTERM/SIGHUP are forwarded to the workers.
  SignalWatch& signals = SignalWatch::install();

  if (o.nprocPerNode > 1 && environment.count("OMP_NUM_THREADS") == 0) {
    logLine(
        "setting OMP_NUM_THREADS=1 for each worker to avoid overloading the node; "
        "set it yourself to override");
  }

  GroupSettings settings;
  settings.programPath = *programPath;
  settings.argv.push_back(o.program);
  settings.argv.insert(settings.argv.end(), o.programArgs.begin(), o.programArgs.end());
  settings.termTimeoutSec = o.termTimeoutSec;
  settings.monitorIntervalSec = o.monitorIntervalSec;
  WorkerGroup group(settings, &signals);

  WorkerEnvParams params;
  params.nodeRank = rdzv.nodeRank;
  params.nnodes = rdzv.nnodes;
  params.nprocPerNode = o.nprocPerNode;
  params.maxRestarts = o.maxRestarts;
  params.masterAddr = rdzv.masterAddr;
  params.masterPort = rdzv.masterPort;
  params.runId = o.rdzvId;
  if (o.rdzvBackend == RdzvBackend::kHearth) params.hearthRelay = o.rdzvEndpoint;

  for (int restart = 0;; ++restart) {
    params.restartCount = restart;
    std::vector<WorkerLaunch> launches;
    for (int local = 0; local < o.nprocPerNode; ++local) {
      WorkerLaunch launch;
      launch.localRank = local;
      launch.rank = rdzv.nodeRank * o.nprocPerNode + local;
      launch.env = toEnvStrings(buildWorkerEnv(environment, params, local));
      launches.push_back(std::move(launch));
    }
    logLine("starting " + std::to_string(o.nprocPerNode) + " worker(s): node rank " +
            std::to_string(rdzv.nodeRank) + " of " + std::to_string(rdzv.nnodes) + ", world size " +
            std::to_string(rdzv.nnodes * o.nprocPerNode) + ", master " + rdzv.masterAddr + ":" +
            std::to_string(rdzv.masterPort) + ", restart " + std::to_string(restart));

    GroupResult result = group.run(launches);
    switch (result.outcome) {
      case GroupOutcome::kSucceeded:
        return 0;
      case GroupOutcome::kInterrupted:
        logLine("stopped by " + signalName(result.signal));
        return 128 + result.signal;
      case GroupOutcome::kFailed:
        if (restart < o.maxRestarts) {
          logLine("restarting the worker group (restart " + std::to_string(restart + 1) + " of " +
                  std::to_string(o.maxRestarts) + ")");
          continue;
        }
        logLine("worker group failed" +
                std::string(o.maxRestarts > 0 ? " and no restarts are left" : "") +
                " (--max-restarts " + std::to_string(o.maxRestarts) + ")");
        return 1;
    }
  }
}

}  // namespace hearth::launcher
