// test_process.h: runs a program for hearthrun's tests and captures its output.
//
// Contract: TestProcess::start() forks and execs argv[0] (a path) with the
// current environment modified by `env` (a value sets, nullopt unsets);
// stdout and stderr go to temporary files readable at any time through
// stdoutText()/stderrText(). The child gets PR_SET_PDEATHSIG(SIGKILL) so it
// dies with the test. wait() returns when the process ends or after the
// timeout, in which case the process is SIGKILLed and `timedOut` is set. The
// destructor kills a still-running process and removes the files.
// Blocking: wait() and waitForOutput() poll every 20 ms up to their timeout.
// Thread-safety: one thread per TestProcess.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace hearth::launcher::testing {

using EnvChanges = std::map<std::string, std::optional<std::string>>;

struct ProcessResult {
  bool timedOut = false;
  int exitCode = -1;   // when the process exited
  int termSignal = 0;  // when a signal killed it
  double seconds = 0;  // wall time from start() to the end
  std::string out;
  std::string err;
};

class TestProcess {
 public:
  TestProcess(std::vector<std::string> argv, EnvChanges env = {});
  ~TestProcess();
  TestProcess(const TestProcess&) = delete;
  TestProcess& operator=(const TestProcess&) = delete;

  void start();
  pid_t pid() const { return pid_; }
  std::string stdoutText() const;
  std::string stderrText() const;
  // True once stdout contains `needle` at least `count` times.
  bool waitForOutput(const std::string& needle, int count, std::chrono::seconds timeout);
  ProcessResult wait(std::chrono::seconds timeout);

 private:
  std::vector<std::string> argv_;
  EnvChanges env_;
  std::string outPath_;
  std::string errPath_;
  pid_t pid_ = -1;
  std::chrono::steady_clock::time_point started_;
};

// start() + wait().
ProcessResult runProcess(const std::vector<std::string>& argv, const EnvChanges& env = {},
                         std::chrono::seconds timeout = std::chrono::seconds(30));

// A TCP port that was free on 127.0.0.1 a moment ago.
int freeLoopbackPort();

}  // namespace hearth::launcher::testing
