// worker_group.h: starts one node's workers and supervises them to the end.
//
// Contract: WorkerGroup::run() forks one process per WorkerLaunch and execs
// `programPath` with `argv` and the launch's environment. In each child,
// before exec: default signal dispositions and an empty signal mask are
// restored, PR_SET_PDEATHSIG(SIGKILL) is set (workers never outlive
// hearthrun), stdout/stderr are redirected to pipes and other fds are closed.
// The parent re-emits each worker's output line by line with the prefix
// "[rank<R>]: " (stdout to `stdoutFd`, stderr to `stderrFd`); a partial last
// line is flushed when the worker's pipe closes, or at most `drainTimeoutSec`
// after the last worker exited (a grandchild may keep a pipe open).
//
// run() returns when every worker has been reaped:
//  - kSucceeded: all exited with status 0;
//  - kFailed: some worker exited non-zero or was killed by a signal before
//    hearthrun began stopping the group; each such failure is logged to stderr
//    ("hearthrun: worker rank 1 (local rank 1) failed: exited with status 3")
//    and the remaining workers get SIGTERM, then SIGKILL after termTimeoutSec;
//  - kInterrupted: a signal arrived through `signals`; it is forwarded to every
//    live worker, which get SIGKILL termTimeoutSec later (or at once on a second
//    signal).
// Blocking: run() blocks until the group is done; it only waits in poll() with
// a timeout of monitorIntervalSec (clamped to 10 ms..1 s) and reaps with
// waitpid(WNOHANG), so it always makes progress. A failure to fork/pipe is
// reported as kFailed after stopping the already started workers.
// Thread-safety: one run() at a time per process (it reaps its own children
// by pid and uses the process-wide SignalWatch). Call from the main thread:
// PR_SET_PDEATHSIG fires when the forking thread exits.
#pragma once

#include <string>
#include <vector>

#include "signal_watch.h"

namespace hearth::launcher {

struct WorkerLaunch {
  int rank = 0;
  int localRank = 0;
  std::vector<std::string> env;  // "KEY=VALUE"
};

struct GroupSettings {
  std::string programPath;        // resolved, passed to execve
  std::vector<std::string> argv;  // argv[0] is the program as the user wrote it
  double termTimeoutSec = 5.0;
  double monitorIntervalSec = 0.1;
  double drainTimeoutSec = 2.0;
  int stdoutFd = 1;
  int stderrFd = 2;
};

enum class GroupOutcome { kSucceeded, kFailed, kInterrupted };

struct WorkerFailure {
  int rank = 0;
  int localRank = 0;
  int waitStatus = 0;
  std::string description;  // "exited with status 3", "failed to start: ..."
};

struct GroupResult {
  GroupOutcome outcome = GroupOutcome::kSucceeded;
  int signal = 0;  // for kInterrupted
  std::vector<WorkerFailure> failures;
};

class WorkerGroup {
 public:
  // `signals` may be null (no signal handling, e.g. in tests).
  WorkerGroup(GroupSettings settings, SignalWatch* signals);

  GroupResult run(const std::vector<WorkerLaunch>& workers);

 private:
  GroupSettings settings_;
  SignalWatch* signals_;
};

}  // namespace hearth::launcher
