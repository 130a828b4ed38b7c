// launcher_test_worker: a tiny program hearthrun's tests launch as a worker.
//
// Each argument is one action, run in order:
//   env            print the torchrun variables (and any HEARTH_TEST_*) as KEY=VALUE
//   echo:TEXT      print TEXT and a newline to stdout
//   err:TEXT       print TEXT and a newline to stderr
//   partial:TEXT   print TEXT to stdout without a newline
//   sleep:SECONDS  sleep (fractions allowed)
//   exit:CODE      exit with CODE
//   kill:SIGNAL    send SIGNAL (a number) to itself
//   trap           on SIGINT/SIGTERM print "GOT SIGNAL <n>" and exit 128+n
//   ignore-term    ignore SIGTERM
//   when:COND      run the next action only if COND holds; COND is rank=N,
//                  rank!=N or restart<N (conditions before one action combine)
// Without "exit" the worker exits 0 after the last action. Output is unbuffered.
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

namespace {

void say(int fd, const std::string& text) {
  const char* p = text.data();
  size_t left = text.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n <= 0) return;
    p += n;
    left -= static_cast<size_t>(n);
  }
}

void onSignal(int sig) {
  char line[32] = "GOT SIGNAL ";
  int len = static_cast<int>(std::strlen(line));
  if (sig >= 10) line[len++] = static_cast<char>('0' + sig / 10);
  line[len++] = static_cast<char>('0' + sig % 10);
  line[len++] = '\n';
  [[maybe_unused]] ssize_t n = ::write(1, line, static_cast<size_t>(len));
  ::_exit(128 + sig);
}

int envInt(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? -1 : std::atoi(v);
}

bool holds(const std::string& cond) {
  if (cond.rfind("rank!=", 0) == 0) return envInt("RANK") != std::stoi(cond.substr(6));
  if (cond.rfind("rank=", 0) == 0) return envInt("RANK") == std::stoi(cond.substr(5));
  if (cond.rfind("restart<", 0) == 0) {
    return envInt("TORCHELASTIC_RESTART_COUNT") < std::stoi(cond.substr(8));
  }
  say(2, "test_worker: bad condition " + cond + "\n");
  std::exit(100);
}

void printEnv() {
  static const char* kKeys[] = {"RANK",
                                "LOCAL_RANK",
                                "WORLD_SIZE",
                                "LOCAL_WORLD_SIZE",
                                "GROUP_RANK",
                                "GROUP_WORLD_SIZE",
                                "ROLE_RANK",
                                "ROLE_WORLD_SIZE",
                                "ROLE_NAME",
                                "MASTER_ADDR",
                                "MASTER_PORT",
                                "TORCHELASTIC_RESTART_COUNT",
                                "TORCHELASTIC_MAX_RESTARTS",
                                "TORCHELASTIC_RUN_ID",
                                "OMP_NUM_THREADS"};
  std::string out;
  for (const char* key : kKeys) {
    const char* value = std::getenv(key);
    out += std::string(key) + "=" + (value == nullptr ? "<unset>" : value) + "\n";
  }
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::strncmp(*e, "HEARTH_TEST_", 12) == 0) out += std::string(*e) + "\n";
  }
  say(1, out);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> conditions;
  for (int i = 1; i < argc; ++i) {
    std::string action = argv[i];
    if (action.rfind("when:", 0) == 0) {
      conditions.push_back(action.substr(5));
      continue;
    }
    bool run = true;
    for (const auto& c : conditions) run = run && holds(c);
    conditions.clear();
    if (!run) continue;

    auto colon = action.find(':');
    std::string verb = action.substr(0, colon);
    std::string arg = colon == std::string::npos ? "" : action.substr(colon + 1);
    if (verb == "env") {
      printEnv();
    } else if (verb == "echo") {
      say(1, arg + "\n");
    } else if (verb == "err") {
      say(2, arg + "\n");
    } else if (verb == "partial") {
      say(1, arg);
    } else if (verb == "sleep") {
      double seconds = std::stod(arg);
      timespec ts{static_cast<time_t>(seconds),
                  static_cast<long>((seconds - static_cast<time_t>(seconds)) * 1e9)};
      while (::nanosleep(&ts, &ts) != 0) {
      }
    } else if (verb == "exit") {
      return std::stoi(arg);
    } else if (verb == "kill") {
      ::kill(::getpid(), std::stoi(arg));
      ::pause();
    } else if (verb == "trap") {
      struct sigaction action {};
      action.sa_handler = onSignal;
      sigemptyset(&action.sa_mask);
      ::sigaction(SIGINT, &action, nullptr);
      ::sigaction(SIGTERM, &action, nullptr);
    } else if (verb == "ignore-term") {
      ::signal(SIGTERM, SIG_IGN);
    } else {
      say(2, "test_worker: unknown action " + action + "\n");
      return 100;
    }
  }
  return 0;
}
