// launch_options.h: hearthrun's command line and PET_* environment parsing.
//
// Contract: parseLaunchOptions() turns hearthrun's arguments (without argv[0])
// plus an environment snapshot into a validated LaunchOptions, a help request
// or one human-readable error that names the offending flag or variable.
// Precedence: built-in defaults < PET_<FLAG> environment variables < command
// line flags. Parsing stops at the first non-flag argument (or after "--"):
// that argument is the worker program and everything after it is passed to the
// worker untouched.
//
// Thread-safety: every function here is pure (no I/O, no global state) except
// currentEnvironment(), which reads `environ` and must not race with setenv().
// Nothing here blocks.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace hearth::launcher {

using EnvMap = std::map<std::string, std::string>;

// kHearth: static node ranks; workers meet through a hearth relay at the
// rdzv endpoint (HEARTH_RELAY / HEARTH_RUN_ID in their environment).
enum class RdzvBackend { kStatic, kC10d, kHearth };

inline constexpr int kDefaultMasterPort = 29500;  // torchrun's default
inline constexpr int kDefaultRdzvPort = 29400;    // torchrun's c10d default

struct LaunchOptions {
  int nprocPerNode = 1;
  int minNodes = 1;  // --nnodes N gives minNodes == maxNodes == N
  int maxNodes = 1;
  std::optional<int> nodeRank;  // unset: 0 (static) or assigned (c10d)
  std::string masterAddr;       // empty: derived from endpoint or 127.0.0.1
  std::optional<int> masterPort;
  RdzvBackend rdzvBackend = RdzvBackend::kStatic;
  std::string rdzvEndpoint;  // HOST[:PORT], empty when not given
  std::string rdzvId = "none";
  int maxRestarts = 0;
  bool standalone = false;
  double monitorIntervalSec = 0.1;
  double termTimeoutSec = 5.0;
  double rdzvTimeoutSec = 300.0;
  double rdzvLastCallSec = 5.0;
  std::string program;
  std::vector<std::string> programArgs;
};

enum class ParseStatus { kRun, kHelp, kError };

struct ParseResult {
  ParseStatus status = ParseStatus::kError;
  LaunchOptions options;              // valid when status == kRun
  std::string error;                  // set when status == kError
  std::vector<std::string> warnings;  // non-fatal notes (e.g. ignored flags)
};

struct HostPort {
  std::string host;
  int port = 0;
};

// Parses hearthrun's arguments (argv[1..]) and the PET_* entries of `env`.
ParseResult parseLaunchOptions(const std::vector<std::string>& args, const EnvMap& env);

// Parses "HOST", "HOST:PORT" or "[V6ADDR]:PORT". Returns nullopt on a malformed
// value or a port outside 1..65535; a missing port yields `defaultPort`.
std::optional<HostPort> parseHostPort(const std::string& text, int defaultPort);

// The full --help text and the one-line synopsis used after usage errors.
std::string usageText();
std::string usageSynopsis();

// A snapshot of the process environment.
EnvMap currentEnvironment();

}  // namespace hearth::launcher
