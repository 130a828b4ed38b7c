// Command-line parsing with CLI11, mapped onto config overrides.
#include "common/command_line.h"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <sstream>
#include <stdexcept>

namespace hearth::examples {
namespace {

// The program's own keys, for the --help footer.
std::string keyReference(const hearth::ConfigSchema& schema,
                         const std::vector<std::string>& sections) {
  std::ostringstream out;
  out << "Example config keys (set with --set KEY=VALUE or in a --config JSON file;\n"
         "hearth's engine keys are listed in docs/config.md):\n";
  for (const auto& key : schema.keys()) {
    const auto dot = key.path.find('.');
    const std::string section = dot == std::string::npos ? "" : key.path.substr(0, dot);
    if (std::find(sections.begin(), sections.end(), section) == sections.end()) continue;
    out << "  " << key.path << " = " << key.defaultValue.dump() << "\n      " << key.doc << "\n";
  }
  return out.str();
}

// One shorthand flag bound to a value of its key's type, so that CLI11 checks
// the type and --help shows it.
class Shorthand {
 public:
  Shorthand(CLI::App& app, const hearth::ConfigSchema& schema, const ShorthandFlag& flag)
      : configKey_(flag.configKey) {
    const hearth::ConfigKey* key = schema.find(flag.configKey);
    if (key == nullptr) throw std::logic_error("shorthand " + flag.flag + ": no such config key");
    kind_ = key->kind;
    switch (kind_) {
      case hearth::ConfigKind::kInt:
        option_ = app.add_option(flag.flag, int_, flag.help);
        break;
      case hearth::ConfigKind::kFloat:
        option_ = app.add_option(flag.flag, float_, flag.help);
        break;
      case hearth::ConfigKind::kString:
        option_ = app.add_option(flag.flag, string_, flag.help);
        break;
      default:
        throw std::logic_error("shorthand " + flag.flag + ": unsupported key kind");
    }
  }
  Shorthand(const Shorthand&) = delete;  // CLI11 holds pointers to the values
  Shorthand& operator=(const Shorthand&) = delete;

  bool given() const { return option_->count() > 0; }
  // "key=value" for Config::load.
  std::string assignment() const {
    switch (kind_) {
      case hearth::ConfigKind::kInt:
        return configKey_ + "=" + std::to_string(int_);
      case hearth::ConfigKind::kFloat:
        return configKey_ + "=" + nlohmann::json(float_).dump();
      default:  // strings are JSON-encoded so that a path such as "123" stays a string
        return configKey_ + "=" + nlohmann::json(string_).dump();
    }
  }

 private:
  std::string configKey_;
  hearth::ConfigKind kind_ = hearth::ConfigKind::kString;
  CLI::Option* option_ = nullptr;
  std::int64_t int_ = 0;
  double float_ = 0;
  std::string string_;
};

}  // namespace

std::vector<ShorthandFlag> withEngineShorthands(std::vector<ShorthandFlag> own) {
  own.push_back({"--metrics", "logging.metrics_file", "JSONL metrics file (logging.metrics_file)"});
  own.push_back({"--seed", "seed", "Base random seed (seed)"});
  own.push_back({"--lr", "optimizer.params.lr", "Learning rate (optimizer.params.lr)"});
  return own;
}

bool launchedAsRank0() {
  const char* rank = std::getenv("RANK");
  return rank == nullptr || std::string(rank) == "0";
}

bool firstOnItsHost() {
  const char* localRank = std::getenv("LOCAL_RANK");
  return localRank == nullptr ? launchedAsRank0() : std::string(localRank) == "0";
}

void printError(const std::string& program, const std::string& message) {
  std::cerr << program << ": error: " << message.substr(0, message.find('\n')) << std::endl;
}

CommandLine parseCommandLine(int argc, char** argv, const hearth::ConfigSchema& schema,
                             const ProgramSpec& spec) {
  CLI::App app{spec.description + "\nLaunch several workers with: hearthrun --standalone " +
                   "--nproc-per-node 2 " + spec.name + " [OPTIONS]",
               spec.name};
  std::string configPath;
  std::vector<std::string> overrides;
  bool printConfig = false;
  app.add_option("--config", configPath, "JSON config file (keys as in --set)");
  app.add_option("--set", overrides, "Override a config key: --set model.n_layer=4 (repeatable)");
  std::vector<std::unique_ptr<Shorthand>> shorthands;
  for (const auto& flag : spec.shorthands) {
    shorthands.push_back(std::make_unique<Shorthand>(app, schema, flag));
  }
  app.add_flag("--print-config", printConfig, "Print the effective config as JSON and exit");
  app.footer(keyReference(schema, spec.footerSections));

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    if (launchedAsRank0()) std::cout << app.help();
    return {std::nullopt, 0};
  } catch (const CLI::ParseError& e) {
    if (launchedAsRank0()) printError(spec.name, std::string(e.what()) + " (see --help)");
    return {std::nullopt, 2};
  }

  for (const auto& shorthand : shorthands) {
    if (shorthand->given()) overrides.push_back(shorthand->assignment());
  }
  hearth::Config config = hearth::Config::load(schema, configPath, overrides);
  if (printConfig) {
    if (launchedAsRank0()) std::cout << config.effective().dump(2) << std::endl;
    return {std::nullopt, 0};
  }
  return {std::move(config), 0};
}

}  // namespace hearth::examples
