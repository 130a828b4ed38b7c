// fork/execve with redirected output and a deadline.
#include "process_runner.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace hearth::examples_test {
namespace {

bool isLauncherVariable(const std::string& name) {
  static const char* kNames[] = {
      "RANK",      "WORLD_SIZE",  "LOCAL_RANK",  "LOCAL_WORLD_SIZE", "GROUP_RANK",
      "ROLE_RANK", "MASTER_ADDR", "MASTER_PORT", "OMP_NUM_THREADS",  "HEARTH_GLOO_HOST"};
  for (const char* n : kNames) {
    if (name == n) return true;
  }
  return name.rfind("TORCHELASTIC_", 0) == 0 || name.rfind("PET_", 0) == 0;
}

std::vector<std::string> childEnvironment(const std::map<std::string, std::string>& extra) {
  std::map<std::string, std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry = *e;
    const auto eq = entry.find('=');
    if (eq == std::string::npos) continue;
    const std::string name = entry.substr(0, eq);
    if (!isLauncherVariable(name)) env[name] = entry.substr(eq + 1);
  }
  env["OMP_NUM_THREADS"] = "1";
  for (const auto& [name, value] : extra) env[name] = value;
  std::vector<std::string> out;
  for (const auto& [name, value] : env) out.push_back(name + "=" + value);
  return out;
}

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<char*> pointers(std::vector<std::string>& strings) {
  std::vector<char*> p;
  for (auto& s : strings) p.push_back(s.data());
  p.push_back(nullptr);
  return p;
}

struct Child {
  pid_t pid = -1;
  std::string outPath, errPath;
  bool done = false;
  int status = 0;
};

}  // namespace

std::string makeTempDir() {
  std::string pattern =
      (std::filesystem::temp_directory_path() / "hearth_examples_XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr) {
    throw std::runtime_error("mkdtemp failed: " + std::string(std::strerror(errno)));
  }
  return pattern;
}

std::vector<ProcessResult> runTogether(const std::vector<ProcessSpec>& specs,
                                       std::chrono::seconds timeout) {
  const std::string dir = makeTempDir();
  std::vector<Child> children(specs.size());
  for (std::size_t i = 0; i < specs.size(); ++i) {
    // Everything the child needs is built before fork: only async-signal-safe
    // calls happen between fork and execve.
    auto args = specs[i].argv;
    auto env = childEnvironment(specs[i].env);
    auto argvPointers = pointers(args);
    auto envPointers = pointers(env);
    children[i].outPath = dir + "/out." + std::to_string(i);
    children[i].errPath = dir + "/err." + std::to_string(i);
    const pid_t pid = fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
      const int out = open(children[i].outPath.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      const int err = open(children[i].errPath.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (out < 0 || err < 0) _exit(126);
      dup2(out, STDOUT_FILENO);
      dup2(err, STDERR_FILENO);
      execve(argvPointers[0], argvPointers.data(), envPointers.data());
      _exit(127);
    }
    children[i].pid = pid;
  }

  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::size_t running = children.size();
  bool timedOut = false;
  while (running > 0) {
    for (auto& child : children) {
      if (child.done) continue;
      const pid_t r = waitpid(child.pid, &child.status, WNOHANG);
      if (r == child.pid) {
        child.done = true;
        --running;
      }
    }
    if (running == 0) break;
    if (std::chrono::steady_clock::now() > deadline) {
      timedOut = true;
      for (auto& child : children) {
        if (!child.done) kill(child.pid, SIGKILL);
      }
      for (auto& child : children) {
        if (!child.done) waitpid(child.pid, &child.status, 0);
        child.done = true;
      }
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }

  std::vector<ProcessResult> results;
  for (const auto& child : children) {
    ProcessResult r;
    r.timedOut = timedOut;
    if (WIFEXITED(child.status)) r.exitCode = WEXITSTATUS(child.status);
    if (WIFSIGNALED(child.status)) r.exitCode = 128 + WTERMSIG(child.status);
    r.out = readFile(child.outPath);
    r.err = readFile(child.errPath);
    results.push_back(std::move(r));
  }
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return results;
}

ProcessResult runProcess(const ProcessSpec& spec, std::chrono::seconds timeout) {
  return runTogether({spec}, timeout).front();
}

int freePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("socket failed");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof(address);
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    close(fd);
    throw std::runtime_error("bind failed");
  }
  const int port = ntohs(address.sin_port);
  close(fd);
  return port;
}

std::vector<ProcessSpec> workerSpecs(const std::vector<std::string>& argv, int worldSize,
                                     const std::map<std::string, std::string>& extraEnv) {
  const std::string port = std::to_string(freePort());
  std::vector<ProcessSpec> specs;
  for (int rank = 0; rank < worldSize; ++rank) {
    ProcessSpec spec{argv, extraEnv};
    spec.env["RANK"] = std::to_string(rank);
    spec.env["LOCAL_RANK"] = std::to_string(rank);
    spec.env["WORLD_SIZE"] = std::to_string(worldSize);
    spec.env["LOCAL_WORLD_SIZE"] = std::to_string(worldSize);
    spec.env["MASTER_ADDR"] = "127.0.0.1";
    spec.env["MASTER_PORT"] = port;
    specs.push_back(std::move(spec));
  }
  return specs;
}

std::vector<std::string> nonEmptyLines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

}  // namespace hearth::examples_test
