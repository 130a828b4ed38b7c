#include "worker_group.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <optional>

#include "line_splitter.h"
#include "posix_util.h"

namespace hearth::launcher {
namespace {

using Clock = std::chrono::steady_clock;

struct OutputStream {
  UniqueFd fd;
  LineSplitter splitter;
  int sinkFd;
};

struct Worker {
  WorkerLaunch launch;
  pid_t pid = -1;
  bool running = false;
  int status = 0;
  std::unique_ptr<OutputStream> out;
  std::unique_ptr<OutputStream> err;
};

std::chrono::milliseconds toMs(double seconds) {
  return std::chrono::milliseconds(static_cast<long long>(seconds * 1000.0));
}

// Everything the child needs, prepared before fork() so that the child only
// calls async-signal-safe functions.
struct ExecImage {
  std::vector<std::string> argvStrings;
  std::vector<std::string> envStrings;
  std::vector<char*> argv;
  std::vector<char*> envp;

  ExecImage(const std::vector<std::string>& args, const std::vector<std::string>& env)
      : argvStrings(args), envStrings(env) {
    for (auto& s : argvStrings) argv.push_back(s.data());
    argv.push_back(nullptr);
    for (auto& s : envStrings) envp.push_back(s.data());
    envp.push_back(nullptr);
  }
};

void childWriteError(const char* what, int err) {
  const char* prefix = "hearthrun: cannot start worker: ";
  [[maybe_unused]] ssize_t n = ::write(STDERR_FILENO, prefix, std::strlen(prefix));
  n = ::write(STDERR_FILENO, what, std::strlen(what));
  n = ::write(STDERR_FILENO, ": ", 2);
  const char* reason = ::strerrordesc_np(err);
  if (reason != nullptr) n = ::write(STDERR_FILENO, reason, std::strlen(reason));
  n = ::write(STDERR_FILENO, "\n", 1);
}

[[noreturn]] void runChild(const char* path, ExecImage& image, int outFd, int errFd,
                           pid_t parentPid) {
  sigset_t empty;
  sigemptyset(&empty);
  ::sigprocmask(SIG_SETMASK, &empty, nullptr);
  for (int sig : SignalWatch::kHandledSignals) ::signal(sig, SIG_DFL);
  ::signal(SIGPIPE, SIG_DFL);
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parentPid) ::_exit(1);  // parent died before prctl

  if (::dup2(outFd, STDOUT_FILENO) < 0 || ::dup2(errFd, STDERR_FILENO) < 0) ::_exit(127);
  ::close_range(3, ~0U, 0);  // best effort: pipes are O_CLOEXEC anyway
  ::execve(path, image.argv.data(), image.envp.data());
  childWriteError(path, errno);
  ::_exit(127);
}

class Supervisor {
 public:
  Supervisor(const GroupSettings& settings, SignalWatch* signals)
      : settings_(settings), signals_(signals) {}

  GroupResult run(const std::vector<WorkerLaunch>& launches) {
    if (signals_ != nullptr) {
      if (int sig = signals_->takeSignal(); sig != 0) {
        result_.outcome = GroupOutcome::kInterrupted;
        result_.signal = sig;
        return result_;
      }
    }
    for (const auto& launch : launches) {
      if (!start(launch)) break;
    }
    loop();
    if (result_.signal != 0) {
      result_.outcome = GroupOutcome::kInterrupted;
    } else if (!result_.failures.empty()) {
      result_.outcome = GroupOutcome::kFailed;
    }
    return result_;
  }

 private:
  bool start(const WorkerLaunch& launch) {
    auto& worker = workers_.emplace_back();
    worker.launch = launch;
    int outPipe[2];
    int errPipe[2];
    if (::pipe2(outPipe, O_CLOEXEC) != 0) return startFailed(worker, "pipe2", errno);
    UniqueFd outRead(outPipe[0]), outWrite(outPipe[1]);
    if (::pipe2(errPipe, O_CLOEXEC) != 0) return startFailed(worker, "pipe2", errno);
    UniqueFd errRead(errPipe[0]), errWrite(errPipe[1]);

    ExecImage image(settings_.argv, launch.env);
    const pid_t parentPid = ::getpid();
    pid_t pid = ::fork();
    if (pid < 0) return startFailed(worker, "fork", errno);
    if (pid == 0) {
      runChild(settings_.programPath.c_str(), image, outWrite.get(), errWrite.get(), parentPid);
    }
    worker.pid = pid;
    worker.running = true;
    ::fcntl(outRead.get(), F_SETFL, O_NONBLOCK);
    ::fcntl(errRead.get(), F_SETFL, O_NONBLOCK);
    const std::string prefix = "[rank" + std::to_string(launch.rank) + "]: ";
    worker.out = std::make_unique<OutputStream>(
        OutputStream{std::move(outRead), LineSplitter(prefix), settings_.stdoutFd});
    worker.err = std::make_unique<OutputStream>(
        OutputStream{std::move(errRead), LineSplitter(prefix), settings_.stderrFd});
    return true;
  }

  bool startFailed(Worker& worker, const char* what, int err) {
    std::string description = std::string("failed to start: ") + what + ": " + std::strerror(err);
    logLine("worker rank " + std::to_string(worker.launch.rank) + " (local rank " +
            std::to_string(worker.launch.localRank) + ") " + description);
    result_.failures.push_back(
        WorkerFailure{worker.launch.rank, worker.launch.localRank, 0, description});
    beginStop(SIGTERM);
    return false;
  }

  void loop() {
    const int pollMs =
        static_cast<int>(std::clamp(settings_.monitorIntervalSec * 1000.0, 10.0, 1000.0));
    std::vector<pollfd> fds;
    std::vector<OutputStream*> streams;
    while (true) {
      fds.clear();
      streams.clear();
      if (signals_ != nullptr) {
        fds.push_back(pollfd{signals_->fd(), POLLIN, 0});
        streams.push_back(nullptr);
      }
      for (auto& w : workers_) {
        for (OutputStream* s : {w.out.get(), w.err.get()}) {
          if (s != nullptr && s->fd.valid()) {
            fds.push_back(pollfd{s->fd.get(), POLLIN, 0});
            streams.push_back(s);
          }
        }
      }
      int ready = ::poll(fds.data(), fds.size(), pollMs);
      if (ready > 0) {
        for (std::size_t i = 0; i < fds.size(); ++i) {
          if (fds[i].revents == 0) continue;
          if (streams[i] == nullptr) {
            handleSignals();
          } else {
            drain(*streams[i]);
          }
        }
      }
      reap();
      enforceDeadline();
      if (finished()) break;
    }
    for (auto& w : workers_) {
      for (OutputStream* s : {w.out.get(), w.err.get()}) {
        if (s != nullptr) closeStream(*s);
      }
    }
  }

  void handleSignals() {
    while (int sig = signals_->takeSignal()) {
      if (result_.signal == 0) {
        result_.signal = sig;
        logLine("received " + signalName(sig) + ", forwarding it to the workers");
        beginStop(sig);
      } else {
        logLine("received " + signalName(sig) + " again, killing the workers");
        killAll();
      }
    }
  }

  void drain(OutputStream& stream) {
    char buffer[65536];
    // Bounded so one chatty worker cannot starve the loop.
    for (int round = 0; round < 16; ++round) {
      ssize_t n = ::read(stream.fd.get(), buffer, sizeof(buffer));
      if (n > 0) {
        writeAll(stream.sinkFd, stream.splitter.feed(std::string_view(buffer, n)));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      closeStream(stream);  // EOF or error
      return;
    }
  }

  void closeStream(OutputStream& stream) {
    if (!stream.fd.valid()) return;
    stream.fd.reset();
    writeAll(stream.sinkFd, stream.splitter.flush());
  }

  void reap() {
    for (auto& w : workers_) {
      if (!w.running) continue;
      int status = 0;
      pid_t r = ::waitpid(w.pid, &status, WNOHANG);
      if (r == 0) continue;
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) status = 0;  // ECHILD: reaped elsewhere; nothing to report
      w.running = false;
      w.status = status;
      lastExit_ = Clock::now();
      bool failed = !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
      if (failed && !stopping_) {
        std::string description = describeWaitStatus(status);
        logLine("worker rank " + std::to_string(w.launch.rank) + " (local rank " +
                std::to_string(w.launch.localRank) + ") failed: " + description);
        result_.failures.push_back(
            WorkerFailure{w.launch.rank, w.launch.localRank, status, description});
      }
    }
    if (!result_.failures.empty() && !stopping_) {
      if (anyRunning()) logLine("stopping the remaining workers");
      beginStop(SIGTERM);
    }
  }

  void beginStop(int sig) {
    if (stopping_) return;
    stopping_ = true;
    killDeadline_ = Clock::now() + toMs(settings_.termTimeoutSec);
    for (auto& w : workers_) {
      if (w.running) ::kill(w.pid, sig);
    }
  }

  void killAll() {
    for (auto& w : workers_) {
      if (w.running) ::kill(w.pid, SIGKILL);
    }
    killed_ = true;
  }

  void enforceDeadline() {
    if (!stopping_ || killed_ || Clock::now() < killDeadline_) return;
    for (auto& w : workers_) {
      if (w.running) {
        logLine("worker rank " + std::to_string(w.launch.rank) + " did not exit within " +
                std::to_string(settings_.termTimeoutSec) + " s; sending SIGKILL");
      }
    }
    killAll();
  }

  bool anyRunning() const {
    return std::any_of(workers_.begin(), workers_.end(), [](const Worker& w) { return w.running; });
  }

  bool finished() const {
    if (anyRunning()) return false;
    bool pipesOpen = std::any_of(workers_.begin(), workers_.end(), [](const Worker& w) {
      return (w.out && w.out->fd.valid()) || (w.err && w.err->fd.valid());
    });
    if (!pipesOpen) return true;
    return Clock::now() - lastExit_ >= toMs(settings_.drainTimeoutSec);
  }

  const GroupSettings& settings_;
  SignalWatch* signals_;
  std::vector<Worker> workers_;
  GroupResult result_;
  bool stopping_ = false;
  bool killed_ = false;
  Clock::time_point killDeadline_{};
  Clock::time_point lastExit_{};
};

}  // namespace

WorkerGroup::WorkerGroup(GroupSettings settings, SignalWatch* signals)
    : settings_(std::move(settings)), signals_(signals) {}

GroupResult WorkerGroup::run(const std::vector<WorkerLaunch>& workers) {
  Supervisor supervisor(settings_, signals_);
  return supervisor.run(workers);
}

}  // namespace hearth::launcher
