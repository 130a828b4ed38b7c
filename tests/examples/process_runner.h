// tests/examples/process_runner.h — runs example programs as child processes
// for the example tests: one at a time or several together (ranks launched by
// hand with the torchrun variables), capturing exit code, stdout and stderr.
//
// The children inherit this process's environment minus every launcher
// variable (RANK, WORLD_SIZE, MASTER_ADDR, ... , TORCHELASTIC_*), plus
// OMP_NUM_THREADS=1 and the spec's own variables. A child still running at the
// deadline is killed (SIGKILL) and reported with timedOut. Output goes through
// files in a private temporary directory, so large outputs cannot block.
// Not thread-safe: call from the test's main thread.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace hearth::examples_test {

struct ProcessSpec {
  ProcessSpec(std::vector<std::string> args, std::map<std::string, std::string> vars = {})
      : argv(std::move(args)), env(std::move(vars)) {}
  std::vector<std::string> argv;           // argv[0] is the program path
  std::map<std::string, std::string> env;  // added or overriding variables
};

struct ProcessResult {
  int exitCode = -1;  // 128+N when killed by signal N
  bool timedOut = false;
  std::string out;
  std::string err;
};

// Starts every spec at once, waits for all (or the deadline), returns results
// in spec order.
std::vector<ProcessResult> runTogether(const std::vector<ProcessSpec>& specs,
                                       std::chrono::seconds timeout);
ProcessResult runProcess(const ProcessSpec& spec, std::chrono::seconds timeout);

// `worldSize` copies of `argv` with RANK/LOCAL_RANK/WORLD_SIZE/LOCAL_WORLD_SIZE
// and MASTER_ADDR=127.0.0.1, MASTER_PORT=<a free port>; `extraEnv` is added.
std::vector<ProcessSpec> workerSpecs(const std::vector<std::string>& argv, int worldSize,
                                     const std::map<std::string, std::string>& extraEnv = {});

// A TCP port on 127.0.0.1 that was free a moment ago.
int freePort();

// A fresh directory under the system temp directory (not removed).
std::string makeTempDir();

// Lines of `text` that are not empty.
std::vector<std::string> nonEmptyLines(const std::string& text);

}  // namespace hearth::examples_test
