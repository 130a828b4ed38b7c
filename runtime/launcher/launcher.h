// launcher.h: hearthrun's agent: rendezvous, then run (and restart) the local
// worker group.
//
// Contract: runLauncher() resolves the program, performs the rendezvous,
// installs the SignalWatch and runs the worker group up to 1 + maxRestarts
// times, incrementing TORCHELASTIC_RESTART_COUNT on each restart. It logs its
// decisions to stderr as "hearthrun: ..." lines and returns the process exit
// code: 0 when every worker exited 0; 1 when the group failed with no restarts
// left or the rendezvous failed; 127 when the program cannot be found; 128+N
// when hearthrun received signal N (forwarded to the workers first).
// Blocking: returns when the workers are done; every wait inside is bounded
// (see worker_group.h and rendezvous.h).
// Thread-safety: call once, from the main thread.
#pragma once

#include "launch_options.h"

namespace hearth::launcher {

int runLauncher(const LaunchOptions& options, const EnvMap& environment);

}  // namespace hearth::launcher
