#include "test_process.h"

#include "net_util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace hearth::launcher::testing {
namespace {

std::string makeTempFile(const char* tag) {
  std::string pattern =
      (std::filesystem::temp_directory_path() / (std::string("hearthrun-test-") + tag + "-XXXXXX"))
          .string();
  int fd = ::mkstemp(pattern.data());
  if (fd < 0) throw std::runtime_error("mkstemp failed");
  ::close(fd);
  return pattern;
}

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

int countOccurrences(const std::string& text, const std::string& needle) {
  int count = 0;
  for (auto pos = text.find(needle); pos != std::string::npos;
       pos = text.find(needle, pos + needle.size())) {
    ++count;
  }
  return count;
}

}  // namespace

TestProcess::TestProcess(std::vector<std::string> argv, EnvChanges env)
    : argv_(std::move(argv)), env_(std::move(env)) {
  outPath_ = makeTempFile("out");
  errPath_ = makeTempFile("err");
}

TestProcess::~TestProcess() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  std::remove(outPath_.c_str());
  std::remove(errPath_.c_str());
}

void TestProcess::start() {
  // Build argv/envp before fork.
  std::map<std::string, std::string> envMap;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string kv(*e);
    auto eq = kv.find('=');
    if (eq != std::string::npos) envMap[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  for (const auto& [key, value] : env_) {
    if (value) {
      envMap[key] = *value;
    } else {
      envMap.erase(key);
    }
  }
  std::vector<std::string> envStrings;
  for (const auto& [key, value] : envMap) envStrings.push_back(key + "=" + value);
  std::vector<char*> argv;
  for (auto& a : argv_) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (auto& e : envStrings) envp.push_back(e.data());
  envp.push_back(nullptr);

  int outFd = ::open(outPath_.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
  int errFd = ::open(errPath_.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
  started_ = std::chrono::steady_clock::now();
  pid_ = ::fork();
  if (pid_ == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    ::dup2(outFd, 1);
    ::dup2(errFd, 2);
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  ::close(outFd);
  ::close(errFd);
  if (pid_ < 0) throw std::runtime_error("fork failed");
}

std::string TestProcess::stdoutText() const {
  return readFile(outPath_);
}
std::string TestProcess::stderrText() const {
  return readFile(errPath_);
}

bool TestProcess::waitForOutput(const std::string& needle, int count,
                                std::chrono::seconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (countOccurrences(stdoutText(), needle) >= count) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

ProcessResult TestProcess::wait(std::chrono::seconds timeout) {
  ProcessResult result;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  while (true) {
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) break;
    if (std::chrono::steady_clock::now() >= deadline) {
      result.timedOut = true;
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  pid_ = -1;
  result.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  if (WIFEXITED(status)) result.exitCode = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) result.termSignal = WTERMSIG(status);
  result.out = stdoutText();
  result.err = stderrText();
  return result;
}

ProcessResult runProcess(const std::vector<std::string>& argv, const EnvChanges& env,
                         std::chrono::seconds timeout) {
  TestProcess process(argv, env);
  process.start();
  return process.wait(timeout);
}

int freeLoopbackPort() {
  return findFreePort("127.0.0.1");
}

}  // namespace hearth::launcher::testing
