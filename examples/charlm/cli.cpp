// Command-line parsing with CLI11, mapped onto config overrides.
#include "charlm/cli.h"

#include <CLI/CLI.hpp>

#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <vector>

#include "charlm/settings.h"

namespace charlm {
namespace {

constexpr const char* kProgram = "hearth_charlm";

// The example's own keys, for the --help footer.
std::string keyReference(const hearth::ConfigSchema& schema) {
  std::ostringstream out;
  out << "Example config keys (set with --set KEY=VALUE or in a --config JSON file;\n"
         "hearth's engine keys are listed in docs/config.md):\n";
  for (const auto& key : schema.keys()) {
    const auto dot = key.path.find('.');
    const std::string section = dot == std::string::npos ? "" : key.path.substr(0, dot);
    if (section != "model" && section != "data" && section != "train") continue;
    out << "  " << key.path << " = " << key.defaultValue.dump() << "\n      " << key.doc << "\n";
  }
  return out.str();
}

}  // namespace

bool launchedAsRank0() {
  const char* rank = std::getenv("RANK");
  return rank == nullptr || std::string(rank) == "0";
}

void printError(const std::string& message) {
  std::cerr << kProgram << ": error: " << message.substr(0, message.find('\n')) << std::endl;
}

CommandLine parseCommandLine(int argc, char** argv) {
  const hearth::ConfigSchema schema = charlmSchema();
  CLI::App app{
      "Trains a small GPT-style character-level language model, data-parallel "
      "with hearth.\nLaunch several workers with: hearthrun --standalone "
      "--nproc-per-node 2 hearth_charlm [OPTIONS]",
      kProgram};
  std::string configPath;
  std::vector<std::string> overrides;
  std::string dataPath, metricsPath;
  std::int64_t steps = 0, seed = 0;
  double lr = 0;
  bool printConfig = false;
  app.add_option("--config", configPath, "JSON config file (keys as in --set)");
  app.add_option("--set", overrides, "Override a config key: --set model.n_layer=4 (repeatable)");
  auto* dataOption = app.add_option("--data", dataPath, "Text file to train on (data.path)");
  auto* stepsOption = app.add_option("--steps", steps, "Optimizer steps (train.steps)");
  auto* metricsOption =
      app.add_option("--metrics", metricsPath, "JSONL metrics file (logging.metrics_file)");
  auto* seedOption = app.add_option("--seed", seed, "Base random seed (seed)");
  auto* lrOption = app.add_option("--lr", lr, "Learning rate (optimizer.params.lr)");
  app.add_flag("--print-config", printConfig, "Print the effective config as JSON and exit");
  app.footer(keyReference(schema));

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    if (launchedAsRank0()) std::cout << app.help();
    return {std::nullopt, 0};
  } catch (const CLI::ParseError& e) {
    if (launchedAsRank0()) printError(std::string(e.what()) + " (see --help)");
    return {std::nullopt, 2};
  }

  // Strings are JSON-encoded so that a path such as "123" stays a string.
  if (dataOption->count() > 0) overrides.push_back("data.path=" + nlohmann::json(dataPath).dump());
  if (stepsOption->count() > 0) overrides.push_back("train.steps=" + std::to_string(steps));
  if (metricsOption->count() > 0) {
    overrides.push_back("logging.metrics_file=" + nlohmann::json(metricsPath).dump());
  }
  if (seedOption->count() > 0) overrides.push_back("seed=" + std::to_string(seed));
  if (lrOption->count() > 0)
    overrides.push_back("optimizer.params.lr=" + nlohmann::json(lr).dump());

  hearth::Config config = hearth::Config::load(schema, configPath, overrides);
  if (printConfig) {
    if (launchedAsRank0()) std::cout << config.effective().dump(2) << std::endl;
    return {std::nullopt, 0};
  }
  return {std::move(config), 0};
}

}  // namespace charlm
