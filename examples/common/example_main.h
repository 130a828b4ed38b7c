// common/example_main.h — the main() sequence shared by the example programs:
// parse the command line, read the settings and load the data, hearth::init,
// split the host's cores between its workers, train; with one exit-code
// mapping for every failure.
//
// Exit codes and who prints the one "PROGRAM: error: ..." line on stderr:
//   2  bad command line or configuration (hearth::ConfigError, from any step):
//      rank 0 only, since every rank sees the same configuration;
//   2  bad data (DataError from load): once per host (firstOnItsHost());
//   2  bad launch environment (hearth::LaunchEnvError): every rank that has it;
//   1  any other failure of hearth::init (e.g. the rendezvous timed out): the
//      rank that has it;
//   1  any other exception while training: that rank, prefixed "rank N: ".
// Otherwise the exit code is what train returns (0 after --help or
// --print-config, which run neither step).
//
// Unless OMP_NUM_THREADS is set, the workers on one host split its cores
// (at::set_num_threads) before training.
// Call once, from main(); not thread-safe.
#pragma once

#include <functional>

#include "common/command_line.h"
#include "common/data_error.h"
#include "hearth/runtime/init.h"

namespace hearth::examples {

struct ExampleSteps {
  // Reads the program's settings from the Config and loads its data (before
  // hearth::init). Throws hearth::ConfigError or DataError.
  std::function<void(const hearth::Config&)> load;
  // Trains; returns the exit code.
  std::function<int(const hearth::Config&, const hearth::Context&)> train;
};

int runExample(int argc, char** argv, const hearth::ConfigSchema& schema, const ProgramSpec& spec,
               const ExampleSteps& steps);

}  // namespace hearth::examples
