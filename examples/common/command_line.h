// common/command_line.h — the command line shared by the example programs.
//
//   PROGRAM [--config FILE] [--set KEY=VALUE]... [SHORTHAND VALUE]...
//           [--print-config] [--help]
//
// --set overrides any config key (the value is parsed as JSON, else taken as a
// string). Each program adds shorthand flags (e.g. --steps N), each standing
// for one config key and typed by that key's kind; they are applied after
// every --set, so they win. String values are JSON-encoded, so a path such as
// "123" stays a string. --help shows the description, how to launch several
// workers with hearthrun, the flags and, in its footer, the keys of the
// program's own config sections with their defaults.
//
// parseCommandLine() returns the loaded Config, or an exit code with nothing
// to run: 0 after --help / --print-config, 2 after a usage error (the message
// already printed as one line on stderr). Bad configuration throws
// hearth::ConfigError. Output goes only to the launch's rank 0 (RANK unset or
// 0), because every rank parses the same command line.
// REQUIRES: every shorthand names an int, float or string key of the schema
// (else std::logic_error). Reads the environment; otherwise thread-safe.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "hearth/runtime/config.h"

namespace hearth::examples {

struct ShorthandFlag {
  std::string flag;       // e.g. "--steps"
  std::string configKey;  // e.g. "train.steps"
  std::string help;       // one line for --help
};

// What a program adds to the shared command line.
struct ProgramSpec {
  // e.g. "hearth_charlm": CLI11's program name and the prefix of error lines.
  std::string name;
  // The first line of --help; a second line says how to launch several workers.
  std::string description;
  // In --help order; each is applied after every --set.
  std::vector<ShorthandFlag> shorthands;
  // The config sections whose keys the --help footer lists.
  std::vector<std::string> footerSections = {"model", "data", "train"};
};

// `own` followed by the shorthands every example has for engine keys:
// --metrics (logging.metrics_file), --seed (seed), --lr (optimizer.params.lr).
std::vector<ShorthandFlag> withEngineShorthands(std::vector<ShorthandFlag> own);

struct CommandLine {
  std::optional<hearth::Config> config;
  int exitCode = 0;  // meaningful when config is empty
};

CommandLine parseCommandLine(int argc, char** argv, const hearth::ConfigSchema& schema,
                             const ProgramSpec& spec);

// True unless the environment says this process is a rank other than 0.
bool launchedAsRank0();
// True on one process per host: local rank 0 (or rank 0 when LOCAL_RANK is
// unset). For errors that may differ between hosts, such as a data file.
bool firstOnItsHost();
// Prints "PROGRAM: error: MESSAGE" (first line only) on stderr.
void printError(const std::string& program, const std::string& message);

}  // namespace hearth::examples
