// hearth — the project's command-line multi-tool.
//   hearth config-doc              print the configuration keys as Markdown
//   hearth config-check FILE [--set key=value]...
//                                  validate a config file; print the effective config
// Exit codes: 0 ok, 2 invalid input.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <iostream>

#include "hearth/runtime/engine_schema.h"

int main(int argc, char** argv) {
  CLI::App app{"hearth: tools for hearth's data-parallel runtime"};
  app.require_subcommand(1);

  auto* doc = app.add_subcommand("config-doc", "Print every configuration key as a Markdown table");

  auto* check = app.add_subcommand("config-check", "Validate a JSON config file");
  std::string file;
  std::vector<std::string> overrides;
  check->add_option("file", file, "Config file (JSON)")->required();
  check->add_option("--set", overrides, "Override a key: key=value (repeatable)");

  CLI11_PARSE(app, argc, argv);
  const auto schema = hearth::engineConfigSchema();
  if (doc->parsed()) {
    std::cout << schema.toMarkdown();
    return 0;
  }
  try {
    const auto config = hearth::Config::load(schema, file, overrides);
    std::cout << config.effective().dump(2) << std::endl;
    return 0;
  } catch (const hearth::ConfigError& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  }
}
