#include "signal_watch.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace hearth::launcher {
namespace {

static_assert(SIGINT == 2 && SIGTERM == 15 && SIGHUP == 1, "unexpected signal numbers");

int gPipe[2] = {-1, -1};
constexpr int kMaxSignal = 32;
std::atomic<int> gPending[kMaxSignal];  // per-signal count, reset by takeSignal()

void onSignal(int sig) {
  int savedErrno = errno;
  if (sig > 0 && sig < kMaxSignal) gPending[sig].fetch_add(1);
  char byte = static_cast<char>(sig);
  [[maybe_unused]] ssize_t n = ::write(gPipe[1], &byte, 1);
  errno = savedErrno;
}

}  // namespace

SignalWatch::SignalWatch() {
  if (::pipe2(gPipe, O_CLOEXEC | O_NONBLOCK) != 0) {
    throw std::runtime_error(std::string("pipe2 failed: ") + std::strerror(errno));
  }
  struct sigaction action {};
  action.sa_handler = onSignal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  for (int sig : kHandledSignals) ::sigaction(sig, &action, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
}

SignalWatch& SignalWatch::install() {
  static SignalWatch watch;
  return watch;
}

int SignalWatch::fd() const {
  return gPipe[0];
}

int SignalWatch::takeSignal() {
  char buffer[64];
  while (::read(gPipe[0], buffer, sizeof(buffer)) > 0) {
  }
  for (int sig : kHandledSignals) {
    if (gPending[sig].exchange(0) > 0) return sig;
  }
  return 0;
}

}  // namespace hearth::launcher
