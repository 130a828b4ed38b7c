// The shared main() sequence of the example programs and its exit codes.
#include "common/example_main.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdlib>
#include <optional>
#include <string>
#include <thread>

namespace hearth::examples {
namespace {

// Several workers on one host share its cores: split them unless the user
// chose with OMP_NUM_THREADS (which LibTorch already honours).
void configureThreads(const hearth::LaunchEnv& env) {
  if (std::getenv("OMP_NUM_THREADS") != nullptr) return;
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (env.localWorldSize > 1) at::set_num_threads(std::max(1, cores / env.localWorldSize));
}

}  // namespace

int runExample(int argc, char** argv, const hearth::ConfigSchema& schema, const ProgramSpec& spec,
               const ExampleSteps& steps) {
  const std::string& program = spec.name;
  std::optional<hearth::Config> config;
  try {
    auto commandLine = parseCommandLine(argc, argv, schema, spec);
    if (!commandLine.config) return commandLine.exitCode;
    config = std::move(commandLine.config);
    steps.load(*config);
  } catch (const hearth::ConfigError& e) {
    if (launchedAsRank0()) printError(program, e.what());
    return 2;
  } catch (const DataError& e) {
    if (firstOnItsHost()) printError(program, e.what());
    return 2;
  }

  hearth::Context ctx;
  try {
    ctx = hearth::init(*config);
  } catch (const hearth::ConfigError& e) {
    if (launchedAsRank0()) printError(program, e.what());
    return 2;
  } catch (const hearth::LaunchEnvError& e) {
    printError(program, e.what());  // the environment may be wrong on this rank only
    return 2;
  } catch (const std::exception& e) {  // e.g. the rendezvous timed out
    printError(program, e.what());
    return 1;
  }
  configureThreads(ctx.env);

  try {
    return steps.train(*config, ctx);
  } catch (const hearth::ConfigError& e) {
    if (ctx.isRank0()) printError(program, e.what());
    return 2;
  } catch (const std::exception& e) {
    printError(program, std::string("rank ") + std::to_string(ctx.rank()) + ": " + e.what());
    return 1;
  }
}

}  // namespace hearth::examples
