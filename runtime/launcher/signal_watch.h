// signal_watch.h: turns SIGINT/SIGTERM/SIGHUP into pollable events.
//
// Contract: SignalWatch::install() (idempotent) installs handlers for SIGINT,
// SIGTERM and SIGHUP that record the signal and write one byte to a
// non-blocking, close-on-exec self-pipe; it also ignores SIGPIPE so a closed
// output pipe cannot kill hearthrun. fd() is the pipe's read end, for poll().
// takeSignal() drains the pipe and returns one signal received since the last
// call (SIGINT before SIGTERM before SIGHUP; repeats of the same signal between
// two calls count once), or 0 when none. Handlers stay installed for the life of the process;
// workers get default dispositions back in the child before exec. Thread-safety: install() must be
// called from one thread before any other use; fd()/takeSignal() may then be called from one thread
// at a time. The handler itself is async-signal-safe. Nothing here blocks.
#pragma once

namespace hearth::launcher {

class SignalWatch {
 public:
  static SignalWatch& install();

  int fd() const;
  int takeSignal();

  // Signals the launcher handles (for restoring defaults in children).
  static constexpr int kHandledSignals[] = {2 /*SIGINT*/, 15 /*SIGTERM*/, 1 /*SIGHUP*/};

 private:
  SignalWatch();
};

}  // namespace hearth::launcher
