// charlm/cli.h — the command line of hearth_charlm.
//
//   hearth_charlm [--config FILE] [--set KEY=VALUE]... [--data PATH] [--steps N]
//                 [--metrics FILE] [--seed N] [--lr X] [--print-config] [--help]
//
// --set overrides any config key (the value is parsed as JSON, else taken as a
// string). The shorthand flags are applied after every --set, so they win.
// parseCommandLine() returns the loaded Config, or an exit code with nothing
// to run: 0 after --help / --print-config, 2 after a usage error (the message
// already printed as one line on stderr). Bad configuration throws
// hearth::ConfigError. Output goes only to the launch's rank 0 (RANK unset or
// 0), because every rank parses the same command line.
#pragma once

#include <optional>
#include <string>

#include "hearth/runtime/config.h"

namespace charlm {

struct CommandLine {
  std::optional<hearth::Config> config;
  int exitCode = 0;  // meaningful when config is empty
};

CommandLine parseCommandLine(int argc, char** argv);

// True unless the environment says this process is a rank other than 0.
bool launchedAsRank0();
// Prints "hearth_charlm: error: MESSAGE" (first line only) on stderr.
void printError(const std::string& message);

}  // namespace charlm
